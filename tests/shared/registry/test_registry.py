"""Registry hygiene over every record (timm-style), look-ups, and the registry command line."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from shared import hub, registry
from shared.registry import (
    ARCHS, DEFAULT_GENERATOR_ID, FORMATS, TASKS, UNPINNED_REPOS, BuiltinSource, HubSource, LocalSource, ModelCard,
)
from shared.registry.__main__ import main as cli
from tests.hubserver import HubServer

CARDS = registry.cards()
HEX40 = re.compile(r"[0-9a-f]{40}")
HEX64 = re.compile(r"[0-9a-f]{64}")


def test_ids_are_unique_and_many():
    ids = [c.id for c in CARDS]
    assert len(ids) == len(set(ids))
    assert len(ids) >= 40
    for family in ("demo", "stylegan2", "stylegan3", "encoders", "auxiliary", "stylenerf", "eg3d"):
        assert registry.ids(family=family), family


@pytest.mark.parametrize("card", CARDS, ids=lambda c: c.id)
def test_record_hygiene(card: ModelCard):
    assert card.license.strip() and card.paper.strip() and card.official_repo.strip() and card.description.strip()
    assert card.format in FORMATS and card.arch in ARCHS
    assert card.tasks and set(card.tasks) <= TASKS
    assert card.sources
    assert card.sha256 is None or HEX64.fullmatch(card.sha256)
    assert card.size is None or card.size > 0
    assert re.fullmatch(r"HUB_MODEL_PATH_[A-Z0-9_]+", card.env_var)
    for src in card.sources:
        assert isinstance(src, (HubSource, LocalSource, BuiltinSource))
        if isinstance(src, HubSource):
            if src.revision is None:  # allowed only for repos we could not pin offline
                assert src.repo_id in UNPINNED_REPOS, f"{card.id}: pin {src.repo_id} to a 40-hex commit"
            else:
                assert HEX40.fullmatch(src.revision)
    if card.family == "demo" and card.builtin is None:  # shipped in the repository
        from shared.hub import _expand
        assert all(_expand(s.path).is_file() for s in card.local_sources), card.id
    elif not card.hub_sources and card.builtin is None:  # local-file records say where to get the file
        assert card.manual_url and card.manual_url.startswith("https://")
    if card.builtin is not None:
        assert card.untrained and card.format == "builtin"
    if "generation" in card.tasks and card.family != "auxiliary":
        assert card.resolution and card.resolution & (card.resolution - 1) == 0


def test_default_generator_is_the_shipped_demo_world_model():
    card = registry.get(DEFAULT_GENERATOR_ID)
    assert card.id == "demo-portraits-stylegan2-64" and not card.untrained and card.arch == "stylegan2"
    assert card.format == "safetensors" and [s.path for s in card.local_sources] == [
        "shared/demo/bundle/generator.safetensors"]
    assert registry.PAIRED_ENCODERS[card.id] == {"e4e": "demo-portraits-e4e-64"}
    stylegan2 = pytest.importorskip("shared.archs.stylegan2")
    cfg = stylegan2.StyleGAN2Config.from_dict(card.arch_config)
    from training.demo.distill import DistillConfig, distill_generator_config
    assert cfg == distill_generator_config(DistillConfig())  # the record describes what the trainer builds


def test_untrained_builtin_is_labelled():
    card = registry.get(registry.UNTRAINED_ID)
    assert card.id == "demo-untrained-stylegan2-64"
    assert card.untrained and card.builtin is not None and card.arch == "stylegan2"
    assert "untrained" in card.description.lower() and card.license == "MIT (project code)"
    assert card.arch_config == {"size": 64, "style_dim": 128, "n_mlp": 4,
                                "channels": {"4": 128, "8": 128, "16": 128, "32": 64, "64": 32}}
    stylegan2 = pytest.importorskip("shared.archs.stylegan2")
    cfg = stylegan2.StyleGAN2Config.from_dict(card.arch_config)
    assert (cfg.img_resolution, cfg.z_dim, cfg.w_dim, cfg.mapping_layers) == (64, 128, 128, 4)
    assert cfg.channel_dict == {4: 128, 8: 128, 16: 128, 32: 64, 64: 32}


def test_rosinality_record_config_builds():
    stylegan2 = pytest.importorskip("shared.archs.stylegan2")
    card = registry.get("stylegan2-ffhq-1024-rosinality")
    cfg = stylegan2.StyleGAN2Config.from_dict(card.arch_config)
    assert (cfg.img_resolution, cfg.w_dim, cfg.mapping_layers, cfg.num_ws) == (1024, 512, 8, 18)


def test_reference_records_present():
    expect = {
        "stylegan2-ffhq-1024-rosinality": ("akhaliq/jojogan-stylegan2-ffhq-config-f", "stylegan2-ffhq-config-f.pt"),
        "stylegan2-ffhq-1024": ("public-data/StyleGAN2", "models/stylegan2-ffhq-1024x1024.pkl"),
        "stylegan2-cifar10-32": ("public-data/StyleGAN2", "models/stylegan2-cifar10-32x32.pkl"),
        "e4e-ffhq-encode": ("public-data/e4e", "e4e_ffhq_encode.pt"),
        "stylenerf-ffhq-512": ("facebook/stylenerf-ffhq-config-basic", "ffhq_512.pkl"),
        "dlib-landmarks-68": ("public-data/dlib_face_landmark_model", "shape_predictor_68_face_landmarks.dat"),
        "lpips-vgg16": ("timm/vgg16.tv_in1k", "model.safetensors"),
        "clip-vit-b-32": ("timm/vit_base_patch32_clip_224.openai", "open_clip_model.safetensors"),
    }
    for model_id, (repo, filename) in expect.items():
        first = registry.get(model_id).hub_sources[0]
        assert (first.repo_id, first.filename) == (repo, filename)
    assert registry.get("stylegan2-ffhq-1024").hub_sources[1].repo_id == "hysts/StyleGAN2"
    assert registry.get("e4e-ffhq-encode").hub_sources[1].repo_id == "AIRI-Institute/HairFastGAN"
    assert registry.get("stylegan2-cifar10-32").arch_config["c_dim"] == 10
    for model_id in ("stylegan3-t-ffhq-1024", "stylegan3-r-afhqv2-512", "eg3d-ffhqrebalanced-512",
                     "restyle-e4e-ffhq-encode"):
        card = registry.get(model_id)
        assert card.local_sources and not card.hub_sources
    assert set(registry.ids(task="3d-rendering")) >= {"stylenerf-ffhq-256", "eg3d-ffhq-512"}


def test_register_rejects_duplicates_and_get_explains_unknown_ids():
    with pytest.raises(ValueError, match="already registered"):
        registry.register(registry.get(DEFAULT_GENERATOR_ID))
    with pytest.raises(KeyError, match="Unknown model 'nope'.*shared.registry list"):
        registry.get("nope")


def test_card_validation():
    base = dict(id="x-1", family="t", arch="stylegan2", arch_config=None, format="nvlabs-pkl",
                tasks=("generation",), sources=(LocalSource("a.pkl"),), sha256=None, size=None,
                license="MIT", paper="p", official_repo="r", resolution=64, description="d")
    ModelCard(**base)
    for bad in ({"format": "ckpt"}, {"arch": "biggan"}, {"tasks": ("dancing",)}, {"sources": ()},
                {"sha256": "abc"}, {"license": " "}, {"id": "Bad Id"}, {"format": "builtin"}):
        with pytest.raises(ValueError):
            ModelCard(**{**base, **bad})
    with pytest.raises(ValueError):
        HubSource("no-slash", "f", None)


# ---- command line ------------------------------------------------------------------------------
def test_cli_list_prints_every_id_with_its_licence(capsys: pytest.CaptureFixture, tmp_path: Path):
    assert cli(["list", "--cache-dir", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    for card in CARDS:
        row = next(line for line in lines if line.split()[0] == card.id)
        assert card.license in row
        state = ("built-in" if card.builtin else "not cached" if card.hub_sources
                 else "cached" if card.family == "demo" else "local file needed")  # demo: in the repository
        assert state in row
    assert "[UNTRAINED]" in next(line for line in lines if line.startswith(registry.UNTRAINED_ID))
    assert "[UNTRAINED]" not in next(line for line in lines if line.startswith(DEFAULT_GENERATOR_ID))


def test_cli_download_verify_path_from_local_hub(hub_env: HubServer, capsys: pytest.CaptureFixture,
                                                  rosinality_ckpt: Path):
    """A real record, served by the local Hub under its real repo and file name."""
    ckpt = rosinality_ckpt
    card = registry.get("stylegan2-ffhq-1024-rosinality")
    src = card.hub_sources[0]
    hub_env.commit(src.repo_id, {src.filename: ckpt.read_bytes()})
    assert cli(["path", card.id]) == 1
    assert "is not cached" in capsys.readouterr().err
    assert cli(["download", card.id]) == 0
    out = capsys.readouterr().out
    path = Path(out.splitlines()[0])
    assert path.read_bytes() == ckpt.read_bytes()
    assert f"{card.id}: unverified (first seen {hub.file_sha256(path)})" in out
    assert cli(["path", card.id]) == 0 and capsys.readouterr().out.strip() == str(path)
    assert cli(["verify", card.id]) == 0
    out = capsys.readouterr().out
    assert "commit: " in out and "sha256: " + hub.file_sha256(path) in out
    listing = (cli(["list", "--family", "stylegan2"]), capsys.readouterr().out)
    assert listing[0] == 0 and re.search(rf"^{card.id}\s.*\scached\s", listing[1], re.M)


def test_cli_errors_are_one_sentence(capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch,
                                     tmp_path: Path):
    monkeypatch.setenv("HUB_WEIGHTS_DIR", str(tmp_path))
    assert cli(["download", "eg3d-ffhq-512"]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "HUB_MODEL_PATH_EG3D_FFHQ_512" in err and "ngc.nvidia.com" in err
    assert cli(["verify", "no-such-model"]) == 1
    assert "Unknown model" in capsys.readouterr().err


def test_cli_runs_as_module(tmp_path: Path, repo_root: Path):
    proc = subprocess.run([sys.executable, "-m", "shared.registry", "list", "--cache-dir", str(tmp_path)],
                          cwd=repo_root, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert all(card.id in proc.stdout for card in CARDS)
