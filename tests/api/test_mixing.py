"""The Mixing tab through its API (gradio_client): grid, single mix, crossover, inpainting,
interpolation video, the latent store, and the sentences bad input gets."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from gradio_client import handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from shared import registry
from shared.images import to_uint8_hwc
from shared.latents import ws_from_seeds
from shared.mixing import style_mix_images
from tests.api.calls import call, new_client, png

torch.set_num_threads(1)
DEMO = registry.DEFAULT_GENERATOR_ID


def same_image(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal up to one step of 8-bit rounding: the app renders batches with the unfused modulated
    convolution, the library call here a single image with the fused one (float32 differences)."""
    return a.shape == b.shape and int(np.abs(a.astype(int) - b.astype(int)).max()) <= 1


def mix_args(src: str = "1,2,3", dst: str = "4,5", *, rows: str = "coarse", custom: str = "", src_names=None,
             dst_names=None, psi: float = 1.0, noise: str = "const", model: str = DEMO):
    return (model, src, src_names or [], dst, dst_names or [], rows, custom, psi, noise)


@pytest.fixture(scope="module")
def G(app):
    return app[1].models.generator(DEMO)


@pytest.fixture(scope="module")
def seed_pngs(G, tmp_path_factory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("sides")
    imgs = to_uint8_hwc(style_mix_images(G, ws_from_seeds(G, [1, 2]), ws_from_seeds(G, [1, 2]), "coarse"))
    paths = (d / "a.png", d / "b.png")
    for img, path in zip(imgs, paths):
        Image.fromarray(img).save(path)
    return paths


def test_mixing_endpoints_are_listed(client):
    named = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert {"/mix", "/mixing_grid", "/crossover", "/interpolate", "/send_mixing_latent"} <= set(named)


def test_grid_is_the_papers_layout_and_matches_the_library(client, G):
    sheet, info = call(client, *mix_args(), api_name="/mixing_grid")
    img = png(sheet)
    assert img.shape == (3 * 64, 4 * 64, 3)              # 2 destinations + header row, 3 sources + side column
    assert (img[:64, :64] == 255).all()                   # blank corner
    want = to_uint8_hwc(style_mix_images(G, ws_from_seeds(G, [5]), ws_from_seeds(G, [2]), "coarse"))[0]
    assert same_image(img[2 * 64:3 * 64, 2 * 64:3 * 64], want)   # destination seed 5, source seed 2
    top = to_uint8_hwc(style_mix_images(G, ws_from_seeds(G, [3]), ws_from_seeds(G, [3]), "coarse"))[0]
    assert same_image(img[:64, 3 * 64:], top)          # source seed 3 across the top
    assert "2 × 3 grid" in info and "rows **0, 1, 2**" in info


def test_grid_in_the_papers_figure_layout_gives_each_destination_its_band(client, G):
    """StyleGAN's figure 3: destination rows take coarse, coarse, coarse, middle, middle, fine."""
    sheet, info = call(client, *mix_args("2,3", "10-15", rows="paper"), api_name="/mixing_grid")
    img = png(sheet)
    assert img.shape == (7 * 64, 3 * 64, 3)
    for i, band in enumerate(("coarse", "coarse", "coarse", "middle", "middle", "fine")):
        want = to_uint8_hwc(style_mix_images(G, ws_from_seeds(G, [10 + i]), ws_from_seeds(G, [3]), band))[0]
        assert same_image(img[(i + 1) * 64:(i + 2) * 64, 2 * 64:], want), band
    assert "paper's layout" in info and "fine (" in info
    with pytest.raises(AppError, match="use it with Make grid"):
        call(client, *mix_args(rows="paper"), api_name="/mix")


def test_single_mix_and_custom_rows(client, G):
    gallery, info, picked = call(client, *mix_args("9", "8", rows="custom", custom="3-6"), api_name="/mix")
    assert [g["caption"] for g in gallery] == ["destination: seed 8", "source: seed 9", "mix"]
    want = to_uint8_hwc(style_mix_images(G, ws_from_seeds(G, [8]), ws_from_seeds(G, [9]), [3, 4, 5, 6]))[0]
    assert same_image(png(gallery[2]["image"]), want) and same_image(png(picked), want)
    assert "rows 3, 4, 5, 6 of seed 9" in info


@pytest.mark.parametrize("args, message", [
    (mix_args("1-7"), "at most 6|Ask for between 1 and 6"),
    (mix_args("", ""), "Give at least one source"),
    (mix_args(rows="custom", custom=""), "Write the custom rows"),
    (mix_args(rows="custom", custom="42"), "42"),
    (mix_args("x"), "seed"),
    (mix_args(src_names=["nope"]), "No latent called 'nope'"),
])
def test_mixing_bad_inputs_are_sentences(client, args, message):
    with pytest.raises(AppError, match=re.compile(message, re.I)):
        call(client, *args, api_name="/mixing_grid")


def test_crossover_joins_two_faces_better_than_pasting(client, seed_pngs):
    a, b = (handle_file(str(p)) for p in seed_pngs)
    gallery, slider, info = call(client, DEMO, "crossover", a, b, "left", None, 40, 20, 3, api_name="/crossover")
    assert [g["caption"] for g in gallery] == ["A", "B", "mask on A", "naive paste", "crossover"]
    result = png(gallery[4]["image"]).astype(float)
    src_a, src_b = png(gallery[0]["image"]).astype(float), png(gallery[1]["image"]).astype(float)
    assert np.abs(result[:, :26] - src_a[:, :26]).mean() < np.abs(result[:, :26] - src_b[:, :26]).mean()
    assert np.abs(result[:, 38:] - src_b[:, 38:]).mean() < np.abs(result[:, 38:] - src_a[:, 38:]).mean()
    got = {k: float(v) for k, v in re.findall(r"(to A|to B|seam\*\*|paste)\D*?(\d+\.\d+)", info.replace("**", ""))}
    energy = [float(x) for x in re.findall(r"seam (\d+\.\d+) vs (\d+\.\d+)", info.replace("**", ""))[0]]
    assert energy[0] < energy[1], info        # the join is smoother than the naive paste
    assert "PSNR to A inside the mask" in info and got
    before, after = slider
    assert np.array_equal(png(before), png(gallery[3]["image"])) and np.array_equal(png(after), png(gallery[4]["image"]))


def test_inpainting_and_part_masks(client, seed_pngs):
    a = handle_file(str(seed_pngs[0]))
    gallery, _, info = call(client, DEMO, "inpaint", a, None, "part:eyes", None, 20, 0, 1, api_name="/crossover")
    assert [g["caption"] for g in gallery] == ["image", "hole (dark)", "with the hole", "inpainted"]
    assert "PSNR outside the hole" in info
    with pytest.raises(AppError, match="Paint the region"):
        call(client, DEMO, "inpaint", a, None, "drawn", None, 20, 0, 1, api_name="/crossover")
    with pytest.raises(AppError, match="Give image B"):
        call(client, DEMO, "crossover", a, None, "left", None, 20, 0, 1, api_name="/crossover")
    with pytest.raises(AppError, match="diagonal is not in the list of choices"):  # the dropdown lists them
        call(client, DEMO, "crossover", a, a, "diagonal", None, 20, 0, 1, api_name="/crossover")


def test_interpolation_video_and_gif(client):
    video, gif, info = call(client, DEMO, "1,2", [], "w", 6, 12, "all", "", 1.0, True, api_name="/interpolate")
    path = video["video"] if isinstance(video, dict) else video
    import imageio.v2 as imageio
    reader = imageio.get_reader(path, format="FFMPEG")
    try:
        frames = np.stack([f for f in reader])  # list(reader) would ask len(), which is inf
    finally:
        reader.close()
    assert frames.shape == (7, 256, 256, 3)       # 6 frames per segment + the last key; 64 px shown at 256 px
    assert Image.open(gif).n_frames == 7
    assert "7 frames through 2 keys in W" in info
    with pytest.raises(AppError, match="at least two keys"):
        call(client, DEMO, "1", [], "w", 6, 12, "all", "", 1.0, False, api_name="/interpolate")


def test_latents_flow_between_generate_and_mixing(app):
    """A generated image sent to Mixing is a source there; a mix can be sent on."""
    c = new_client(app)
    call(c, DEMO, "7", 1.0, None, None, 0.0, 0.0, 0.0, "const", api_name="/generate")
    message = call(c, 7, api_name="/send_to_mixing")
    name = re.search(r"Sent \*\*(.+?)\*\*", message).group(1)
    gallery, _, _ = call(c, *mix_args("", "4", src_names=[name]), api_name="/mix")
    assert gallery[1]["caption"] == f"source: {name}"
    generated = call(c, DEMO, "7", 1.0, None, None, 0.0, 0.0, 0.0, "const", api_name="/generate")[0][0]
    diff = np.abs(png(gallery[1]["image"]).astype(int) - png(generated["image"]).astype(int))
    assert diff.max() <= 1  # the same latent; batched vs single-image convolution round differently
    with pytest.raises(AppError, match="Z interpolation works on seeds only"):
        call(c, DEMO, "1", [name], "z", 4, 12, "all", "", 1.0, False, api_name="/interpolate")
    sent = call(c, "text-editing", api_name="/send_mixing_latent")
    assert "Sent **mix: seed 4 with rows 0, 1, 2 of" in sent and "Text editing" in sent
