"""Whether a registry model can run here now, and what it needs if not: ready, a Hub download, or
a file the user fetches by hand.

Follows the resolution order of `shared.hub.fetch` (timm's `_hub.py` pattern: local override ->
Hub cache -> Hub download) without downloading or hashing anything: a model is *ready* when its
weights are built in or already on this machine, *download* when a Hub source exists and the Hub
answers, *offline* when a Hub source exists but the Hub does not answer, and *local-file* when the
weights only come from outside the Hub (NVIDIA NGC, Google Drive) and no file is here.
"""
from __future__ import annotations

from dataclasses import dataclass

from shared import hub
from shared.registry import ModelCard

__all__ = ["STATES", "Availability", "availability", "sort_key"]

# In the order pickers list them: what runs now first, what cannot run without the user last.
STATES = ("ready", "download", "offline", "local-file")


@dataclass(frozen=True)
class Availability:
    """What a model needs before it runs here."""
    state: str       # one of STATES
    label: str       # short, for a picker: "ready", "downloads 364 MB from the Hub", ...
    reason: str      # one sentence saying why it cannot run now and what to do; "" when ready

    @property
    def ready(self) -> bool:
        return self.state == "ready"

    @property
    def runs(self) -> bool:
        """True when picking it works now (ready, or a download the Hub will serve)."""
        return self.state in ("ready", "download")


def _size(card: ModelCard) -> str:
    if card.size is None:
        return ""
    mb = card.size / 1e6
    return f"{mb / 1000:.1f} GB " if mb >= 1000 else f"{mb:.0f} MB " if mb >= 10 else f"{mb:.1f} MB "


def availability(card: ModelCard, *, online: bool | None = None) -> Availability:
    """What `card` needs before it runs here; `online=None` asks `hub.hub_online()` (remembered
    for a minute, immediate with HF_HUB_OFFLINE=1) only when the answer depends on it."""
    if hub.is_cached(card):
        return Availability("ready", "ready", "")
    if card.hub_sources:
        size = _size(card)
        if online is None:
            online = hub.hub_online()
        if online:
            return Availability("download", f"downloads {size}from the Hub",
                                f"{card.id} downloads {size}from the Hugging Face Hub on first use (once; it "
                                f"stays in the cache).")
        return Availability("offline", f"downloads {size}from the Hub · offline now",
                            f"{card.id} downloads from the Hugging Face Hub, which this machine cannot reach "
                            f"(or HF_HUB_OFFLINE=1 is set): go online, or set {card.env_var} to a local copy.")
    where = card.manual_url or card.official_repo or "its official page"
    return Availability("local-file", "needs a local file",
                        f"{card.id} is not on the Hub: download {card.filename} from {where} and set "
                        f"{card.env_var} to its path (the Models tab lists where each file goes).")


def sort_key(state: str) -> int:
    """Position of a state in STATES (for ordering pickers: ready first)."""
    return STATES.index(state)
