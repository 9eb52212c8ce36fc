"""load_generator: every format by content, the converter, and the errors a user can cause."""
import shutil
import subprocess
import sys

import pytest
import torch
from safetensors.torch import save_file

from shared import load_generator
from shared.errors import CheckpointError
from shared.convert import convert, max_output_difference
from shared.loaders import sniff_format
from shared.loaders.native import save_native
from tests.parity import IMG_TOL, load_vector, rel_err


@pytest.fixture(scope="module")
def ros_ckpt(rosinality_ckpt):
    return torch.load(rosinality_ckpt, weights_only=True)


@torch.no_grad()
@pytest.mark.parametrize("name", ["rosinality_sg2_g64", "nvlabs_sg2_g64", "nvlabs_sg3t_g64", "nvlabs_sg3r_g64"])
def test_parity_vectors_load_by_content(name, tmp_path, parity_dir):
    sd, t, meta = load_vector(parity_dir, name)
    G = load_generator(parity_dir / f"{name}.safetensors")
    assert G.img_resolution == 64 and G.training is False
    assert all(not p.requires_grad for p in G.parameters())
    if "a.img" in t and name.startswith("nvlabs"):
        assert rel_err(G(t["z"], None, noise_mode="const"), t["a.img"]) <= IMG_TOL
    # Same bytes under a misleading name and without the sidecar JSON: content decides.
    odd = tmp_path / "weights.bin"
    shutil.copy(parity_dir / f"{name}.safetensors", odd)
    G2 = load_generator(odd)
    z = t["z"]
    assert rel_err(G2(z), G(z)) <= IMG_TOL


@torch.no_grad()
def test_rosinality_checkpoint(ros_ckpt, parity_dir, rosinality_ckpt):
    _, t, _ = load_vector(parity_dir, "rosinality_sg2_g64")
    G = load_generator(rosinality_ckpt)
    assert torch.equal(G.w_avg, ros_ckpt["latent_avg"])
    assert rel_err(G(t["z"], truncation_psi=0.7), t["b.img"]) <= IMG_TOL
    with open(rosinality_ckpt, "rb") as f:  # file objects work too
        G2 = load_generator(f)
    assert rel_err(G2(t["z"]), t["a.img"]) <= IMG_TOL


@torch.no_grad()
def test_e4e_psp_checkpoint_decoder_loads(ros_ckpt, tmp_path, parity_dir):
    _, t, _ = load_vector(parity_dir, "rosinality_sg2_g64")
    sd = {f"decoder.{k}": v for k, v in ros_ckpt["g_ema"].items()}
    sd["encoder.input_layer.0.weight"] = torch.zeros(4, 3, 3, 3)
    latent_avg = ros_ckpt["latent_avg"].expand(10, -1).clone()  # e4e stores [n_styles, w_dim]
    ckpt = {"state_dict": sd, "opts": {"encoder_type": "Encoder4Editing", "stylegan_size": 64,
                                       "start_from_latent_avg": True}, "latent_avg": latent_avg}
    path = tmp_path / "e4e_ffhq_encode.pt"
    torch.save(ckpt, path)
    G = load_generator(path)
    assert torch.equal(G.w_avg, ros_ckpt["latent_avg"])
    assert rel_err(G(t["z"], truncation_psi=0.7), t["b.img"]) <= IMG_TOL
    enc_only = tmp_path / "encoder_only.pt"
    torch.save({"state_dict": {"encoder.x": torch.zeros(1)}, "opts": {}}, enc_only)
    with pytest.raises(CheckpointError, match="only an encoder"):
        load_generator(enc_only)


@torch.no_grad()
def test_native_format_round_trip(tmp_path, parity_dir):
    G = load_generator(parity_dir / "nvlabs_sg2_g64.safetensors")
    out = save_native(G, tmp_path / "g.safetensors")
    G2 = load_generator(out)
    assert G2.config == G.config
    assert torch.equal(G2.w_avg, G.w_avg)
    assert max_output_difference(G, G2) == 0.0


@pytest.mark.parametrize("target", ["native", "rosinality", "nvlabs-names"])
def test_converter_back_checks(target, tmp_path, rosinality_ckpt):
    assert convert(rosinality_ckpt, tmp_path / "out.bin", target) <= 1e-5


def test_converter_cli(tmp_path, parity_dir, repo_root):
    out = tmp_path / "g.safetensors"
    r = subprocess.run([sys.executable, "-m", "shared.convert", str(parity_dir / "nvlabs_sg2_g64.safetensors"),
                        str(out)], capture_output=True, text=True, cwd=repo_root)
    assert r.returncode == 0, r.stderr
    assert "ok" in r.stdout and out.exists()
    bad = tmp_path / "page.pt"
    bad.write_text("<html><body>Quota exceeded</body></html>")
    r = subprocess.run([sys.executable, "-m", "shared.convert", str(bad), str(tmp_path / "x")],
                       capture_output=True, text=True, cwd=repo_root)
    assert r.returncode == 2 and "HTML page" in r.stderr and "Traceback" not in r.stderr


# ---- errors a user can cause: one clear sentence each --------------------------------------------

def test_truncated_download(tmp_path, rosinality_ckpt):
    data = rosinality_ckpt.read_bytes()
    p = tmp_path / "stylegan2-ffhq-config-f.pt"
    p.write_bytes(data[: len(data) // 3])
    with pytest.raises(CheckpointError, match="truncated or corrupted"):
        load_generator(p)


def test_truncated_safetensors(tmp_path, parity_dir):
    data = (parity_dir / "nvlabs_sg2_g64.safetensors").read_bytes()
    p = tmp_path / "g.safetensors"
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        load_generator(p)


@pytest.mark.parametrize("body", ["<!DOCTYPE html><html><title>Google Drive - Virus scan warning</title>",
                                  "\n  <html><body>404</body></html>"])
def test_html_page_saved_as_checkpoint(tmp_path, body):
    p = tmp_path / "stylegan2-ffhq-config-f.pt"
    p.write_text(body)
    with pytest.raises(CheckpointError, match="HTML page"):
        load_generator(p)


def test_discriminator_only(tmp_path):
    p = tmp_path / "d.pt"
    torch.save({"d": {"convs.0.0.weight": torch.zeros(1)}}, p)
    with pytest.raises(CheckpointError, match="only a discriminator"):
        load_generator(p)


def test_unknown_architecture(tmp_path):
    p = tmp_path / "resnet.pt"
    torch.save({"model": {"fc.weight": torch.zeros(2, 2)}}, p)
    with pytest.raises(CheckpointError, match="Unknown architecture"):
        load_generator(p)
    s = tmp_path / "resnet.safetensors"
    save_file({"fc.weight": torch.zeros(2, 2)}, str(s))
    with pytest.raises(CheckpointError, match="Unknown architecture"):
        load_generator(s)


def test_empty_missing_and_garbage(tmp_path):
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        load_generator(empty)
    with pytest.raises(CheckpointError, match="No file"):
        load_generator(tmp_path / "nope.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x00\x01\x02 not a model at all" * 10)
    with pytest.raises(CheckpointError, match="not a checkpoint format"):
        load_generator(junk)


def test_non_weights_pickle_in_torch_file_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))
    p = tmp_path / "evil.pt"
    torch.save({"g_ema": Evil()}, p)
    with pytest.raises(CheckpointError, match="refuse"):
        load_generator(p)


def test_mismatched_shapes_give_a_sentence(ros_ckpt, tmp_path):
    sd = dict(ros_ckpt["g_ema"])
    sd["conv1.activate.bias"] = torch.zeros(7)
    p = tmp_path / "bad.pt"
    torch.save({"g_ema": sd}, p)
    with pytest.raises(CheckpointError, match="shape"):
        load_generator(p)


def test_sniff_format():
    assert sniff_format(b"PK\x03\x04rest", 10) == "zip"
    assert sniff_format(b"", 0) == "empty"
    assert sniff_format(b"\x80\x04\x95", 10) == "pickle"
    assert sniff_format(b"\x80\x02\x8a\x0al\xfc\x9cF", 10) == "legacy-torch"
    assert sniff_format(b"\x10\x00\x00\x00\x00\x00\x00\x00{", 30) == "safetensors"


def test_every_parity_file_loads_or_says_what_it_is(parity_dir):
    """Generator vectors load (StyleNeRF too); the others (encoders, mapper, ...) get one sentence
    naming what they hold, never a crash."""
    loaded = []
    for path in sorted(parity_dir.glob("*.safetensors")) + sorted(parity_dir.glob("*.pt")):
        try:
            G = load_generator(path)
            loaded.append(path.name)
            assert G.arch in ("stylegan2", "stylegan3", "stylenerf")
        except CheckpointError as e:
            assert "holds a" in str(e), (path.name, str(e))
    assert {"rosinality_sg2_g64.safetensors", "rosinality_sg2_g64_ckpt.pt", "nvlabs_sg2_g64.safetensors",
            "nvlabs_sg3t_g64.safetensors", "nvlabs_sg3r_g64.safetensors",
            "stylenerf_ffhq_tiny.safetensors"} <= set(loaded)
