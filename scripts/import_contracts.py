"""An import-linter contract type of this repository (`.importlinter`; import-linter and grimp,
seddonym/import-linter and python-grimp/grimp): no import cycle between the modules of a package.

import-linter's own `acyclic_siblings` looks for cycles between sibling packages; a cycle between a
package's `__init__` and one of its own modules (`shared.loaders` <-> `shared.loaders.encoders`) is
not between siblings, so it slips through. This contract checks every module: a direct import
A -> B inside `packages` breaks it when B leads back to A.
"""
from __future__ import annotations

from grimp import ImportGraph
from importlinter.application import output
from importlinter.domain import fields
from importlinter.domain.contract import Contract, ContractCheck

__all__ = ["AcyclicModulesContract"]

MAX_CYCLES_TO_RENDER = 10


class AcyclicModulesContract(Contract):
    """Options: `packages` (the packages whose modules must not import each other in a circle)."""

    type_name = "acyclic_modules"
    packages = fields.ListField(subfield=fields.StringField())

    def check(self, graph: ImportGraph, verbose: bool) -> ContractCheck:
        cycles: list[tuple[str, ...]] = []
        seen: set[frozenset[str]] = set()
        for package in self.packages:  # type: ignore[attr-defined]
            modules = sorted({package} | graph.find_descendants(package))
            inside = set(modules)
            for importer in modules:
                for imported in sorted(graph.find_modules_directly_imported_by(importer) & inside):
                    back = graph.find_shortest_chain(importer=imported, imported=importer)
                    if back is None:
                        continue
                    key = frozenset(back)
                    if key not in seen:
                        seen.add(key)
                        cycles.append((importer, *back))
        return ContractCheck(kept=not cycles, metadata={"cycles": cycles})

    def render_broken_contract(self, check: ContractCheck) -> None:
        cycles = check.metadata["cycles"]
        for cycle in cycles[:MAX_CYCLES_TO_RENDER]:
            output.print_error(" -> ".join(cycle))
        if len(cycles) > MAX_CYCLES_TO_RENDER:
            output.print_error(f"(and {len(cycles) - MAX_CYCLES_TO_RENDER} more)")
        output.new_line()
