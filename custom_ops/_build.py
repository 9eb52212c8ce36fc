"""Lazy builder of our CUDA kernels: the only caller of `torch.utils.cpp_extension.load`.

Follows the plugin recipe of NVlabs' `torch_utils/custom_ops.py` (github.com/NVlabs/stylegan3):
build on first use (never at import), memoise per process, and key the build directory
by a sha256 digest of the sources so an edited kernel is rebuilt and an unchanged one is
reused across processes. Each op is `custom_ops/cuda/<op>.cpp` + `<op>.cu` (plus the
shared `*.cuh`/`*.h` headers) and registers its functions as `torch.ops.hub_<op>.*`
through `TORCH_LIBRARY`, which keeps the bindings free of pybind and quick to compile.
"""
from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Any

import torch

from custom_ops._kernels import OPS, PluginBuildError

log = logging.getLogger("custom_ops")

CUDA_DIR = Path(__file__).resolve().parent / "cuda"
HEADER_SUFFIXES = (".cuh", ".h")
# Added to torch's own nvcc flags (which already disable the implicit half conversions).
NVCC_FLAGS = ("-O3", "-lineinfo")
CXX_FLAGS = ("-O3",)

_lock = threading.Lock()
_loaded: dict[str, Any] = {}      # op -> torch.ops namespace of the loaded plugin
_failed: dict[str, str] = {}      # op -> reason of a failed build (not retried in this process)


def sources(op: str) -> list[Path]:
    """The two translation units of `op`: [cuda/<op>.cpp, cuda/<op>.cu]."""
    if op not in OPS:
        raise ValueError(f"unknown op {op!r}; expected one of {OPS}")
    return [CUDA_DIR / f"{op}.cpp", CUDA_DIR / f"{op}.cu"]


def headers() -> list[Path]:
    """Headers shared by the ops (part of every op's digest)."""
    return sorted(p for p in CUDA_DIR.iterdir() if p.suffix in HEADER_SUFFIXES)


def source_digest(op: str) -> str:
    """sha256 over the op's sources, the shared headers and the toolchain-relevant versions."""
    h = hashlib.sha256()
    for path in [*sources(op), *headers()]:
        h.update(path.name.encode())
        h.update(b"\0")
        h.update(path.read_bytes())
        h.update(b"\0")
    # A different torch, CUDA or target arch must not reuse a library built for another.
    tags = [torch.__version__, str(torch.version.cuda), os.environ.get("TORCH_CUDA_ARCH_LIST", ""),
            " ".join(NVCC_FLAGS), " ".join(CXX_FLAGS)]
    h.update("\0".join(tags).encode())
    return h.hexdigest()


def cache_root() -> Path:
    """`HUB_OPS_CACHE`, else ~/.cache/stylegan_hub/ops."""
    env = os.environ.get("HUB_OPS_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "stylegan_hub" / "ops"


def build_dir(op: str) -> Path:
    return cache_root() / f"{op}-{source_digest(op)}"


def find_cuda_home() -> Path | None:
    """A CUDA toolkit root holding bin/nvcc and include/cuda_runtime_api.h, or None.

    Tries `CUDA_HOME`/`CUDA_PATH`, torch's guess, /usr/local/cuda and the directory of the
    `nvcc` on PATH after resolving symlinks and `exec` wrapper scripts.
    """
    from torch.utils import cpp_extension

    candidates = [os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"), cpp_extension.CUDA_HOME,
                  "/usr/local/cuda"]
    nvcc = shutil.which("nvcc")
    if nvcc is not None:
        real = Path(nvcc).resolve()
        candidates.append(str(real.parent.parent))
        candidates.extend(_wrapper_targets(real))
    for cand in candidates:
        root = Path(cand) if cand else None
        if root and (root / "bin" / "nvcc").is_file() and (root / "include" / "cuda_runtime_api.h").is_file():
            return root
    return None


def _wrapper_targets(script: Path) -> list[str]:
    """Toolkit roots named by a small shell wrapper such as `exec /opt/cuda/bin/nvcc "$@"`."""
    try:
        if script.stat().st_size > 4096:
            return []
        text = script.read_text(errors="strict")
    except (OSError, UnicodeDecodeError):
        return []
    roots = []
    for token in text.split():
        token = token.strip("'\"")
        if token.endswith("/bin/nvcc"):
            roots.append(str(Path(token).parent.parent))
    return roots


def _check_toolchain() -> Path:
    """Raises PluginBuildError naming what is missing; returns the CUDA toolkit root."""
    if torch.version.cuda is None:
        raise PluginBuildError("this PyTorch build has no CUDA support")
    if not torch.cuda.is_available():
        raise PluginBuildError("no CUDA device is available")
    from torch.utils import cpp_extension  # imported late: it logs a warning on machines without CUDA

    if not cpp_extension.is_ninja_available():
        raise PluginBuildError("ninja is not installed (pip install ninja)")
    home = find_cuda_home()
    if home is None:
        raise PluginBuildError("no CUDA toolkit found (nvcc and headers); set CUDA_HOME")
    if cpp_extension.CUDA_HOME is None:  # torch reads CUDA_HOME once, when it is imported
        raise PluginBuildError(f"PyTorch did not find the CUDA toolkit; start with CUDA_HOME={home}")
    return home


def compile_library(op: str, *, cuda_home: Path, verbose: bool = False) -> Path:
    """Builds (or reuses) and loads the plugin of `op`; returns its build directory.

    Raises PluginBuildError when compiling, linking or loading fails.
    """
    from torch.utils import cpp_extension

    out = build_dir(op)
    out.mkdir(parents=True, exist_ok=True)
    lib_dirs = [d for d in (cuda_home / "lib64", cuda_home / "lib") if d.is_dir()]
    log.info("%s: building the CUDA kernel in %s (first use; this takes a minute)", op, out)
    try:
        cpp_extension.load(
            name=f"hub_{op}", sources=[str(s) for s in sources(op)], build_directory=str(out),
            extra_cflags=list(CXX_FLAGS), extra_cuda_cflags=list(NVCC_FLAGS),
            extra_include_paths=[str(CUDA_DIR), str(cuda_home / "include")],
            extra_ldflags=[f"-L{d}" for d in lib_dirs], with_cuda=True, is_python_module=False,
            verbose=verbose)
    except (RuntimeError, OSError, ImportError, ValueError, subprocess.SubprocessError) as e:
        log.info("%s: build output:\n%s", op, e)
        raise PluginBuildError(f"building the {op} kernel failed: {_summarise(e)}") from e
    return out


def _summarise(e: BaseException) -> str:
    """The first compiler error line of a failed build, else the first line of the message."""
    lines = [line.strip() for line in str(e).splitlines() if line.strip()] or [type(e).__name__]
    for line in lines[1:]:
        if "error" in line.lower():
            return line
    return lines[0]


def load_plugin(op: str) -> Any:
    """Builds (once per process, cached on disk by digest) and returns `torch.ops.hub_<op>`.

    Raises PluginBuildError with the reason when there is no CUDA device or toolchain, or
    when the build fails; a failure is remembered and re-raised without rebuilding.
    """
    if op not in OPS:
        raise ValueError(f"unknown op {op!r}; expected one of {OPS}")
    with _lock:
        if op in _loaded:
            return _loaded[op]
        if op in _failed:
            raise PluginBuildError(_failed[op])
        try:
            home = _check_toolchain()
            compile_library(op, cuda_home=home)
        except PluginBuildError as e:
            _failed[op] = str(e)
            raise
        namespace = getattr(torch.ops, f"hub_{op}")
        _loaded[op] = namespace
        return namespace
