"""A small per-session store of named W+ latents that tabs hand to each other.

The Generate tab puts the latent of a chosen image here ("Send to Mixing"); later tabs read it.
The store lives in a `gr.State` (one copy per browser session, deep-copied by Gradio), so it is
kept small and on the CPU: numpy float32 arrays, a bounded number of entries, and no torch
tensors or model references. It never touches a shared object, so one user's latents are
invisible to another (the per-user-data rule of hysts's Spaces, turned around).

Updates return a new store instead of changing this one: Gradio detects a changed `gr.State`
by object identity for such values, so a fresh object is what fires the tabs' `.change`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["LatentEntry", "LatentStore"]

MAX_ENTRIES = 16


@dataclass(frozen=True, eq=False)
class LatentEntry:
    """One latent: which generator it belongs to, its W+ code and where it came from."""
    model_id: str       # registry id of the generator the latent belongs to
    ws: np.ndarray      # [1, num_ws, w_dim] float32, read-only
    source: str         # human description, e.g. "Generate: seed 3, psi 0.7"

    def __post_init__(self):
        ws = np.asarray(self.ws, dtype=np.float32)
        if ws.ndim != 3 or ws.shape[0] != 1:
            raise ValueError(f"ws must be [1, num_ws, w_dim], got {ws.shape}")
        ws = ws.copy()
        ws.flags.writeable = False
        object.__setattr__(self, "ws", ws)

    @property
    def num_ws(self) -> int:
        return int(self.ws.shape[1])

    @property
    def w_dim(self) -> int:
        return int(self.ws.shape[2])


@dataclass(eq=False)
class LatentStore:
    """Named latents of one session, plus which entry was last sent to each tab.

    `entries` keeps insertion order; the oldest entry is dropped beyond `max_entries`.
    """
    entries: dict[str, LatentEntry] = field(default_factory=dict)
    sent_to: dict[str, str] = field(default_factory=dict)   # tab key -> entry name
    max_entries: int = MAX_ENTRIES

    def put(self, name: str, entry: LatentEntry, *, for_tab: str | None = None) -> "LatentStore":
        """A new store holding `entry` under `name` (replacing one of that name).

        Args:
            name: label shown to the user; non-empty.
            entry: the latent.
            for_tab: tab key (e.g. "mixing") that should pick this entry up first.
        Returns:
            a new LatentStore; this one is left as it was.
        """
        if not name.strip():
            raise ValueError("a latent needs a non-empty name")
        entries = {k: v for k, v in self.entries.items() if k != name}
        entries[name] = entry
        while len(entries) > self.max_entries:
            del entries[next(iter(entries))]
        sent_to = {k: v for k, v in self.sent_to.items() if v in entries}
        if for_tab is not None:
            sent_to[for_tab] = name
        return LatentStore(entries=entries, sent_to=sent_to, max_entries=self.max_entries)

    def get(self, name: str) -> LatentEntry:
        """The entry called `name`; KeyError with a sentence when there is none."""
        try:
            return self.entries[name]
        except KeyError:
            raise KeyError(f"No latent called {name!r} in this session; send one from the Generate tab first.") from None

    def list(self, model_id: str | None = None) -> list[str]:
        """Entry names, oldest first; only those of `model_id` when given."""
        return [k for k, v in self.entries.items() if model_id is None or v.model_id == model_id]

    def latest_for(self, tab: str) -> tuple[str, LatentEntry] | None:
        """(name, entry) last sent to `tab`, or None."""
        name = self.sent_to.get(tab)
        if name is None or name not in self.entries:
            return None
        return name, self.entries[name]

    def __len__(self) -> int:
        return len(self.entries)
