"""The Inversion tab through the app's API: alignment, compare, invert, send/download/upload."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from gradio_client import handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from shared import registry
from shared.inversion.compare import load_latent_file, prepare_target
from tests.api.calls import assert_still_serving, call, new_client, png

torch.set_num_threads(1)
DEMO = registry.DEFAULT_GENERATOR_ID
STEPS = 5


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("bad")
    text = d / "notes.png"
    text.write_text("this is not an image")
    grey = d / "grey.png"
    Image.new("RGB", (200, 200), (128, 128, 128)).save(grey)
    wrong = d / "wrong.pt"
    torch.save({"ws": torch.zeros(1, 3, 7), "model_id": DEMO, "method": "w+"}, wrong)
    junk = d / "junk.pt"
    junk.write_bytes(b"not a torch file")
    return {"text": text, "grey": grey, "wrong_shape": wrong, "junk": junk}


def compare(client, image, methods, *, mode: str = "center", model: str = DEMO, steps: float = STEPS,
            lr: float = 0.1, iters: float = 2):
    return call(client, image, mode, model, methods, steps, lr, iters, api_name="/compare")


# ---- API ----------------------------------------------------------------------------------------
def test_inversion_endpoints_are_listed(client):
    named = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    for name in ("/align", "/invert", "/compare", "/send_inversion_latent", "/download_latent", "/upload_latent"):
        assert name in named and named[name]["description"], name


def test_align_a_demo_portrait_with_centre_crop(client, portrait):
    image, status = call(client, handle_file(str(portrait)), "center", DEMO, api_name="/align")
    arr = png(image)
    assert arr.shape == (64, 64, 3) and arr.std() > 5
    expected = prepare_target(np.asarray(Image.open(portrait).convert("RGB")), "center", 64).image
    assert np.abs(arr.astype(int) - expected.astype(int)).max() <= 1
    assert "Centre crop" in status and "256×256" in status and "64×64" in status


def test_a_real_photo_is_aligned_and_inverted_through_the_api(client, tmp_path):
    """The astronaut (a real photo shipped with scikit-image): FFHQ alignment with dlib, then W+ and
    the demo e4e on the offline default generator."""
    from shared.alignment import alignment_status
    if alignment_status() is not None:
        pytest.skip(alignment_status())
    from skimage import data as skimage_data
    path = tmp_path / "astronaut.jpg"
    Image.fromarray(skimage_data.astronaut()).save(path, quality=92)
    image, status = call(client, handle_file(str(path)), "ffhq", DEMO, api_name="/align")
    assert png(image).shape == (64, 64, 3) and "FFHQ" in status, status
    gallery, table, *_ = compare(client, handle_file(str(path)), ["w+", "e4e"], mode="ffhq")
    assert [g["caption"].split(" · ")[0] for g in gallery] == [
        "target (aligned)", "W+ optimisation (Image2StyleGAN)", "e4e encoder"]
    assert all(png(g["image"]).shape == (64, 64, 3) for g in gallery)


def test_align_bad_inputs_are_sentences(client, bad_files):
    with pytest.raises(AppError, match="Upload a photo first"):
        call(client, None, "center", DEMO, api_name="/align")
    with pytest.raises(AppError, match="not an image that can be read"):
        call(client, handle_file(str(bad_files["text"])), "center", DEMO, api_name="/align")
    with pytest.raises(AppError, match=r"(?i)face"):  # FFHQ alignment on a photo without a face
        call(client, handle_file(str(bad_files["grey"])), "ffhq", DEMO, api_name="/align")
    assert_still_serving(client)


def test_compare_two_methods_gives_scored_png_reconstructions(client, portrait):
    gallery, info, slider, strip, chosen = compare(client, handle_file(str(portrait)), ["w", "w+"])
    assert [g["caption"].split(" · ")[0] for g in gallery] == [
        "target (aligned)", "W optimisation (Image2StyleGAN)", "W+ optimisation (Image2StyleGAN)"]
    images = [png(g["image"]) for g in gallery]
    assert all(img.shape == (64, 64, 3) for img in images)
    assert all(img.std() > 2 for img in images), "a reconstruction is blank"
    for g in gallery[1:]:
        assert "PSNR" in g["caption"] and "features:demo-predictor" in g["caption"] and g["caption"].endswith(" s")
    assert "| W+ optimisation (Image2StyleGAN) |" in info and "Perceptual score" in info
    assert "predictor features serve as the perceptual loss" in info  # offline, and the UI says so
    assert "Identity similarity is off" in info and "HUB_MODEL_PATH_ARCFACE_IR_SE50" in info
    assert chosen["value"] == "w+" and [c[1] for c in chosen["choices"]] == ["w", "w+"]
    assert not strip["visible"]  # no ReStyle run, no strip
    before, after = slider
    assert np.array_equal(png(before), images[0]) and np.array_equal(png(after), images[2])


def test_invert_one_method(client, portrait):
    gallery, info = call(client, handle_file(str(portrait)), "center", DEMO, "w+", STEPS, 0.1, 2, api_name="/invert")
    assert len(gallery) == 2 and gallery[1]["caption"].startswith("W+ optimisation")
    assert png(gallery[1]["image"]).shape == (64, 64, 3)
    assert "PSNR" in info or "| W+" in info


def test_demo_e4e_inverts_offline(client, portrait):
    """The demo generator's paired encoder (shipped in the bundle) runs with no download."""
    gallery, info = call(client, handle_file(str(portrait)), "center", DEMO, "e4e", STEPS, 0.1, 2, api_name="/invert")
    assert len(gallery) == 2 and gallery[1]["caption"].startswith("e4e")
    target, recon = png(gallery[0]["image"]).astype(float), png(gallery[1]["image"]).astype(float)
    assert recon.shape == (64, 64, 3)
    psnr = 10 * np.log10(255.0 ** 2 / np.mean((target - recon) ** 2))
    assert psnr > 15, psnr  # a reconstruction, not noise (the bundle's own figure is in its manifest)


def test_invert_and_compare_bad_inputs_are_sentences(client, portrait):
    img = handle_file(str(portrait))
    with pytest.raises(AppError, match="Unknown inversion method 'magic'"):
        call(client, img, "center", DEMO, "magic", STEPS, 0.1, 2, api_name="/invert")
    with pytest.raises(AppError, match="less than minimum value 1"):  # the slider's own check, a sentence
        compare(client, img, ["w+"], steps=0)
    with pytest.raises(AppError, match="greater than maximum value 1000"):
        compare(client, img, ["w+"], steps=100_000)
    with pytest.raises(AppError, match="not in the list of choices"):
        compare(client, img, ["w+", "magic"])
    with pytest.raises(AppError, match="Pick at least one inversion method"):
        compare(client, img, [])
    with pytest.raises(AppError, match="encoder is trained for demo-portraits-stylegan2-64; choose another"):
        compare(client, img, ["psp"])  # the demo world ships an e4e only
    with pytest.raises(AppError, match="Upload a photo first"):
        compare(client, None, ["w+"])
    assert_still_serving(client)


def test_send_download_and_upload_a_latent(app, portrait, bad_files, tmp_path):
    c = new_client(app)  # a fresh session
    with pytest.raises(AppError, match="Run an inversion first"):
        call(c, "w+", "mixing", api_name="/send_inversion_latent")
    compare(c, handle_file(str(portrait)), ["w+"])
    message = call(c, "w+", "mixing", api_name="/send_inversion_latent")
    assert "Sent **inverted · W+ optimisation" in message and "Mixing" in message
    with pytest.raises(AppError, match="not in the list of choices"):  # the Radio's own check, a sentence
        call(c, "w+", "nowhere", api_name="/send_inversion_latent")
    with pytest.raises(AppError, match="No result for 'w'"):
        call(c, "w", "mixing", api_name="/send_inversion_latent")

    path = call(c, "w+", api_name="/download_latent")
    ws, model_id, method = load_latent_file(path)
    assert model_id == DEMO and method == "w+" and tuple(ws.shape) == (1, 10, 128)
    status, image = call(c, handle_file(path), api_name="/upload_latent")
    assert "Loaded **uploaded · w+" in status and png(image).shape == (64, 64, 3)
    with pytest.raises(AppError, match=r"is \[1, 3, 7\] but .* needs \[1, 10, 128\]"):
        call(c, handle_file(str(bad_files["wrong_shape"])), api_name="/upload_latent")
    with pytest.raises(AppError, match="not a latent file"):
        call(c, handle_file(str(bad_files["junk"])), api_name="/upload_latent")
    assert_still_serving(c)
