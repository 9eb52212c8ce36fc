"""The Inversion tab through its API (`gradio_client`) and in a real browser.

The app runs in-process, offline, with the default untrained demo generator (64 px) and tiny step
counts: these tests check the wiring (align -> invert / compare -> send / download / upload) and
that every bad input comes back as a readable sentence while the app keeps serving, not the
quality of the methods (that is `tests/test_inversion.py`). Demo-world portraits stand in for
photos: they need no alignment, so they go through the centre crop. FFHQ alignment of a real
photo is not exercised here (no face photo ships with the repository's runtime requirements).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from gradio_client import handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from shared import registry
from shared.images import to_uint8_hwc
from shared.inversion.compare import CompareOptions, image_to_tensor, load_latent_file, prepare_target, run_methods
from shared.portraits import render_seeds
from tests.test_app_api import app, assert_still_serving, call, client, new_client, png  # noqa: F401 - fixtures
from tests.test_browser import browser, decoded_png, page, screenshot, url  # noqa: F401 - fixtures

torch.set_num_threads(1)

DEMO = registry.DEFAULT_GENERATOR_ID
STEPS = 5


@pytest.fixture(scope="module")
def portrait(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A demo-world portrait saved as a 256 px PNG, as a user would upload it."""
    path = tmp_path_factory.mktemp("inputs") / "portrait.png"
    Image.fromarray(to_uint8_hwc(render_seeds([7], 256).img)[0]).save(path)
    return path


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


# ---- the pure helper ------------------------------------------------------------------------------
def test_run_methods_scores_each_method_and_improves_on_the_start():
    from shared.model_cache import ModelCache
    G = ModelCache("cpu", 1 << 30).generator(DEMO)
    face = prepare_target(to_uint8_hwc(render_seeds([7], 256).img)[0], "center", G.img_resolution)
    assert face.image.shape == (64, 64, 3) and face.method == "center-crop"
    target = image_to_tensor(face.image)
    runs = run_methods(G, target, ["w+", "w"], CompareOptions(steps=20, lr=0.1))
    assert [r.key for r in runs] == ["w+", "w"]
    for run in runs:
        assert run.result.ws.shape == (1, G.num_ws, G.w_dim)
        assert run.seconds > 0 and np.isfinite(run.psnr)
        first_mse, last_mse = run.result.losses[0]["mse"], run.result.losses[-1]["mse"]
        assert last_mse < first_mse, f"{run.key}: MSE did not go down ({first_mse} -> {last_mse})"
        assert run.perceptual is None and "PSNR" in run.caption()


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


# ---- browser ------------------------------------------------------------------------------------
@pytest.mark.browser
def test_browser_inverts_an_uploaded_demo_render(page, tmp_path):
    path = tmp_path / "portrait.png"
    Image.fromarray(to_uint8_hwc(render_seeds([11], 256).img)[0]).save(path)
    page.set_viewport_size({"width": 1280, "height": 1000})
    page.get_by_role("tab", name="Inversion", exact=True).click()
    page.locator("#inversion-photo input[type=file]").set_input_files(str(path))
    page.get_by_label("Centre crop (no alignment)").check()
    page.locator("#inversion-align").click()
    page.locator("#inversion-aligned img").wait_for(state="visible")
    page.get_by_label("W optimisation (Image2StyleGAN)").uncheck()  # W+ and the demo e4e (default on)
    page.get_by_text("Method options").click()
    steps = page.get_by_label("number input for Optimisation steps")
    steps.fill("5")
    steps.press("Enter")
    page.locator("#inversion-run").click()
    thumbs = page.locator("#inversion-gallery img")
    thumbs.nth(1).wait_for(state="visible")
    page.locator("#inversion-info").get_by_text("W+ optimisation").first.wait_for()
    page.locator("#inversion-info").get_by_text("e4e encoder").first.wait_for()
    thumbs.nth(2).wait_for(state="visible")  # the gallery may render just after the table
    assert thumbs.count() == 3
    recon = decoded_png(page, thumbs.nth(1).get_attribute("src"))
    assert recon.shape == (64, 64, 3)
    assert recon.astype(np.float32).var() > 10, "the reconstruction is blank"
    assert "PSNR" in page.locator("#inversion-info").inner_text() or "| W+" in page.locator("#inversion-info").inner_text()
    page.wait_for_timeout(500)
    assert screenshot(page, "inversion-run").stat().st_size > 10_000


# ---- cancellation -------------------------------------------------------------------------------
def test_stop_keeps_the_methods_already_finished(portrait):
    """The Stop button sets the session's flag; the method running then ends and the finished
    ones stay in the last output (the tab's generator handler, driven directly)."""
    from types import SimpleNamespace

    from shared.context import Settings, create_context
    from spaces.inversion import tab

    ctx = create_context(device=torch.device("cpu"), settings=Settings())
    request = SimpleNamespace(session_hash="stop-test")

    def progress(fraction: float, desc: str | None = None) -> None:
        if desc and "(2/2)" in desc:  # the second method has started: press Stop
            tab._on_stop(request)

    image = np.asarray(Image.open(portrait).convert("RGB"))
    outputs = list(tab._compare(ctx, image, "center", DEMO, ["w", "w+"], STEPS, 0.1, 2, request, progress))
    gallery, info, _, _, session, chosen = outputs[-1]
    assert [r.key for r in session.runs] == ["w"]
    assert len(gallery) == 2 and "**Stopped** after 1 of 2 method(s)" in info
    assert chosen["value"] == "w"


# ---- identity similarity ------------------------------------------------------------------------
def test_identity_similarity_is_scored_when_arcface_weights_are_given(portrait, tmp_path, monkeypatch):
    """With `HUB_MODEL_PATH_ARCFACE_IR_SE50` pointing at an official-layout IR-SE file (random
    weights, reduced widths), every run gets an identity score, shown in captions and the table."""
    from types import SimpleNamespace

    from shared.context import Settings, create_context
    from shared.inversion import compare as compare_module
    from shared.inversion.identity import load_arcface
    from spaces.inversion import tab
    from tests.test_inversion import _OfficialBackbone, _randomised

    path = tmp_path / "model_ir_se50.pth"
    torch.save(_randomised(_OfficialBackbone((16, 32, 48, 64), (1, 2, 1, 1)).eval(), 4), path)
    monkeypatch.setenv("HUB_MODEL_PATH_ARCFACE_IR_SE50", str(path))
    compare_module._identity_for.cache_clear()
    ctx = create_context(device=torch.device("cpu"), settings=Settings())
    image = np.asarray(Image.open(portrait).convert("RGB"))
    request = SimpleNamespace(session_hash="identity-test")
    outputs = list(tab._compare(ctx, image, "center", DEMO, ["e4e"], STEPS, 0.1, 2, request, None))
    gallery, info, _, _, session, _ = outputs[-1]
    assert "Identity similarity: **arcface-ir-se50**" in info and "| identity |" in info
    caption = gallery[1][1]
    score = float(caption.split("ID ")[1].split(" ")[0])
    model = load_arcface(path)
    target = image_to_tensor(session.target)
    recon = image_to_tensor(session.runs[0].image)
    with torch.no_grad():
        want = float(model.similarity(recon, target)[0])
        assert abs(float(model.similarity(target, target)[0]) - 1) < 1e-5
    assert abs(score - want) < 0.01  # PNG rounding of the reconstruction only
    monkeypatch.setenv("HUB_MODEL_PATH_ARCFACE_IR_SE50", str(tmp_path / "missing.pth"))
    assert compare_module.default_identity() is None  # a wrong path turns scoring off, with the note's sentence
    compare_module._identity_for.cache_clear()
