"""Custom ops used by the StyleGAN generators: public function -> dispatch -> CUDA or reference.

The layering follows NVlabs' `torch_utils/ops` (github.com/NVlabs/stylegan3): each op is a
public function with a docstring, a pure-PyTorch reference that always works (and supports
autograd) and a fused CUDA kernel of our own, built lazily with ninja on the first call
with a CUDA tensor. Nothing is built at import.
"""
from custom_ops._dispatch import PluginBuildError, status, summary
from custom_ops.bias_act import bias_act
from custom_ops.conv2d_resample import conv2d_resample
from custom_ops.filtered_lrelu import filtered_lrelu
from custom_ops.upfirdn2d import downsample2d, filter2d, setup_filter, upfirdn2d, upsample2d

__all__ = ["PluginBuildError", "bias_act", "conv2d_resample", "downsample2d", "filter2d", "filtered_lrelu",
           "setup_filter", "status", "summary", "upfirdn2d", "upsample2d"]
