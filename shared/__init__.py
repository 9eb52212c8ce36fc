"""StyleGAN Hub library: registry and Hub download, generator/encoder architectures,
checkpoint loaders, and the methods as pure tensor functions (no Gradio here).

`load_generator` is imported on first use so that light modules (the registry CLI) start
without importing torch.
"""
from __future__ import annotations

__all__ = ["load_encoder", "load_generator"]


def __getattr__(name: str):
    if name in __all__:
        from shared import loaders
        return getattr(loaders, name)
    raise AttributeError(f"module 'shared' has no attribute {name!r}")
