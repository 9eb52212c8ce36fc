"""StyleGAN Hub library: registry and Hub download, generator/encoder architectures,
checkpoint loaders, and the methods as pure tensor functions (no Gradio here)."""
from shared.loaders import CheckpointError, load_generator

__all__ = ["CheckpointError", "load_generator"]
