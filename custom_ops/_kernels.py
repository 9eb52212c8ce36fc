"""The ops that have CUDA kernels and the error a failed kernel build raises: a leaf module, so the
dispatcher (`_dispatch`) and the builder (`_build`, imported only on first CUDA use) share them
without importing each other in a circle (kernel plugins as in NVlabs' `torch_utils/custom_ops.py`,
github.com/NVlabs/stylegan3)."""
from __future__ import annotations

__all__ = ["OPS", "PluginBuildError"]

OPS = ("upfirdn2d", "bias_act", "filtered_lrelu")


class PluginBuildError(RuntimeError):
    """The CUDA kernel of an op could not be built or loaded."""
