"""Inert stand-ins for the OmegaConf containers inside StyleNeRF snapshots (private to the loaders).

facebookresearch/StyleNeRF configures its networks with Hydra/OmegaConf (`run_train.py` builds
`G_kwargs` inside an `OmegaConf` config), so the constructor kwargs its persistence pickles store
are `omegaconf.dictconfig.DictConfig` / `omegaconf.listconfig.ListConfig` trees of value nodes
(`omegaconf.nodes.AnyNode`, ...), with `omegaconf.base.ContainerMetadata` records that mention
`typing.Any`, `builtins.dict`/`list`/`int` and a `collections.defaultdict(dict)`. Pickled as
NEWOBJ + BUILD, each becomes one of the records below: they only keep their state, and
`to_plain` turns a tree into dicts, lists and scalars, resolving absolute interpolations
(`${spec.map}`) against the pickled root. Nothing of OmegaConf is imported or run; none of these
objects is callable, so a pickle cannot use them to call anything.
"""
from __future__ import annotations

import re
from typing import Any

__all__ = ["OMEGACONF_GLOBALS", "OmegaRecord", "to_plain"]

_INTERPOLATION = re.compile(r"^\$\{([A-Za-z_][\w\-]*(?:\.[\w\-]+)*)\}$")
_MAX_DEPTH = 64


class TypeReference:
    """A type named by OmegaConf metadata (`typing.Any`, `builtins.dict`, ...): a name, not the type."""

    def __init__(self, qualname: str) -> None:
        self.qualname = qualname

    def __repr__(self) -> str:
        return f"TypeReference({self.qualname})"


class OmegaRecord:
    """Base of the stand-ins: NEWOBJ makes one, BUILD hands it the pickled `__dict__`."""

    _state: dict

    def __setstate__(self, state: Any) -> None:
        self._state = state if isinstance(state, dict) else {}

    @property
    def parent(self) -> "OmegaRecord | None":
        p = getattr(self, "_state", {}).get("_parent")
        return p if isinstance(p, OmegaRecord) else None


class OmegaMetadata(OmegaRecord):
    """`omegaconf.base.Metadata` / `ContainerMetadata`: kept, never used."""


class OmegaValue(OmegaRecord):
    """A value node (`AnyNode`, `StringNode`, ...): its value is `_val`."""


class OmegaDict(OmegaRecord):
    """`DictConfig`: `_content` maps keys to nodes or containers (None, '???' or an interpolation string
    for a whole container)."""


class OmegaList(OmegaRecord):
    """`ListConfig`: `_content` is a list of nodes or containers."""


def _defaultdict(factory: Any = None, *args: Any) -> dict:
    """`collections.defaultdict` as OmegaConf's resolver cache uses it: a plain dict (factory unused)."""
    return {}


def _globals() -> dict[tuple[str, str], Any]:
    table: dict[tuple[str, str], Any] = {
        ("omegaconf.dictconfig", "DictConfig"): OmegaDict,
        ("omegaconf.listconfig", "ListConfig"): OmegaList,
        ("omegaconf.base", "Metadata"): OmegaMetadata,
        ("omegaconf.base", "ContainerMetadata"): OmegaMetadata,
        ("collections", "defaultdict"): _defaultdict,
        ("typing", "Any"): TypeReference("typing.Any"),
    }
    for node in ("AnyNode", "StringNode", "IntegerNode", "FloatNode", "BooleanNode", "BytesNode", "PathNode"):
        table[("omegaconf.nodes", node)] = OmegaValue
    for module in ("builtins", "__builtin__"):
        for name in ("dict", "list", "tuple", "int", "float", "str", "bool", "bytes", "object"):
            table[(module, name)] = TypeReference(f"builtins.{name}")
    return table


OMEGACONF_GLOBALS: dict[tuple[str, str], Any] = _globals()


def _root(node: OmegaRecord) -> OmegaRecord:
    for _ in range(_MAX_DEPTH):
        parent = node.parent
        if parent is None:
            return node
        node = parent
    return node


def _resolve(node: OmegaRecord, text: str, depth: int) -> Any:
    """An absolute `${a.b.c}` interpolation looked up from the root; other strings come back as they are."""
    match = _INTERPOLATION.match(text)
    if match is None:
        return text
    target: Any = _root(node)
    for key in match.group(1).split("."):
        content = target._state.get("_content") if isinstance(target, OmegaRecord) else None
        if isinstance(target, OmegaDict) and isinstance(content, dict) and key in content:
            target = content[key]
        elif isinstance(target, OmegaList) and isinstance(content, list) and key.isdigit() and int(key) < len(content):
            target = content[int(key)]
        else:
            return text  # unresolvable here: left as the string, the consumer names it
    return to_plain(target, depth + 1)


def to_plain(x: Any, depth: int = 0) -> Any:
    """An OmegaConf record tree as plain dicts, lists and scalars (other values unchanged)."""
    if depth > _MAX_DEPTH:
        raise RecursionError("OmegaConf interpolations nest too deeply")
    if isinstance(x, (OmegaDict, OmegaList)):
        content = x._state.get("_content")
        if isinstance(content, str):
            return _resolve(x, content, depth)
        if isinstance(x, OmegaDict) and isinstance(content, dict):
            return {k: to_plain(v, depth + 1) for k, v in content.items()}
        if isinstance(x, OmegaList) and isinstance(content, (list, tuple)):
            return [to_plain(v, depth + 1) for v in content]
        return None
    if isinstance(x, OmegaValue):
        val = x._state.get("_val")
        return _resolve(x, val, depth) if isinstance(val, str) else val
    if isinstance(x, OmegaRecord):
        return None
    return x
