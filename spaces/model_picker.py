"""Model dropdowns and model summaries, the same in every tab (the registry is the only source).

Each choice says what it needs before it runs here (`shared.availability`: ready, downloads from
the Hub, or needs a local file), the ready ones come first, and `picker_info` is the one line
beside a picker that says why the others cannot run now.
"""
from __future__ import annotations

from typing import Any

from shared.availability import Availability, availability, sort_key

__all__ = ["STYLEGAN_ARCHS", "card_summary", "choice_label", "default_model", "format_bytes", "generator_choices",
           "model_choices", "picker_info"]

STYLEGAN_ARCHS = ("stylegan1", "stylegan2", "stylegan3")


def choice_label(card: Any, avail: Availability | None = None) -> str:
    """'<id> · ready', '<id> (untrained) · ready', '<id> · downloads 364 MB from the Hub', ..."""
    avail = avail or availability(card)
    return f"{card.id}{' (untrained)' if card.untrained else ''} · {avail.label}"


def model_choices(ctx: Any, task: str) -> list[tuple[str, str]]:
    """(label, id) pairs for the registry models tagged `task`, labelled with what each needs
    before it runs and ordered ready first (registry order within a state)."""
    rows = []
    for model_id in ctx.registry.ids(task=task):
        card = ctx.registry.get(model_id)
        avail = availability(card)
        rows.append((sort_key(avail.state), choice_label(card, avail), model_id))
    return [(label, i) for _, label, i in sorted(rows, key=lambda r: r[0])]


def picker_info(ctx: Any, choices: list[tuple[str, str]]) -> str:
    """One line for beside a picker: how many choices run now and why the others cannot."""
    counts: dict[str, int] = {}
    for _, model_id in choices:
        state = availability(ctx.registry.get(model_id)).state
        counts[state] = counts.get(state, 0) + 1
    if not choices:
        return "no registry model offers this yet"
    parts = [f"{counts.get('ready', 0)} ready here"]
    if counts.get("download"):
        parts.append(f"{counts['download']} download from the Hub on first use")
    if counts.get("offline"):
        parts.append(f"{counts['offline']} need the Hub, which is offline here")
    if counts.get("local-file"):
        parts.append(f"{counts['local-file']} need a file you download by hand (Models tab)")
    return " · ".join(parts)


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
    avail = availability(card)
    if not avail.ready:
        lines.append(f"**{'Not on this machine' if avail.runs else 'Cannot run here now'}:** {avail.reason}")
    if card.untrained:
        lines.append("**Untrained:** random weights made in code, so it draws abstract patterns, not "
                     "faces. It lets the hub run offline; download a real model in the Models tab.")
    if card.description and not (card.untrained and "untrained" in card.description.lower()):
        lines.append(card.description)
    if card.paper or card.official_repo:
        lines.append(" · ".join(x for x in (card.paper, card.official_repo) if x))
    return "\n\n".join(lines)
