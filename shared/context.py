"""The services every tab receives: model cache, device, settings, registry and a status line.

Built once by `app.py` (hysts's Spaces build a model per tab at start-up; we build nothing
heavy: the cache loads a record on its first request, `ctx.models.get(card_id)`, and holds the
derived data in `ctx.models.derived`). The context's cache is also the process's default
(`shared.model_cache.default_cache`), so library functions called without one share it. Nothing
per-user lives here; per-user data goes in `gr.State` (see `shared.latent_store`).
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import torch

import custom_ops
from shared import hub, registry
from shared.model_cache import ModelCache, set_default_cache

__all__ = ["HubContext", "Settings", "create_context", "pick_device"]


def _env_int(env: Mapping[str, str], name: str, default: int, minimum: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, got {raw!r}.") from None
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}.")
    return value


@dataclass(frozen=True)
class Settings:
    """App-wide limits, read from the environment once."""
    queue_max_size: int = 16            # requests waiting in Gradio's queue before "queue full"
    gpu_concurrency: int = 1            # handlers sharing concurrency_id="gpu" that run at once
    max_images: int = 16                # seeds per Generate call
    model_budget_bytes: int = 4 << 30   # parameter bytes the model cache keeps before evicting

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        """HUB_QUEUE_SIZE, HUB_GPU_CONCURRENCY, HUB_MAX_IMAGES, HUB_MODEL_BUDGET_MB (unset = defaults)."""
        env = os.environ if env is None else env
        d = cls()
        return cls(queue_max_size=_env_int(env, "HUB_QUEUE_SIZE", d.queue_max_size, 1),
                   gpu_concurrency=_env_int(env, "HUB_GPU_CONCURRENCY", d.gpu_concurrency, 1),
                   max_images=_env_int(env, "HUB_MAX_IMAGES", d.max_images, 1),
                   model_budget_bytes=_env_int(env, "HUB_MODEL_BUDGET_MB", d.model_budget_bytes >> 20, 1) << 20)


def pick_device(env: Mapping[str, str] | None = None) -> torch.device:
    """HUB_DEVICE (e.g. "cpu", "cuda", "cuda:1") when set, else the first GPU if any, else the CPU."""
    env = os.environ if env is None else env
    raw = env.get("HUB_DEVICE", "").strip()
    if not raw:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(raw)
    except RuntimeError:
        raise ValueError(f"HUB_DEVICE must name a torch device such as cpu or cuda:0, got {raw!r}.") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"HUB_DEVICE={raw} asks for a GPU but PyTorch sees none; unset it or use cpu.")
    return device


def describe_device(device: torch.device) -> str:
    """'GPU NVIDIA H100 80GB HBM3 (cuda:0)' or 'CPU (4 threads)'."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"GPU {torch.cuda.get_device_name(index)} (cuda:{index})"
    threads = torch.get_num_threads()
    return f"{device.type.upper()} ({threads} thread{'' if threads == 1 else 's'})"


def _registry_module() -> ModuleType:
    return registry


@dataclass
class HubContext:
    """Shared services handed to every `build_tab(ctx)`.

    `latents` is the `gr.State` component holding each session's `LatentStore`; `build_demo`
    fills it in while building the page (the component is shared, its value is per session).
    """
    models: ModelCache
    device: torch.device
    settings: Settings
    registry: ModuleType = field(default_factory=_registry_module)
    latents: Any = None             # gr.State[LatentStore] of the page being built

    def status_line(self) -> str:
        """Device, op path, Hub connectivity and cache location, as one Markdown line."""
        online = "online" if hub.hub_online() else "offline (HF_HUB_OFFLINE=1 or Hub unreachable)"
        return (f"**Device** {describe_device(self.device)} · **{custom_ops.summary()}** · "
                f"**Hub** {online} · **cache** `{hub.cache_dir()}`")


def create_context(*, device: torch.device | None = None, settings: Settings | None = None) -> HubContext:
    """Build the shared services (cheap: no model is loaded, nothing is downloaded); the new model
    cache becomes the process's default."""
    device = device if device is not None else pick_device()
    settings = settings if settings is not None else Settings.from_env()
    models = set_default_cache(ModelCache(device, settings.model_budget_bytes))
    return HubContext(models=models, device=device, settings=settings)
