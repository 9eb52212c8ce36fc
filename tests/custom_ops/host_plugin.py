"""A CPU stand-in for the compiled CUDA plugins, built from the kernels' own maths.

`custom_ops/cuda/*_core.cuh` hold every index computation the CUDA kernels perform; they
compile as plain C++ too. `build_host_library` compiles them with g++ together with
`kernel_host_harness.cpp` (a loop over output elements instead of a CUDA grid), and
`HostPlugin` exposes the same functions as `torch.ops.hub_<op>` (same arguments and
checks as the .cpp bindings) on CPU tensors. Patching `custom_ops._build.load_plugin` to
return it runs the whole CUDA path of each op (autograd Functions, effective filters,
gradient padding) on the CPU against the PyTorch references.
"""
from __future__ import annotations

import ctypes
import shutil
import subprocess
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
CUDA_DIR = ROOT / "custom_ops" / "cuda"
HARNESS = Path(__file__).resolve().parent / "kernel_host_harness.cpp"

_DTYPES = {torch.float32: 0, torch.float64: 3}
_i64, _dbl, _ptr = ctypes.c_int64, ctypes.c_double, ctypes.c_void_p


def build_host_library(out_dir: Path) -> ctypes.CDLL | None:
    """Compiles the harness with g++ into `out_dir`; None when g++ is missing."""
    cxx = shutil.which("g++") or shutil.which("c++")
    if cxx is None:
        return None
    lib_path = out_dir / "libhub_host_kernels.so"
    cmd = [cxx, "-O2", "-std=c++17", "-shared", "-fPIC", "-Wall", "-Wextra", "-Werror", f"-I{CUDA_DIR}",
           str(HARNESS), "-o", str(lib_path)]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    lib = ctypes.CDLL(str(lib_path))
    lib.hub_host_fir.restype = ctypes.c_int
    lib.hub_host_fir.argtypes = [ctypes.c_int] + [_i64] * 14 + [ctypes.c_int, _dbl, _dbl, _dbl] + [_ptr] * 5
    lib.hub_host_bias_act.restype = ctypes.c_int
    lib.hub_host_bias_act.argtypes = [ctypes.c_int, _i64, _i64, _i64, ctypes.c_int, _dbl, _dbl, _dbl] + [_ptr] * 4
    return lib


def _ptr_of(t: torch.Tensor | None) -> int | None:
    return None if t is None or t.numel() == 0 else t.data_ptr()


def _acc(x: torch.Tensor) -> torch.dtype:
    return torch.float64 if x.dtype == torch.float64 else torch.float32


class HostPlugin:
    """The functions of torch.ops.hub_upfirdn2d / hub_bias_act / hub_filtered_lrelu, on CPU."""

    def __init__(self, lib: ctypes.CDLL):
        self.lib = lib
        self.calls: list[str] = []

    def fir(self, x, f, b, up_x, up_y, down_x, down_y, pad_x0, pad_y0, out_h, out_w, activate, slope, gain, clamp,
            want_code):
        self.calls.append("fir")
        assert x.ndim == 4 and x.dtype in _DTYPES, (x.shape, x.dtype)
        assert f.ndim == 2 and f.dtype == _acc(x), f.dtype
        assert min(up_x, up_y, down_x, down_y) >= 1 and out_h >= 1 and out_w >= 1
        assert not want_code or activate
        if b is not None:
            assert b.shape == (x.shape[1],) and b.dtype == x.dtype
            b = b.contiguous()
        x, f = x.contiguous(), f.contiguous()
        y = torch.empty([x.shape[0], x.shape[1], out_h, out_w], dtype=x.dtype)
        code = torch.empty(y.shape if want_code else [0], dtype=torch.uint8)
        rc = self.lib.hub_host_fir(_DTYPES[x.dtype], x.shape[0] * x.shape[1], x.shape[1], x.shape[2], x.shape[3],
                                   out_h, out_w, up_x, up_y, down_x, down_y, pad_x0, pad_y0, f.shape[0], f.shape[1],
                                   1 if activate else 0, slope, gain, clamp, _ptr_of(x), _ptr_of(b), _ptr_of(f),
                                   _ptr_of(y), _ptr_of(code))
        assert rc == 0
        return y, code

    def upfirdn2d(self, x, f, up_x, up_y, down_x, down_y, pad_x0, pad_y0, out_h, out_w):
        self.calls.append("upfirdn2d")
        return self.fir(x, f, None, up_x, up_y, down_x, down_y, pad_x0, pad_y0, out_h, out_w, False, 0.0, 1.0, -1.0,
                        False)[0]

    def _bias_act(self, dy, x, b, dim, act, alpha, gain, clamp):
        assert x.dtype in _DTYPES and 0 <= dim < x.ndim
        if b is not None:
            assert b.shape == (x.shape[dim],) and b.dtype == x.dtype
            b = b.contiguous()
        inner = 1
        for s in x.shape[dim + 1:]:
            inner *= s
        x = x.contiguous()
        dy = None if dy is None else dy.contiguous()
        out = torch.empty_like(x)
        rc = self.lib.hub_host_bias_act(_DTYPES[x.dtype], x.numel(), inner, x.shape[dim], act, alpha, gain, clamp,
                                        _ptr_of(dy), _ptr_of(x), _ptr_of(b), _ptr_of(out))
        assert rc == 0
        return out

    def bias_act(self, x, b, dim, act, alpha, gain, clamp):
        self.calls.append("bias_act")
        return self._bias_act(None, x, b, dim, act, alpha, gain, clamp)

    def bias_act_grad(self, dy, x, b, dim, act, alpha, gain, clamp):
        self.calls.append("bias_act_grad")
        assert dy.shape == x.shape and dy.dtype == x.dtype
        return self._bias_act(dy, x, b, dim, act, alpha, gain, clamp)
