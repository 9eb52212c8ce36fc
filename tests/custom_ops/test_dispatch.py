"""Dispatch between CUDA kernels and references, the status line, and the lazy plugin builder."""
from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import custom_ops
from custom_ops import PluginBuildError, _build, _dispatch, bias_act, conv2d_resample, filtered_lrelu, upfirdn2d

ROOT = Path(__file__).resolve().parents[2]
NO_CUDA = not torch.cuda.is_available()


class _CudaLike:
    """Stands in for a CUDA tensor where only `.device` is read (this machine has no GPU)."""
    device = torch.device("cuda", 0)


@pytest.fixture
def fresh_state(monkeypatch):
    monkeypatch.setattr(_dispatch, "_state", {})
    monkeypatch.setattr(_build, "_loaded", {})
    monkeypatch.setattr(_build, "_failed", {})
    monkeypatch.delenv("HUB_OPS", raising=False)


def test_public_exports_are_stable():
    assert sorted(custom_ops.__all__) == sorted([
        "PluginBuildError", "bias_act", "conv2d_resample", "downsample2d", "filter2d", "filtered_lrelu",
        "setup_filter", "status", "summary", "upfirdn2d", "upsample2d"])


def test_importing_custom_ops_builds_nothing():
    code = ("import sys, custom_ops; "
            "print('custom_ops._build' in sys.modules, any(m.startswith('custom_ops._cuda') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


@pytest.mark.skipif(not NO_CUDA, reason="checks the behaviour of a machine without a CUDA device")
def test_status_reports_the_reference_without_a_gpu(fresh_state):
    st = custom_ops.status()
    assert set(st) == {"upfirdn2d", "bias_act", "filtered_lrelu"}
    for entry in st.values():
        assert entry["path"] == "ref" and "no CUDA device" in entry["reason"]
    assert custom_ops.summary() == "ops: PyTorch reference (no CUDA device: the PyTorch reference runs)"


def test_hub_ops_ref_pins_the_reference(fresh_state, monkeypatch):
    monkeypatch.setenv("HUB_OPS", "ref")
    assert all(v["path"] == "ref" and "HUB_OPS=ref" in v["reason"] for v in custom_ops.status().values())
    assert _dispatch.use_cuda("upfirdn2d", _CudaLike()) is False  # not even a CUDA tensor builds anything
    assert _build._failed == {} and _build._loaded == {}


def test_invalid_hub_ops_and_impl_are_refused(fresh_state, monkeypatch):
    with pytest.raises(ValueError, match="impl must be"):
        upfirdn2d(torch.zeros(1, 1, 2, 2), None, impl="triton")
    monkeypatch.setenv("HUB_OPS", "fast")
    with pytest.raises(ValueError, match="HUB_OPS must be"):
        bias_act(torch.zeros(3), dim=0)


@pytest.mark.parametrize("call", [
    lambda: upfirdn2d(torch.zeros(1, 1, 4, 4), None, impl="cuda"),
    lambda: bias_act(torch.zeros(2, 3), torch.zeros(3), act="lrelu", impl="cuda"),
    lambda: filtered_lrelu(torch.zeros(1, 1, 4, 4), impl="cuda"),
    lambda: conv2d_resample(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 3, 3), None, padding=(2, 0, 1, 1), impl="cuda"),
], ids=["upfirdn2d", "bias_act", "filtered_lrelu", "conv2d_resample"])
def test_impl_cuda_on_a_cpu_tensor_raises(fresh_state, call):
    with pytest.raises(PluginBuildError, match="needs a CUDA tensor"):
        call()


def test_hub_ops_cuda_on_a_cpu_tensor_raises(fresh_state, monkeypatch):
    monkeypatch.setenv("HUB_OPS", "cuda")
    with pytest.raises(PluginBuildError):
        upfirdn2d(torch.zeros(1, 1, 4, 4), None)


@pytest.mark.skipif(not NO_CUDA, reason="checks the behaviour of a machine without a CUDA device")
def test_failed_build_falls_back_once_with_a_warning(fresh_state, caplog):
    with caplog.at_level(logging.WARNING, logger="custom_ops"):
        assert _dispatch.use_cuda("bias_act", _CudaLike()) is False
        assert _dispatch.use_cuda("bias_act", _CudaLike()) is False
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and r.name == "custom_ops"]
    assert len(warnings) == 1 and "bias_act" in warnings[0].getMessage()
    entry = custom_ops.status()["bias_act"]
    assert entry == {"path": "fallback", "reason": "no CUDA device is available"}
    assert "bias_act=fallback" in custom_ops.summary()
    with pytest.raises(PluginBuildError, match="no CUDA device"):
        _dispatch.use_cuda("bias_act", _CudaLike(), impl="cuda")


def test_a_loaded_plugin_is_used_and_reported(fresh_state, monkeypatch):
    calls = []
    monkeypatch.setattr(_build, "load_plugin", lambda op: calls.append(op) or object())
    assert _dispatch.use_cuda("upfirdn2d", _CudaLike()) is True
    assert _dispatch.use_cuda("upfirdn2d", _CudaLike()) is True
    assert calls == ["upfirdn2d"]  # memoised by the dispatcher
    assert custom_ops.status()["upfirdn2d"]["path"] == "cuda"
    assert _dispatch.use_cuda("upfirdn2d", torch.zeros(1)) is False  # CPU tensors still take the reference


@pytest.mark.skipif(not NO_CUDA, reason="checks the behaviour of a machine without a CUDA device")
def test_load_plugin_reports_the_missing_device_and_memoises_it(fresh_state, monkeypatch):
    with pytest.raises(PluginBuildError, match="no CUDA device"):
        _build.load_plugin("upfirdn2d")
    monkeypatch.setattr(_build, "_check_toolchain", lambda: pytest.fail("a failed build must not be retried"))
    with pytest.raises(PluginBuildError, match="no CUDA device"):
        _build.load_plugin("upfirdn2d")
    with pytest.raises(ValueError, match="unknown op"):
        _build.load_plugin("conv2d")


def test_toolchain_reasons(fresh_state, monkeypatch):
    from torch.utils import cpp_extension

    monkeypatch.setattr(torch.version, "cuda", None)
    with pytest.raises(PluginBuildError, match="no CUDA support"):
        _build._check_toolchain()
    monkeypatch.setattr(torch.version, "cuda", "13.0")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(cpp_extension, "is_ninja_available", lambda: False)
    with pytest.raises(PluginBuildError, match="ninja"):
        _build._check_toolchain()
    monkeypatch.setattr(cpp_extension, "is_ninja_available", lambda: True)
    monkeypatch.setattr(_build, "find_cuda_home", lambda: None)
    with pytest.raises(PluginBuildError, match="CUDA_HOME"):
        _build._check_toolchain()


def test_a_failed_compile_becomes_a_plugin_build_error(fresh_state, monkeypatch, tmp_path):
    from torch.utils import cpp_extension

    def failing_load(**kwargs):
        raise RuntimeError("Error building extension 'hub_bias_act':\n[1/3] nvcc ...\n"
                           "bias_act.cu(12): error: identifier \"foo\" is undefined\nninja: build stopped")

    monkeypatch.setenv("HUB_OPS_CACHE", str(tmp_path))
    monkeypatch.setattr(cpp_extension, "load", failing_load)
    monkeypatch.setattr(_build, "_check_toolchain", lambda: tmp_path)
    with pytest.raises(PluginBuildError, match=r'bias_act kernel failed: bias_act.cu\(12\): error: identifier "foo"'):
        _build.load_plugin("bias_act")
    assert "bias_act" in _build._failed


def test_load_plugin_builds_once_into_the_digest_directory(fresh_state, monkeypatch, tmp_path):
    from torch.utils import cpp_extension

    seen = []
    monkeypatch.setenv("HUB_OPS_CACHE", str(tmp_path))
    monkeypatch.setattr(cpp_extension, "load", lambda **kwargs: seen.append(kwargs))
    monkeypatch.setattr(_build, "_check_toolchain", lambda: tmp_path)
    monkeypatch.setattr(torch.ops, "hub_upfirdn2d", "namespace", raising=False)
    assert _build.load_plugin("upfirdn2d") == "namespace"
    assert _build.load_plugin("upfirdn2d") == "namespace"
    assert len(seen) == 1
    kwargs = seen[0]
    assert kwargs["name"] == "hub_upfirdn2d" and kwargs["is_python_module"] is False
    assert kwargs["build_directory"] == str(tmp_path / f"upfirdn2d-{_build.source_digest('upfirdn2d')}")
    assert [Path(s).name for s in kwargs["sources"]] == ["upfirdn2d.cpp", "upfirdn2d.cu"]


def test_source_digest_follows_the_sources(monkeypatch, tmp_path):
    for path in _build.CUDA_DIR.iterdir():
        (tmp_path / path.name).write_bytes(path.read_bytes())
    monkeypatch.setattr(_build, "CUDA_DIR", tmp_path)
    before = {op: _build.source_digest(op) for op in _dispatch.OPS}
    assert len(set(before.values())) == 3 and all(len(d) == 64 for d in before.values())
    (tmp_path / "bias_act.cu").write_text((tmp_path / "bias_act.cu").read_text() + "\n// edited\n")
    assert _build.source_digest("bias_act") != before["bias_act"]
    assert _build.source_digest("upfirdn2d") == before["upfirdn2d"]
    (tmp_path / "common.cuh").write_text((tmp_path / "common.cuh").read_text() + "\n// edited\n")
    assert _build.source_digest("upfirdn2d") != before["upfirdn2d"]  # shared headers count for every op


def test_cache_directory(monkeypatch, tmp_path):
    monkeypatch.setenv("HUB_OPS_CACHE", str(tmp_path))
    assert _build.build_dir("filtered_lrelu").parent == tmp_path
    monkeypatch.delenv("HUB_OPS_CACHE")
    assert _build.cache_root() == Path.home() / ".cache" / "stylegan_hub" / "ops"


def test_every_op_has_its_sources():
    for op in _dispatch.OPS:
        assert all(p.is_file() for p in _build.sources(op))


def test_find_cuda_home_follows_an_exec_wrapper(monkeypatch, tmp_path):
    toolkit = tmp_path / "cuda-x"
    (toolkit / "bin").mkdir(parents=True)
    (toolkit / "include").mkdir()
    (toolkit / "bin" / "nvcc").write_text("")
    (toolkit / "include" / "cuda_runtime_api.h").write_text("")
    wrapper_dir = tmp_path / "wrappers"
    wrapper_dir.mkdir()
    wrapper = wrapper_dir / "nvcc"
    wrapper.write_text(f'#!/bin/sh\nexec {toolkit}/bin/nvcc "$@"\n')
    wrapper.chmod(0o755)
    from torch.utils import cpp_extension

    monkeypatch.setattr(cpp_extension, "CUDA_HOME", None)
    monkeypatch.delenv("CUDA_HOME", raising=False)
    monkeypatch.delenv("CUDA_PATH", raising=False)
    monkeypatch.setenv("PATH", str(wrapper_dir))
    monkeypatch.setattr(Path, "is_file", _only_under(tmp_path, Path.is_file))
    assert _build.find_cuda_home() == toolkit


def _only_under(root: Path, is_file):
    """Path.is_file restricted to `root`, so the machine's own /usr/local/cuda is not found."""
    def check(self: Path) -> bool:
        return str(self).startswith(str(root)) and is_file(self)
    return check
