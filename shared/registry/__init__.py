"""Model registry: every pretrained network the hub knows, as frozen records read by small functions.

The design follows timm's registry (huggingface/pytorch-image-models `_registry.py`): records live
as data, one file per family (`stylegan2.py`, `stylegan3.py`, `encoders.py`, `auxiliary.py`,
`stylenerf.py`, `eg3d.py`, `demo.py`, `stylegan1.py`), each exporting `CARDS`; this module registers them and
answers look-ups, including a record's companions (`companion(model_id, "predictor")`: the records
made for a generator). Downloading and verifying is `shared.hub`; loading and caching is
`shared.model_cache`. Command line: `python -m shared.registry list|download ID|verify ID|path ID`.
"""
from __future__ import annotations

import threading

from shared.registry import (auxiliary, demo, editing, encoders, eg3d, posewithstyle, styleclip, stylegan1, stylegan2,
                             stylegan3, stylenerf)
from shared.registry._card import (
    ARCHS, COMPANION_KINDS, FORMATS, PLURAL_COMPANIONS, TASKS, BuiltinSource, HubSource, LocalSource, ModelCard,
    Source, env_var_for,
)

__all__ = [
    "ARCHS", "COMPANION_KINDS", "DEFAULT_GENERATOR_ID", "FORMATS", "PAIRED_ENCODERS", "TASKS", "UNPINNED_REPOS",
    "UNTRAINED_ID", "BuiltinSource", "HubSource", "LocalSource", "ModelCard", "Source", "cards", "companion",
    "companions", "env_var_for", "get", "ids", "register",
]

# The demo world's trained generator, shipped in the repository: the default of every tab.
DEFAULT_GENERATOR_ID = demo.DEMO_ID
UNTRAINED_ID = demo.UNTRAINED_ID

# Hub repos whose commit could not be looked up when the records were written (no network):
# their records carry revision=None (default branch) and sha256=None, so the first download's
# hash is recorded and shown as unverified. `python -m shared.registry verify ID` prints the
# commit and hash to pin. A new record from a repo outside this set must pin a 40-hex revision.
UNPINNED_REPOS = frozenset({
    "akhaliq/jojogan-stylegan2-ffhq-config-f",
    "public-data/StyleGAN2",
    "hysts/StyleGAN2",
    "public-data/e4e",
    "AIRI-Institute/HairFastGAN",
    "public-data/dlib_face_landmark_model",
    "timm/vgg16.tv_in1k",
    "timm/vit_base_patch32_clip_224.openai",
    "timm/vit_large_patch14_clip_224.openai",
    "laion/CLIP-ViT-B-32-laion2B-s34B-b79K",
    "facebook/stylenerf-ffhq-config-basic",
})

_lock = threading.Lock()
_cards: dict[str, ModelCard] = {}


def register(card: ModelCard) -> ModelCard:
    """Add a record; a second record with the same id raises ValueError."""
    with _lock:
        if card.id in _cards:
            raise ValueError(f"model id {card.id!r} is already registered")
        _cards[card.id] = card
    return card


def get(model_id: str) -> ModelCard:
    """The record for `model_id`; an unknown id raises KeyError with a readable sentence."""
    try:
        return _cards[model_id]
    except KeyError:
        raise KeyError(f"Unknown model '{model_id}': `python -m shared.registry list` shows the "
                       f"{len(_cards)} registered ids.") from None


def ids(task: str | None = None, family: str | None = None) -> list[str]:
    """Registered ids in registration order, optionally only those with a task tag / family."""
    return [c.id for c in cards() if (task is None or task in c.tasks)
            and (family is None or c.family == family)]


def cards() -> list[ModelCard]:
    """Every registered record, in registration order."""
    with _lock:
        return list(_cards.values())


def _check_kind(kind: str) -> None:
    if kind not in COMPANION_KINDS:
        raise KeyError(f"Unknown companion kind {kind!r}; the kinds are {', '.join(sorted(COMPANION_KINDS))}.")


def companion(model_id: str | None, kind: str) -> str | None:
    """The id of the record of `kind` ("encoder", "predictor", "clip", "flow", "directions", ...)
    made for `model_id`, or None when it has none (or `model_id` is None or unknown). For the
    plural kinds ("mappers") use `companions`."""
    _check_kind(kind)
    if kind in PLURAL_COMPANIONS:
        raise KeyError(f"{kind!r} names several records; use registry.companions(model_id, {kind!r}).")
    card = _cards.get(model_id) if model_id else None
    return None if card is None else card.companions.get(kind)


def companions(model_id: str | None, kind: str) -> tuple[str, ...]:
    """The ids of the records of `kind` made for `model_id` (empty when none); works for every kind."""
    _check_kind(kind)
    card = _cards.get(model_id) if model_id else None
    value = None if card is None else card.companions.get(kind)
    if value is None:
        return ()
    return tuple(value) if kind in PLURAL_COMPANIONS else (value,)


for _module in (demo, stylegan2, stylegan1, stylegan3, encoders, stylenerf, eg3d, editing, styleclip, auxiliary,
                posewithstyle):
    for _record in _module.CARDS:
        register(_record)
del _module, _record

#: generator id -> {inversion method key: encoder record} for the encoders trained for that generator
#: (its "encoder" companion; the method key is the encoder's arch, "restyle-e4e" -> "restyle_e4e")
PAIRED_ENCODERS: dict[str, dict[str, str]] = {
    c.id: {get(c.companions["encoder"]).arch.replace("-", "_"): c.companions["encoder"]}
    for c in cards() if "encoder" in c.companions}
