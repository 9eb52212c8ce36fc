"""Loaded models shared by every user of the app: one call per record, kept within a memory budget.

`ModelCache.get(card_id)` answers every kind of registry record (generators, encoders, CLIPs,
flows, mappers, the demo predictor, direction sets, identity and perceptual networks) with the
built object on the cache's device, in eval mode, `requires_grad` off, read-only by convention
(hysts's Spaces mutate one shared model per user; here nobody mutates). The weights come from
`shared.hub.fetch` (local file -> Hub cache -> download -> verify by sha256); the object is built
by the loader the record's kind names in `LOADERS` (architecture, or architecture and file format):
a function that reads tensors and configs, never one that executes code from the file. Built-in
records (`BuiltinSource`) are made with `StyleGAN2Generator(...).init_random_(seeded generator)`.
`generator(model_id)` is the same call for generator records.

Two concurrent requests for the same record load it once (a lock per key); when the bytes of the
tensors held by the loaded objects exceed the budget, the least recently used ones are dropped.
Data derived from records (StyleSpace statistics, GANSpace bases, part catalogues, relevance
matrices) lives in the cache's `derived` (`DerivedCache`: keyed by the ids it comes from, least
recently used first out, bounded by entries and bytes). Like timm's `create_model`, the loader
table names each loader by module path and is resolved on first use, so the cache does not import
every architecture at start-up and the loader modules may themselves use the cache.
"""
from __future__ import annotations

import dataclasses
import importlib
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from torch import nn

from shared import hub, registry
from shared.errors import CheckpointError
from shared.registry import ModelCard

__all__ = [
    "DEFAULT_BUDGET_BYTES", "DERIVED_MAX_ENTRIES", "DerivedCache", "GENERATOR_ARCHS", "LOADERS", "Loader", "ModelCache",
    "budget_bytes_from_env", "default_cache", "default_loader", "load_record", "module_bytes", "object_bytes",
    "set_default_cache",
]

log = logging.getLogger(__name__)
T = TypeVar("T")

Loader = Callable[[ModelCard, "Path | None"], Any]  # (card, weights file or None if built-in) -> CPU object

DEFAULT_BUDGET_BYTES = 4 << 30               # HUB_MODEL_BUDGET_MB unset
DERIVED_MAX_ENTRIES = 256                    # derived-data entries kept (statistics, catalogues, embeddings)
GENERATOR_ARCHS = frozenset({"stylegan1", "stylegan2", "stylegan3", "stylenerf", "eg3d"})

#: record kind -> loader, as "module:function" and how it is called: "card" = f(card, path),
#: "path" = f(path). The kind is "<arch>:<format>" when that entry exists, else "<arch>".
LOADERS: dict[str, tuple[str, str]] = {
    "e4e": ("shared.loaders.encoders:load_encoder_checkpoint", "path"),
    "psp": ("shared.loaders.encoders:load_encoder_checkpoint", "path"),
    "restyle-psp": ("shared.loaders.encoders:load_encoder_checkpoint", "path"),
    "restyle-e4e": ("shared.loaders.encoders:load_encoder_checkpoint", "path"),
    "clip-vit": ("shared.styleclip.clip:load_clip", "card"),
    "open-clip": ("shared.styleclip.clip:load_clip", "card"),
    "styleflow-cnf:safetensors": ("shared.demo.flow:load_demo_flow", "path"),
    "styleflow-cnf:torch-state-dict": ("shared.editing.styleflow_edit:official_flow_model", "path"),
    "styleclip-levels-mapper": ("shared.styleclip.mapper:load_mapper_record", "card"),
    "styleclip-single-mapper": ("shared.styleclip.mapper:load_mapper_record", "card"),
    "demo-predictor": ("shared.demo.predictor:load_predictor", "path"),
    "direction-set": ("shared.demo.directions:load_directions", "path"),
    "latent-direction": ("shared.editing.directions:read_direction_file", "path"),
    "arcface-ir-se": ("shared.inversion.identity:load_arcface", "path"),
    "vgg16": ("shared.inversion.losses:perceptual_loss", "path"),
    "posewithstyle": ("shared.loaders.posewithstyle:load_posewithstyle", "path"),
    "posewithstyle-ccm": ("shared.loaders.posewithstyle:load_ccm", "path"),
    "densepose-uv-lookup": ("shared.loaders.posewithstyle:load_uv_lookup", "path"),
    "densepose-uv-parts": ("shared.loaders.posewithstyle:load_uv_parts", "path"),
    "rignet": ("shared.rig:load_rig", "path"),
}


def _resolve(target: str) -> Callable:
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def default_loader(card: ModelCard, path: Path | None) -> nn.Module:
    """Build a generator for `card`: seeded random weights for built-in records, else `load_generator`."""
    if card.builtin is not None:
        if card.arch != "stylegan2":
            raise ValueError(f"built-in model '{card.id}' has arch {card.arch!r}; only stylegan2 can be built")
        stylegan2 = importlib.import_module("shared.archs.stylegan2")
        G = stylegan2.StyleGAN2Generator(stylegan2.StyleGAN2Config.from_dict(card.arch_config or {}))
        G.init_random_(torch.Generator().manual_seed(card.builtin.seed))
        return G
    G = _resolve("shared.loaders:load_generator")(path)
    if card.arch == "stylegan1" and (card.arch_config or {}).get("crop"):   # letterboxed data (cars 512x384)
        G.set_crop(tuple(card.arch_config["crop"]))
    if card.arch == "eg3d" and getattr(G, "arch", None) != "eg3d":  # a local file the user pointed us at
        raise CheckpointError(
            f"{path.name} is a {getattr(G, 'arch', type(G).__name__)} generator, but '{card.id}' is an EG3D "
            f"model; point {card.env_var} at the EG3D pickle ({card.filename}).")
    return G


def load_record(card: ModelCard, path: Path | None) -> Any:
    """Build the object of any non-generator record from its file with the loader `LOADERS` names.
    Raises ValueError for a kind without a loader."""
    entry = LOADERS.get(f"{card.arch}:{card.format}") or LOADERS.get(card.arch)
    if entry is None:
        raise ValueError(f"'{card.id}' (arch {card.arch}, format {card.format}) is not a kind the model cache "
                         "loads; use `shared.hub.fetch` for its file.")
    target, call = entry
    if path is None:
        raise ValueError(f"'{card.id}' has no weights file to load.")
    fn = _resolve(target)
    return fn(card, path) if call == "card" else fn(path)


def module_bytes(module: nn.Module) -> int:
    """Bytes held by a module's parameters and buffers."""
    tensors = list(module.parameters()) + list(module.buffers())
    return sum(t.numel() * t.element_size() for t in tensors)


def object_bytes(obj: Any) -> int:
    """Bytes of the tensors and arrays an object holds: modules, tensors, NumPy arrays, and those
    inside dataclasses, tuples, lists and dicts (each storage counted once)."""
    seen: set[int] = set()

    def tensor(t: torch.Tensor) -> int:
        key = t.untyped_storage().data_ptr() if t.device.type != "meta" else id(t)
        if key in seen:
            return 0
        seen.add(key)
        return t.untyped_storage().nbytes()

    def walk(x: Any, depth: int) -> int:
        if depth > 6 or id(x) in seen:
            return 0
        if isinstance(x, torch.Tensor):
            return tensor(x)
        seen.add(id(x))
        if isinstance(x, nn.Module):
            return sum(tensor(t) for t in (*x.parameters(), *x.buffers()))
        if isinstance(x, np.ndarray):
            return int(x.nbytes)
        if isinstance(x, Mapping):
            return sum(walk(v, depth + 1) for v in x.values())
        if isinstance(x, (tuple, list)):
            return sum(walk(v, depth + 1) for v in x)
        if dataclasses.is_dataclass(x) and not isinstance(x, type):
            return sum(walk(getattr(x, f.name), depth + 1) for f in dataclasses.fields(x))
        return 0

    return walk(obj, 0)


def _place(obj: Any, device: torch.device, dtype: torch.dtype) -> Any:
    """Move what a loader built to `device`, frozen: a module in `dtype` (eval, no gradients); the
    modules inside tuples and dataclasses (a CLIP's model, a flow, a mapper, an encoder) moved in place."""
    if isinstance(obj, nn.Module):
        return obj.to(device=device, dtype=dtype).eval().requires_grad_(False)
    parts = obj if isinstance(obj, (tuple, list)) else (
        [getattr(obj, f.name) for f in dataclasses.fields(obj)] if dataclasses.is_dataclass(obj) else [])
    for part in parts:
        if isinstance(part, nn.Module):
            part.to(device).eval().requires_grad_(False)
    return obj


class DerivedCache:
    """Thread-safe least-recently-used store of data derived from records, keyed by tuples whose
    first items name the records ("stylespace-stats", model id, samples, seed) and bounded by
    entry count and bytes (`object_bytes`). `get_or_build` computes a missing entry once even when
    several requests ask at the same time; the entry just built is always kept."""

    def __init__(self, max_entries: int = 256, budget_bytes: int = 1 << 30) -> None:
        self.max_entries = int(max_entries)
        self.budget_bytes = int(budget_bytes)
        self._lock = threading.Lock()
        self._items: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()   # LRU first
        self._key_locks: dict[Hashable, threading.Lock] = {}

    def get(self, key: Hashable, default: Any = None) -> Any:
        """The entry for `key` (now the most recently used), else `default`."""
        with self._lock:
            hit = self._items.get(key)
            if hit is None:
                return default
            self._items.move_to_end(key)
            return hit[0]

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._items

    def put(self, key: Hashable, value: Any) -> Any:
        """Store `value` under `key` and evict what exceeds the bounds; returns `value`."""
        size = object_bytes(value)
        with self._lock:
            self._items[key] = (value, size)
            self._items.move_to_end(key)
            self._evict(keep=key)
        return value

    def get_or_build(self, key: Hashable, build: Callable[[], T]) -> T:
        """The entry for `key`, built with `build()` (once per key at a time) when missing."""
        with self._lock:
            hit = self._items.get(key)
            if hit is not None:
                self._items.move_to_end(key)
                return hit[0]
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:
            with self._lock:
                hit = self._items.get(key)
                if hit is not None:
                    self._items.move_to_end(key)
                    return hit[0]
            try:
                return self.put(key, build())
            finally:
                with self._lock:
                    self._key_locks.pop(key, None)

    def _evict(self, keep: Hashable) -> None:
        total = sum(size for _, size in self._items.values())
        for key in list(self._items):
            if len(self._items) <= self.max_entries and total <= self.budget_bytes:
                break
            if key == keep:
                continue
            _, size = self._items.pop(key)
            total -= size
            log.info("evicted %s from the derived-data cache", key)

    def drop(self, record_id: str) -> int:
        """Drop every entry whose key names `record_id`; returns how many went."""
        with self._lock:
            gone = [k for k in self._items if isinstance(k, tuple) and record_id in k]
            for k in gone:
                del self._items[k]
            return len(gone)

    def keys(self) -> list[Hashable]:
        """Keys held now, least recently used first."""
        with self._lock:
            return list(self._items)

    def bytes_used(self) -> int:
        with self._lock:
            return sum(size for _, size in self._items.values())

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


class ModelCache:
    """Thread-safe, budgeted, least-recently-used cache of loaded records.

    Args:
        device:       where objects are moved after loading (on CPU, in float32); `get(device=...)`
                      asks for another device (a separate entry).
        budget_bytes: keep the sum of `object_bytes` under this; the record just requested is always
                      kept, even alone over budget.
        loader:       `(card, path_or_None) -> nn.Module` on CPU for generator records; default
                      `default_loader`. Other kinds use `load_record`.
        cache_dir, endpoint, offline: passed to `shared.hub.fetch` (None = its settings).
        dtype:        floating dtype of the cached modules.
        lookup:       `model_id -> ModelCard`; default `shared.registry.get`.
        derived:      the store of derived data; default a `DerivedCache` of `DERIVED_MAX_ENTRIES`
                      entries and a quarter of `budget_bytes`.
    """

    def __init__(self, device: torch.device | str, budget_bytes: int, *, loader: Loader | None = None,
                 cache_dir: Path | str | None = None, endpoint: str | None = None,
                 offline: bool | None = None, dtype: torch.dtype = torch.float32,
                 lookup: Callable[[str], ModelCard] | None = None, derived: DerivedCache | None = None) -> None:
        self.device = torch.device(device)
        self.budget_bytes = int(budget_bytes)
        self.dtype = dtype
        self.derived = derived if derived is not None else DerivedCache(DERIVED_MAX_ENTRIES,
                                                                        max(self.budget_bytes // 4, 1))
        self._loader = loader or default_loader
        self._lookup = lookup or registry.get
        self._fetch_kwargs = {"cache_dir": cache_dir, "endpoint": endpoint, "offline": offline}
        self._lock = threading.Lock()                    # guards the two dicts below
        self._models: OrderedDict[tuple, tuple[Any, int]] = OrderedDict()  # LRU first
        self._key_locks: dict[tuple, threading.Lock] = {}

    def _key(self, model_id: str, device: torch.device | None = None) -> tuple:
        return model_id, str(device or self.device), self.dtype

    def get(self, card_id: str, *, device: torch.device | str | None = None,
            progress: hub.Progress | None = None) -> Any:
        """The object of record `card_id` (shared: do not modify it), loading it on first use.

        Generators, encoders (`EncoderCheckpoint`), the demo predictor, ArcFace: modules. CLIPs:
        `ClipModel`. Flows: `FlowModel`. Mappers: `(LevelsMapper, meta)`. Direction sets:
        `DirectionSet`; direction files: the stored tensor; `lpips-vgg16`: the LPIPS loss.

        Raises KeyError for an unknown id, `shared.hub.HubError` when the weights cannot be had,
        ValueError for a record kind without a loader, and the loader's errors (`CheckpointError`)
        when the file cannot be read.
        """
        card = self._lookup(card_id)
        dev = torch.device(device) if device is not None else self.device
        key = self._key(card_id, dev)
        with self._lock:
            hit = self._models.get(key)
            if hit is not None:
                self._models.move_to_end(key)
                return hit[0]
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:  # one loader per key; late arrivals find the object below
            with self._lock:
                hit = self._models.get(key)
                if hit is not None:
                    self._models.move_to_end(key)
                    return hit[0]
            obj = self._load(card, dev, progress)
            size = object_bytes(obj)
            with self._lock:
                self._models[key] = (obj, size)
                self._evict(keep=key)
        return obj

    def generator(self, model_id: str, progress: hub.Progress | None = None) -> nn.Module:
        """`get` for a generator record; ValueError when `model_id` names another kind."""
        card = self._lookup(model_id)
        if card.arch not in GENERATOR_ARCHS:
            raise ValueError(f"'{model_id}' is a {card.arch} record, not a generator.")
        return self.get(model_id, progress=progress)

    def _load(self, card: ModelCard, device: torch.device, progress: hub.Progress | None) -> Any:
        path = None
        if card.builtin is None:
            path = hub.fetch(card, progress=progress, **self._fetch_kwargs)
        if progress is not None:
            progress(0.95, f"Loading {card.id}")
        obj = self._loader(card, path) if card.arch in GENERATOR_ARCHS else load_record(card, path)
        obj = _place(obj, device, self.dtype)
        if progress is not None:
            progress(1.0, f"{card.id} loaded")
        log.info("loaded %s on %s (%.1f MB)", card.id, device, object_bytes(obj) / 1e6)
        return obj

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
        """Ids of the records held now, least recently used first."""
        with self._lock:
            return [key[0] for key in self._models]

    def bytes_used(self) -> int:
        """Sum of `object_bytes` over the held records."""
        with self._lock:
            return sum(size for _, size in self._models.values())

    def evict(self, model_id: str) -> bool:
        """Drop one record (on every device); True if it was held."""
        with self._lock:
            keys = [k for k in self._models if k[0] == model_id]
            for k in keys:
                del self._models[k]
            return bool(keys)

    def clear(self) -> None:
        """Drop every held record and the derived data."""
        with self._lock:
            self._models.clear()
        self.derived.clear()


def budget_bytes_from_env(env: Mapping[str, str] | None = None) -> int:
    """HUB_MODEL_BUDGET_MB (a whole number of MiB, at least 1) in bytes; unset: 4 GiB."""
    env = os.environ if env is None else env
    raw = env.get("HUB_MODEL_BUDGET_MB", "").strip()
    if not raw:
        return DEFAULT_BUDGET_BYTES
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"HUB_MODEL_BUDGET_MB must be a whole number, got {raw!r}.") from None
    if value < 1:
        raise ValueError(f"HUB_MODEL_BUDGET_MB must be at least 1, got {value}.")
    return value << 20


_default: ModelCache | None = None
_default_lock = threading.Lock()


def default_cache() -> ModelCache:
    """The process's model cache: the one `shared.context.create_context` made (the app's), else
    one made on first use (CPU, HUB_MODEL_BUDGET_MB) for scripts and tests that have no context."""
    global _default
    with _default_lock:
        if _default is None:
            _default = ModelCache("cpu", budget_bytes_from_env())
        return _default


def set_default_cache(cache: ModelCache) -> ModelCache:
    """Make `cache` the process's model cache (what `default_cache` returns); returns it."""
    global _default
    with _default_lock:
        _default = cache
    return cache
