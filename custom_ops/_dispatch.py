"""Chooses between the CUDA kernels and the pure-PyTorch references, once per op.

The choice is made lazily on the first call with a CUDA tensor (never at import):
`HUB_OPS=ref` pins the references, `HUB_OPS=cuda` requires the kernels (a failed build
raises `PluginBuildError`), `HUB_OPS=auto` (default) builds them and, when that fails,
logs one warning and records the reason in `status()` before using the reference.
"""
from __future__ import annotations

import logging
import os
import threading

import torch

from custom_ops._kernels import OPS, PluginBuildError

__all__ = ["OPS", "PluginBuildError", "status", "summary", "use_cuda"]

log = logging.getLogger("custom_ops")

_lock = threading.Lock()
# op name -> {"path": "cuda"|"ref"|"fallback"|"unused", "reason": str}
_state: dict[str, dict[str, str]] = {}


def _mode(impl: str) -> str:
    if impl not in ("auto", "ref", "cuda"):
        raise ValueError(f"impl must be 'auto', 'ref' or 'cuda', got {impl!r}")
    if impl != "auto":
        return impl
    env = os.environ.get("HUB_OPS", "auto").strip().lower() or "auto"
    if env not in ("auto", "ref", "cuda"):
        raise ValueError(f"HUB_OPS must be 'auto', 'ref' or 'cuda', got {env!r}")
    return env


def use_cuda(op: str, x: torch.Tensor, impl: str = "auto") -> bool:
    """True when `op` should run its CUDA kernel for tensor `x`."""
    mode = _mode(impl)
    if mode == "ref" or x.device.type != "cuda":
        if mode == "cuda" and x.device.type != "cuda":
            raise PluginBuildError(f"{op}: impl='cuda' needs a CUDA tensor, got one on {x.device}")
        return False
    with _lock:
        entry = _state.get(op)
        if entry is not None and entry["path"] == "cuda":
            return True
        if entry is not None and entry["path"] == "fallback" and mode == "auto":
            return False
    from custom_ops import _build  # imported on first CUDA use only: importing custom_ops builds nothing

    try:
        _build.load_plugin(op)
    except PluginBuildError as e:
        if mode == "cuda":
            raise
        with _lock:
            if op not in _state:
                log.warning("%s: CUDA kernel unavailable (%s); using the PyTorch reference", op, e)
            _state[op] = {"path": "fallback", "reason": str(e)}
        return False
    with _lock:
        _state[op] = {"path": "cuda", "reason": "CUDA kernel built and loaded"}
    return True


def status() -> dict[str, dict[str, str]]:
    """Which path each op runs: {"op": {"path": ..., "reason": ...}} for the app's status line."""
    mode = os.environ.get("HUB_OPS", "auto")
    cuda = torch.cuda.is_available()
    out = {}
    for op in OPS:
        if op in _state:
            out[op] = dict(_state[op])
        elif mode == "ref":
            out[op] = {"path": "ref", "reason": "HUB_OPS=ref pins the PyTorch reference"}
        elif not cuda:
            out[op] = {"path": "ref", "reason": "no CUDA device: the PyTorch reference runs"}
        else:
            out[op] = {"path": "unused", "reason": "CUDA kernel is built on the first CUDA call"}
    return out


def summary() -> str:
    """One line for the status bar, e.g. 'ops: reference (no CUDA device)'."""
    st = status()
    paths = {v["path"] for v in st.values()}
    if paths == {"cuda"}:
        return "ops: CUDA kernels"
    if paths <= {"ref"}:
        reason = next(iter(st.values()))["reason"]
        return f"ops: PyTorch reference ({reason})"
    return "ops: " + ", ".join(f"{k}={v['path']}" for k, v in st.items())
