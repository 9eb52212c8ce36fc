"""Loaded models shared by every user of the app: load once, keep within a memory budget.

The cache answers `generator(model_id)` with a model on the cache's device, in eval mode, with
`requires_grad` off, read-only by convention (hysts's Spaces mutate one shared model per user;
here nobody mutates). Weights come from `shared.hub.fetch` (local file -> Hub cache -> download
-> verify) and are built by `shared.load_generator`; built-in records (`BuiltinSource`) are made
with `StyleGAN2Generator(StyleGAN2Config.from_dict(arch_config)).init_random_(seeded generator)`.
Two concurrent requests for the same model load it once (a lock per key); when the parameter and
buffer bytes of the loaded models exceed the budget, the least recently used ones are dropped.
"""
from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from shared import hub, registry
from shared.registry import ModelCard

__all__ = ["Loader", "ModelCache", "default_loader", "module_bytes"]

log = logging.getLogger(__name__)

Loader = Callable[[ModelCard, "Path | None"], nn.Module]  # (card, weights file or None if built-in) -> CPU module


def default_loader(card: ModelCard, path: Path | None) -> nn.Module:
    """Build a generator for `card`: seeded random weights for built-in records, else `load_generator`."""
    if card.builtin is not None:
        if card.arch != "stylegan2":
            raise ValueError(f"built-in model '{card.id}' has arch {card.arch!r}; only stylegan2 can be built")
        from shared.archs.stylegan2 import StyleGAN2Config, StyleGAN2Generator
        G = StyleGAN2Generator(StyleGAN2Config.from_dict(card.arch_config or {}))
        G.init_random_(torch.Generator().manual_seed(card.builtin.seed))
        return G
    from shared import load_generator
    return load_generator(path)


def module_bytes(module: nn.Module) -> int:
    """Bytes held by a module's parameters and buffers."""
    tensors = list(module.parameters()) + list(module.buffers())
    return sum(t.numel() * t.element_size() for t in tensors)


class ModelCache:
    """Thread-safe, budgeted, least-recently-used cache of loaded models.

    Args:
        device:       where models are moved after loading (on CPU, in float32).
        budget_bytes: keep the sum of `module_bytes` under this; the model just requested is always
                      kept, even alone over budget.
        loader:       `(card, path_or_None) -> nn.Module` on CPU; default `default_loader`.
        cache_dir, endpoint, offline: passed to `shared.hub.fetch` (None = its settings).
        dtype:        floating dtype of the cached models.
        lookup:       `model_id -> ModelCard`; default `shared.registry.get`.
    """

    def __init__(self, device: torch.device | str, budget_bytes: int, *, loader: Loader | None = None,
                 cache_dir: Path | str | None = None, endpoint: str | None = None,
                 offline: bool | None = None, dtype: torch.dtype = torch.float32,
                 lookup: Callable[[str], ModelCard] | None = None) -> None:
        self.device = torch.device(device)
        self.budget_bytes = int(budget_bytes)
        self.dtype = dtype
        self._loader = loader or default_loader
        self._lookup = lookup or registry.get
        self._fetch_kwargs = {"cache_dir": cache_dir, "endpoint": endpoint, "offline": offline}
        self._lock = threading.Lock()                    # guards the two dicts below
        self._models: OrderedDict[tuple, tuple[nn.Module, int]] = OrderedDict()  # LRU first
        self._key_locks: dict[tuple, threading.Lock] = {}

    def _key(self, model_id: str) -> tuple:
        return model_id, str(self.device), self.dtype

    def generator(self, model_id: str, progress: hub.Progress | None = None) -> nn.Module:
        """The model for `model_id` (shared: do not modify it), loading it on first use.

        Raises KeyError for an unknown id, `shared.hub.HubError` when the weights cannot be had, and
        the loader's errors (`CheckpointError`) when the file cannot be read.
        """
        card = self._lookup(model_id)
        key = self._key(model_id)
        with self._lock:
            hit = self._models.get(key)
            if hit is not None:
                self._models.move_to_end(key)
                return hit[0]
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:  # one loader per key; late arrivals find the model below
            with self._lock:
                hit = self._models.get(key)
                if hit is not None:
                    self._models.move_to_end(key)
                    return hit[0]
            model = self._load(card, progress)
            size = module_bytes(model)
            with self._lock:
                self._models[key] = (model, size)
                self._evict(keep=key)
        return model

    def _load(self, card: ModelCard, progress: hub.Progress | None) -> nn.Module:
        path = None
        if card.builtin is None:
            path = hub.fetch(card, progress=progress, **self._fetch_kwargs)
        if progress is not None:
            progress(0.95, f"Loading {card.id}")
        model = self._loader(card, path)
        model = model.to(device=self.device, dtype=self.dtype).eval().requires_grad_(False)
        if progress is not None:
            progress(1.0, f"{card.id} loaded")
        log.info("loaded %s on %s (%.1f MB)", card.id, self.device, module_bytes(model) / 1e6)
        return model

    def _evict(self, keep: tuple) -> None:
        total = sum(size for _, size in self._models.values())
        for key in list(self._models):
            if total <= self.budget_bytes:
                break
            if key == keep:
                continue
            _, size = self._models.pop(key)
            total -= size
            log.info("evicted %s from the model cache (%.1f MB over budget)", key[0],
                     (total + size - self.budget_bytes) / 1e6)

    def loaded_ids(self) -> list[str]:
        """Ids of the models held now, least recently used first."""
        with self._lock:
            return [key[0] for key in self._models]

    def bytes_used(self) -> int:
        """Sum of `module_bytes` over the held models."""
        with self._lock:
            return sum(size for _, size in self._models.values())

    def evict(self, model_id: str) -> bool:
        """Drop one model; True if it was held."""
        with self._lock:
            return self._models.pop(self._key(model_id), None) is not None

    def clear(self) -> None:
        """Drop every held model."""
        with self._lock:
            self._models.clear()
