"""What a StyleFlow request asks for (Abdal, Zhu, Mitra, Wonka, "StyleFlow: Attribute-conditioned
Exploration of StyleGAN-Generated Images using Conditional Continuous Normalizing Flows", ACM TOG
2021; RameenAbdal/StyleFlow): the target values of the attributes set in the editor, where a value
left where the source's reading put it (up to one editor step) asks for no change, as in the
official UI. (The demo world's reading of a source is `shared.demo.flow.read_attributes`.)
"""
from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor

from shared.editing.styleflow_edit import FlowAttribute, FlowModel

__all__ = ["attribute_step", "target_values"]


def attribute_step(attr: FlowAttribute) -> float:
    """The editor's step for an attribute: 0.01 for ranges up to 2 units, else 0.5."""
    return 0.01 if attr.high - attr.low <= 2 else 0.5


def target_values(model: FlowModel, source: Tensor, values: Sequence[float]) -> dict[str, float]:
    """{attribute: target} for the editable attributes of `model` set to `values` (same order);
    a value within half a step of the source's (`source` [1, K]) keeps the source's value."""
    out = {}
    for a, v in zip(model.editable(), values):
        was = float(source[0, model.index(a.name)])
        out[a.name] = float(v) if abs(float(v) - was) > attribute_step(a) / 2 + 1e-6 else was
    return out
