"""Compile-only checks of the CUDA sources: they must build on a machine with nvcc and no GPU.

`test_nvcc_compiles_every_kernel` compiles each `custom_ops/cuda/*.cu` to an object with
torch's nvcc flags (the three in parallel). `test_plugins_build_and_load` runs the real
builder (`custom_ops._build.compile_library`: ninja, the .cpp bindings, link, load) in a
fresh process and checks the registered operator schemas and the on-disk cache. Both
target `TORCH_CUDA_ARCH_LIST` (default "9.0") and skip where the toolchain is missing.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from custom_ops import _build
from custom_ops._dispatch import OPS

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
ARCH_LIST = os.environ.get("TORCH_CUDA_ARCH_LIST", "9.0")


def _toolkit() -> Path:
    home = _build.find_cuda_home()
    if home is None:
        pytest.skip("nvcc and the CUDA headers are not installed (set CUDA_HOME to a toolkit)")
    if torch.version.cuda is None:
        pytest.skip("this PyTorch build has no CUDA support")
    return home


def _gencode(arch_list: str) -> list[str]:
    """-gencode flags for e.g. '9.0', '8.6;9.0' or '8.0 9.0+PTX'."""
    flags = []
    for arch in arch_list.replace(";", " ").split():
        ptx = arch.endswith("+PTX")
        num = arch.removesuffix("+PTX").replace(".", "")
        flags.append(f"-gencode=arch=compute_{num},code=sm_{num}")
        if ptx:
            flags.append(f"-gencode=arch=compute_{num},code=compute_{num}")
    return flags


def test_nvcc_compiles_every_kernel(tmp_path):
    home = _toolkit()
    from torch.utils import cpp_extension

    includes = [_build.CUDA_DIR, *map(Path, cpp_extension.include_paths()), home / "include"]
    base = [str(home / "bin" / "nvcc"), "-c", "-std=c++20", *cpp_extension.COMMON_NVCC_FLAGS, *_build.NVCC_FLAGS,
            *_gencode(ARCH_LIST), "-Xcompiler", "-fPIC", "-Xcompiler", "-Wall", *[f"-I{p}" for p in includes]]
    start = time.perf_counter()
    jobs = {}
    for op in OPS:
        obj = tmp_path / f"{op}.o"
        jobs[op] = (obj, subprocess.Popen([*base, str(_build.CUDA_DIR / f"{op}.cu"), "-o", str(obj)],
                                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    results = {op: (obj, proc.communicate(timeout=300)[0], proc.returncode) for op, (obj, proc) in jobs.items()}
    elapsed = time.perf_counter() - start
    for op, (obj, log, rc) in results.items():
        assert rc == 0, f"nvcc failed on {op}.cu:\n{log}"
        assert obj.stat().st_size > 0
        ours = [line for line in log.splitlines() if "warning" in line.lower() and str(_build.CUDA_DIR) in line]
        assert not ours, f"nvcc warnings in {op}.cu:\n" + "\n".join(ours)
    print(f"nvcc compiled {len(OPS)} kernels for {ARCH_LIST} in {elapsed:.1f} s")


_BUILD_SCRIPT = """
import json, time, torch
from custom_ops import _build
from custom_ops._dispatch import OPS
home = _build.find_cuda_home()
report = {}
for op in OPS:
    start = time.perf_counter()
    path = _build.compile_library(op, cuda_home=home)
    lib = next(path.glob("hub_*.so"))
    report[op] = {"dir": str(path), "lib": str(lib), "mtime": lib.stat().st_mtime_ns,
                  "seconds": time.perf_counter() - start}
names = {"upfirdn2d": ["upfirdn2d"], "bias_act": ["bias_act", "bias_act_grad"], "filtered_lrelu": ["fir"]}
report["schemas"] = {op: [str(getattr(getattr(torch.ops, "hub_" + op), fn).default._schema) for fn in fns]
                     for op, fns in names.items()}
print("REPORT" + json.dumps(report))
"""


def _run_builder(env: dict[str, str]) -> dict:
    out = subprocess.run([sys.executable, "-c", _BUILD_SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=540)
    assert out.returncode == 0, f"building the plugins failed:\n{out.stdout}\n{out.stderr}"
    line = next(line for line in out.stdout.splitlines() if line.startswith("REPORT"))
    return json.loads(line.removeprefix("REPORT"))


def test_plugins_build_and_load(tmp_path, monkeypatch):
    home = _toolkit()
    from torch.utils import cpp_extension

    if not cpp_extension.is_ninja_available():
        pytest.skip("ninja is not installed")
    if shutil.which("c++") is None and shutil.which("g++") is None:
        pytest.skip("no host C++ compiler")
    env = {**os.environ, "CUDA_HOME": str(home), "TORCH_CUDA_ARCH_LIST": ARCH_LIST,
           "HUB_OPS_CACHE": str(tmp_path), "MAX_JOBS": os.environ.get("MAX_JOBS", "2")}
    first = _run_builder(env)
    monkeypatch.setenv("TORCH_CUDA_ARCH_LIST", ARCH_LIST)  # part of the digest
    for op in OPS:
        assert Path(first[op]["dir"]).name == f"{op}-{_build.source_digest(op)}"
    schemas = first["schemas"]
    assert schemas["upfirdn2d"] == ["hub_upfirdn2d::upfirdn2d(Tensor x, Tensor f, int up_x, int up_y, int down_x, "
                                    "int down_y, int pad_x0, int pad_y0, int out_h, int out_w) -> Tensor"]
    assert schemas["bias_act"][0].startswith("hub_bias_act::bias_act(Tensor x, Tensor? b, int dim, int act")
    assert schemas["bias_act"][1].startswith("hub_bias_act::bias_act_grad(Tensor dy, Tensor x, Tensor? b")
    assert schemas["filtered_lrelu"][0].endswith("bool want_code) -> (Tensor, Tensor)")

    second = _run_builder(env)  # a new process reuses the cached libraries
    for op in OPS:
        assert second[op]["lib"] == first[op]["lib"] and second[op]["mtime"] == first[op]["mtime"]
    print("plugin builds: " + ", ".join(f"{op} {first[op]['seconds']:.1f} s (cached {second[op]['seconds']:.1f} s)"
                                        for op in OPS))
