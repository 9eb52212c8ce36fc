"""Test-wide settings (no network, no analytics) and the fixtures that tests in several folders share:
the parity vectors, the local Hub server, small and demo generators."""
import os

# before anything imports huggingface_hub or gradio, which read these at import time
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

from collections.abc import Iterator  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

from tests import parity  # noqa: E402
from tests.hubserver import HubServer  # noqa: E402


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The checkout's root (commands run as `python -m ...` from here)."""
    return parity.ROOT


# ---- the official parity vectors --------------------------------------------------------------------
@pytest.fixture(scope="session")
def parity_dir() -> Path:
    """../shared/parity (or HUB_PARITY_DIR). Every test that reads a parity vector asks for this: where
    the folder is absent it skips with a sentence saying where the vectors come from, and under CI
    (CI=true) it fails instead (tests.parity.require)."""
    return parity.require(parity.PARITY_DIR)


@pytest.fixture(scope="session")
def rosinality_ckpt(parity_dir: Path) -> Path:
    """The official rosinality training checkpoint of the parity weights (a real `.pt` for the Hub,
    loader and download tests)."""
    return parity.require(parity_dir / "rosinality_sg2_g64_ckpt.pt")


# ---- the local Hub ----------------------------------------------------------------------------------
@pytest.fixture
def hub_server(tmp_path: Path) -> Iterator[HubServer]:
    """A running local Hub serving from `tmp_path/hub` (tests/hubserver.py)."""
    with HubServer(tmp_path / "hub") as server:
        yield server


@pytest.fixture
def hub_env(hub_server: HubServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[HubServer]:
    """The local Hub plus an online setting pointed at it: `HF_ENDPOINT`, a fresh `HUB_CACHE_DIR`
    (`tmp_path/cache`), `HF_HOME`, `HUB_WEIGHTS_DIR`, offline mode off (env and huggingface_hub's
    import-time constant), and a fresh connectivity probe. Yields the server.

    huggingface_hub reads `HF_ENDPOINT` once at import (its URL template is built from it, so do not
    patch `constants.ENDPOINT`): code under test must pass `endpoint=` explicitly, as `shared.hub`
    does with `default_endpoint()`, which reads the variable at call time."""
    from huggingface_hub import constants

    from shared import hub

    monkeypatch.setenv("HF_ENDPOINT", hub_server.endpoint)
    monkeypatch.setenv("HUB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("HUB_WEIGHTS_DIR", str(tmp_path / "weights"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    hub.reset_online_probe()
    yield hub_server
    hub.reset_online_probe()


# ---- generators shared by unit and build-time tests --------------------------------
@pytest.fixture(scope="module")
def small_g():
    """A small random StyleGAN2 (w_dim 16, 32 px) for the StyleCLIP mapper and its trainer."""
    from shared.archs.stylegan2 import StyleGAN2Config, StyleGAN2Generator
    cfg = StyleGAN2Config(z_dim=16, w_dim=16, img_resolution=32, mapping_layers=2,
                          channels=((4, 16), (8, 12), (16, 8), (32, 8)))
    return StyleGAN2Generator(cfg).init_random_(torch.Generator().manual_seed(3)).eval().requires_grad_(False)


@pytest.fixture(scope="module")
def demo_generator():
    """The demo-world generator read from the shipped bundle."""
    from shared import load_generator
    from shared.demo.bundle import bundle_file
    return load_generator(bundle_file("generator.safetensors")).eval()


@pytest.fixture(scope="module")
def demo_g_clip():
    """(the demo-world generator through its registry record, frozen; the demo-world CLIP)."""
    from shared import hub, load_generator, registry
    from shared.styleclip.clip import clip_for
    G = load_generator(hub.fetch(registry.get("demo-portraits-stylegan2-64"))).eval().requires_grad_(False)
    return G, clip_for("demo-portraits-clip")


@pytest.fixture(scope="module")
def demo_clip():
    """(model, tokenizer, preprocess) of the demo world's CLIP, loaded with one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    from shared.demo.clip import load_demo_clip
    yield load_demo_clip()
    torch.set_num_threads(threads)
