"""The Local editing tab's directions, StyleSpace, part-catalogue and named-channel endpoints through
the app's API."""
from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from gradio_client import handle_file
from gradio_client.exceptions import AppError

from shared import registry
from shared.latents import ws_from_seeds
from shared.mixing import style_mix_images
from tests.api.calls import call, new_client, png

torch.set_num_threads(1)
DEMO = registry.DEFAULT_GENERATOR_ID


# ---- the tab ---------------------------------------------------------------------------------------------
def direction(client, method="interfacegan", d="smile", strength=3.0, seed="3", name=None, file=None, rows="all",
              custom=""):
    return call(client, DEMO, seed, name, method, d, file, strength, rows, custom, api_name="/edit_direction")


def test_edit_direction_endpoints(client, app):
    G = app[1].models.generator(DEMO)
    strip, edited, info = direction(client)
    assert [g["caption"] for g in strip] == ["-3", "-1.5", "+0", "+1.5", "+3"]
    images = [png(g["image"]) for g in strip]
    assert all(i.shape == (64, 64, 3) for i in images)
    base = style_mix_images(G, ws_from_seeds(G, [3]), ws_from_seeds(G, [3]), list(range(G.num_ws)))
    assert np.abs(images[2].astype(int) - png_of(base).astype(int)).max() <= 1
    assert np.abs(images[4].astype(float) - images[0].astype(float)).mean() > 2  # the edit changes the face
    assert "InterFaceGAN 'smile' on **seed 3**" in info
    strip, _, info = direction(client, "sefa", "1", 5.0, rows="coarse")
    assert len(strip) == 5 and "SeFa factor 1" in info and "rows 0, 1, 2" in info
    strip, _, info = direction(client, "ganspace", "0", 2.0)
    assert "GANSpace component 0" in info and "% of W's variance" in info


def png_of(img: torch.Tensor) -> np.ndarray:
    from shared.images import to_uint8_hwc
    return to_uint8_hwc(img)[0]


def test_edit_with_an_uploaded_direction_file(client, tmp_path):
    path = tmp_path / "smile.npy"
    np.save(path, np.random.default_rng(1).standard_normal((1, 128)).astype(np.float32))
    strip, _, info = direction(client, "file", None, 1.0, file=handle_file(str(path)))
    assert len(strip) == 5 and "the uploaded direction" in info


def test_edit_with_a_registered_direction_record(client, tmp_path, monkeypatch):
    """The interfacegan-ffhq-* records are local files; pointed at one, the tab uses it (here a
    [1, 128] tensor so that it fits the demo model)."""
    path = tmp_path / "smile.pt"
    torch.save(torch.randn(1, 128, generator=torch.Generator().manual_seed(2)), path)
    with pytest.raises(AppError, match="interfacegan-ffhq-smile is not on this machine"):
        direction(client, "file", "interfacegan-ffhq-smile", 1.0)
    monkeypatch.setenv("HUB_MODEL_PATH_INTERFACEGAN_FFHQ_SMILE", str(path))
    strip, _, info = direction(client, "file", "interfacegan-ffhq-smile", 1.0)
    assert len(strip) == 5 and "the registered direction interfacegan-ffhq-smile" in info


@pytest.mark.parametrize("kwargs, message", [
    ({"method": "interfacegan", "d": "ears"}, "Pick one of the demo directions"),
    ({"method": "sefa", "d": "99"}, "component number"),
    ({"method": "file", "d": None}, "Upload a direction file"),
    ({"seed": ""}, "Give a source"),
    ({"name": "nope"}, "No latent called 'nope'"),
    ({"rows": "custom", "custom": ""}, "custom rows"),
])
def test_edit_bad_inputs_are_sentences(client, kwargs, message):
    with pytest.raises(AppError, match=re.compile(message)):
        direction(client, **kwargs)


def test_stylespace_endpoint(client):
    strip, edited, info = call(client, DEMO, "3", None, "3", 7, 10.0, api_name="/edit_stylespace")
    assert len(strip) == 5 and "StyleSpace layer 3, channel 7" in info
    with pytest.raises(AppError, match="channels 0 to"):
        call(client, DEMO, "3", None, "3", 100000, 10.0, api_name="/edit_stylespace")


def test_part_catalogue_and_transfer_endpoints(app):
    c = new_client(app)
    with pytest.raises(AppError, match="Build the part catalogue"):
        call(c, DEMO, "3", None, "20", [], 0.2, 3, api_name="/part_transfer")
    overlays, info, parts, _, _ = call(c, DEMO, 6, 32, "auto", api_name="/part_catalogue")
    assert len(overlays) == 8 and "6 parts from spherical k-means" in info
    labels = [ch[0] for ch in parts["choices"]]
    assert len(labels) == 6 and any("background" in label for label in labels)  # named from the demo part map
    gallery, result, matrix = call(c, DEMO, "3", None, "20", [parts["choices"][0][1]], 0.2, 3,
                                   api_name="/part_transfer")
    assert [g["caption"] for g in gallery] == ["target: seed 3", "reference: seed 20", "result"]
    assert re.search(r"\d+ style channels taken from the reference", result) and "inside the chosen part" in result
    assert png(matrix).shape[1] > 2 * 256                     # one column per channel of the widest layer, x2
    named, _, _, info = call(c, "0=left part, 3=eyes", api_name="/name_clusters")
    assert [label for label, _ in named["choices"]][:1] == ["0: left part"] and "3: eyes" in info
    with pytest.raises(AppError, match="could not read 'hair'"):
        call(c, "hair", api_name="/name_clusters")
    with pytest.raises(AppError, match="Cluster 9 does not exist"):
        call(c, "9=hair", api_name="/name_clusters")
    _, info, _, _, _ = call(c, DEMO, 6, 32, "auto", api_name="/part_catalogue")   # the same catalogue again
    assert "kept from an earlier build" in info
    _, info, _, _, _ = call(c, DEMO, 4, 16, "6", api_name="/part_catalogue")      # a chosen layer
    assert "4 parts from spherical k-means on the 16-px activations (style layer 6)" in info
    with pytest.raises(AppError, match="not in the list of choices"):             # layer 7 is a toRGB: not offered
        call(c, DEMO, 4, 16, "7", api_name="/part_catalogue")


def test_find_channels_endpoint(client):
    gallery, info, layer, channel = call(client, DEMO, "3", None, "part:background", None, 5.0,
                                         api_name="/find_channels")
    assert gallery[0]["caption"] == "source: seed 3" and len(gallery) >= 2
    assert "| layer | channel | change inside |" in info
    assert layer is not None and int(channel) >= 0
    with pytest.raises(AppError, match="Click 'Load the source into the painter'"):
        call(client, DEMO, "3", None, "drawn", None, 5.0, api_name="/find_channels")


def test_named_channels_fill_the_edit_fields(app):
    from spaces.local_editing.stylespace import _named_channel_choices, _on_named_channel
    choices = _named_channel_choices(app[1], DEMO)
    assert choices and choices[0][1].count(":") == 1
    layer, channel = _on_named_channel(choices[0][1])
    assert layer["value"] == choices[0][1].split(":")[0] and channel == int(choices[0][1].split(":")[1])
    assert _named_channel_choices(app[1], "stylegan2-ffhq-1024") == []


def test_named_sliders_endpoint(client):
    """The StyleSpace named sliders: one per factor with a found channel; moving the mouth-open slider
    changes the face, and the predictor's reading of the moved factor is reported before/after."""
    from spaces.local_editing.stylespace import _named_slider_spec
    spec = _named_slider_spec()
    assert spec and len({f for f, *_ in spec}) == len(spec)
    values = [0.0] * len(spec)
    with pytest.raises(AppError, match="Move at least one named slider"):
        call(client, DEMO, "3", None, *values, api_name="/edit_named_channels")
    i = [f for f, *_ in spec].index("mouth_open")
    values[i] = 15.0
    gallery, info = call(client, DEMO, "3", None, *values, api_name="/edit_named_channels")
    assert [g["caption"] for g in gallery] == ["original: seed 3", "edited"]
    a, b = (png(g["image"]).astype(float) for g in gallery)
    assert np.abs(a - b).mean() > 0.5
    row = next(line for line in info.splitlines() if line.startswith("| mouth_open |"))
    before, after = (float(x) for x in row.strip("|").split("|")[3:5])
    assert (after - before) * np.sign(spec[i][3]) > 0          # it moves the mouth the recorded way
    with pytest.raises(AppError, match="found on the demo model"):
        call(client, "stylegan2-ffhq-1024", "3", None, *values, api_name="/edit_named_channels")
