"""Model dropdowns and model summaries, the same in every tab (the registry is the only source)."""
from __future__ import annotations

from typing import Any

__all__ = ["STYLEGAN_ARCHS", "card_summary", "default_model", "format_bytes", "generator_choices", "model_choices"]

STYLEGAN_ARCHS = ("stylegan2", "stylegan3")


def model_choices(ctx: Any, task: str) -> list[tuple[str, str]]:
    """(label, id) pairs for the registry models tagged `task`; untrained ones say so."""
    choices = []
    for model_id in ctx.registry.ids(task=task):
        card = ctx.registry.get(model_id)
        choices.append((f"{model_id} (untrained)" if card.untrained else model_id, model_id))
    return choices


def generator_choices(ctx: Any, task: str) -> list[tuple[str, str]]:
    """`model_choices` of `task` limited to StyleGAN2/3 generators (what the editing tabs drive)."""
    return [(label, i) for label, i in model_choices(ctx, task) if ctx.registry.get(i).arch in STYLEGAN_ARCHS]


def default_model(ctx: Any, choices: list[tuple[str, str]], preferred: str | None = None) -> str | None:
    """`preferred` when it is among `choices`, else the first choice, else None."""
    ids = [value for _, value in choices]
    if preferred in ids:
        return preferred
    return ids[0] if ids else None


def format_bytes(size: int | None) -> str:
    """'1.2 GB', '364 MB', '12 kB'; 'unknown' for None."""
    if size is None:
        return "unknown"
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit in ("B", "kB") or value >= 100 else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"


def card_summary(card: Any) -> str:
    """A short Markdown description of a model: what it is, its licence and where it comes from."""
    if card is None:
        return "No registered model offers this yet."
    res = f"{card.resolution} px · " if card.resolution else ""
    lines = [f"**{card.id}** · {card.arch} · {res}licence: {card.license}"]
    if card.untrained:
        lines.append("**Untrained:** random weights made in code, so it draws abstract patterns, not "
                     "faces. It lets the hub run offline; download a real model in the Models tab.")
    if card.description and not (card.untrained and "untrained" in card.description.lower()):
        lines.append(card.description)
    if card.paper or card.official_repo:
        lines.append(" · ".join(x for x in (card.paper, card.official_repo) if x))
    return "\n\n".join(lines)
