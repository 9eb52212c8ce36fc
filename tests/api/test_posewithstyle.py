"""The Reposing tab's Pose with Style endpoints (/pose_with_style, /pose_with_style_garment) on the running
app, offline, with the tiny random-weight files of tests/tinypws.py (a 128 px generator, the CCM, a
synthetic UV lookup table and part map) standing in for the `posewithstyle-deepfashion-512` records through
`HUB_MODEL_PATH_<ID>`; and the sentence a run gets when the files are not on the machine."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
import torch
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from shared.context import HubContext
from shared.densepose import iuv_from_uint8
from shared.images import to_uint8_hwc
from shared.posewithstyle import image_from_uint8, repose, silhouette_from_uint8
from shared.registry import DEFAULT_GENERATOR_ID, env_var_for
from shared.registry.posewithstyle import CCM_ID, GENERATOR_ID, LOOKUP_ID, PARTS_ID
from tests.api.calls import assert_still_serving, call, new_client, png
from tests.running_app import running_app
from tests.tinypws import SIZE, WIDTH, person, save_person, save_tiny_models, synthetic_lookup, tiny_ccm, tiny_generator

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, HubContext, object]]:
    """The app with the four tiny Pose with Style files in place (this module's own, replacing conftest's)."""
    env = {var: str(path) for var, path in save_tiny_models(tmp_path_factory.mktemp("tinypws")).items()}
    with running_app(tmp_path_factory, env=env) as running:
        yield running


@pytest.fixture(scope="module")
def client(app) -> Client:
    return new_client(app)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, dict[str, Path]]:
    folder = tmp_path_factory.mktemp("people")
    return {"source": save_person(folder, "source", 0), "target": save_person(folder, "target", 1, shift=8),
            "garment": save_person(folder, "garment", 2, shift=-6)}


def _up(path: Path):
    return handle_file(str(path))


def test_endpoints_are_listed(client: Client):
    names = set(client.view_api(print_info=False, return_format="dict")["named_endpoints"])
    assert {"/pose_with_style", "/pose_with_style_garment"} <= names


def test_repose_returns_the_library_image_at_the_target_size(client: Client, files):
    src, tgt = files["source"], files["target"]
    image, shown_source, shown_target, info = call(client, GENERATOR_ID, _up(src["image"]), _up(src["sil"]),
                                                   _up(src["iuv"]), _up(tgt["iuv"]), 5, api_name="/pose_with_style")
    out = png(image)
    assert out.shape == (SIZE, WIDTH, 3) and out.astype(np.float32).std() > 5
    assert png(shown_source).shape == png(shown_target).shape == (SIZE, WIDTH, 3)
    assert png(shown_source)[0, 0].tolist() == [0, 0, 0] and png(shown_source).max() > 100   # background, parts
    assert GENERATOR_ID in info and "noise seed 5" in info and f"{WIDTH}×{SIZE} px" in info and " s on CPU" in info
    # the same as the library run on the same files with the same noise (the tab is an adapter)
    G, ccm = tiny_generator(), tiny_ccm()
    photo, sil, iuv = person(0)
    _, _, target = person(1, shift=8)
    noise = G.make_noise(1, torch.Generator().manual_seed(5))
    expected = repose(G, ccm, image_from_uint8(photo), silhouette_from_uint8(sil), iuv_from_uint8(iuv),
                      iuv_from_uint8(target), torch.from_numpy(synthetic_lookup()), noise=noise).image
    assert np.array_equal(out, to_uint8_hwc(expected)[0])
    again = png(call(client, GENERATOR_ID, _up(src["image"]), _up(src["sil"]), _up(src["iuv"]), _up(tgt["iuv"]), 6,
                     api_name="/pose_with_style")[0])
    assert not np.array_equal(again, out)    # another noise seed


def test_garment_transfer_keeps_the_person_frame(client: Client, files):
    src, gar = files["source"], files["garment"]
    image, _, shown_garment, info = call(client, GENERATOR_ID, _up(src["image"]), _up(src["sil"]), _up(src["iuv"]),
                                         _up(gar["image"]), _up(gar["sil"]), _up(gar["iuv"]), "upper_body", 0,
                                         api_name="/pose_with_style_garment")
    assert png(image).shape == (SIZE, WIDTH, 3) and png(image).astype(np.float32).std() > 5
    assert png(shown_garment).shape == (SIZE, WIDTH, 3)
    assert "upper body from the garment photo" in info


def test_mistakes_come_back_as_sentences(client: Client, files, tmp_path: Path):
    src, tgt = files["source"], files["target"]
    reversed_iuv = tmp_path / "vui.png"                          # saved by OpenCV: V, U, I
    Image.fromarray(np.asarray(Image.open(src["iuv"]))[:, :, ::-1].copy()).save(reversed_iuv)
    with pytest.raises(AppError, match="V, U, I channel order"):
        call(client, GENERATOR_ID, _up(src["image"]), _up(src["sil"]), _up(reversed_iuv), _up(tgt["iuv"]), 0,
             api_name="/pose_with_style")
    small = tmp_path / "small_iuv.png"                           # an IUV map of another size than the photo
    Image.fromarray(person(0, width=64)[2]).save(small)
    with pytest.raises(AppError, match=r"source IUV map is \[128, 64\] but the photo is \[128, 88\]"):
        call(client, GENERATOR_ID, _up(src["image"]), _up(src["sil"]), _up(small), _up(tgt["iuv"]), 0,
             api_name="/pose_with_style")
    tall = tmp_path / "tall_iuv.png"
    Image.fromarray(person(1, height=192)[2]).save(tall)
    with pytest.raises(AppError, match="target IUV map must be 128 px high"):
        call(client, GENERATOR_ID, _up(src["image"]), _up(src["sil"]), _up(src["iuv"]), _up(tall), 0,
             api_name="/pose_with_style")
    empty = tmp_path / "empty_iuv.png"
    Image.fromarray(np.zeros((SIZE, WIDTH, 3), np.uint8)).save(empty)
    with pytest.raises(AppError, match="target IUV map has no body pixel"):
        call(client, GENERATOR_ID, _up(src["image"]), _up(src["sil"]), _up(src["iuv"]), _up(empty), 0,
             api_name="/pose_with_style")
    with pytest.raises(AppError, match="Upload the source silhouette"):
        call(client, GENERATOR_ID, _up(src["image"]), None, _up(src["iuv"]), _up(tgt["iuv"]), 0,
             api_name="/pose_with_style")
    with pytest.raises(AppError, match="Upload the target IUV map"):
        call(client, GENERATOR_ID, _up(src["image"]), _up(src["sil"]), _up(src["iuv"]), None, 0,
             api_name="/pose_with_style")
    with pytest.raises(AppError, match="not in the list of choices"):   # the radio's own check
        call(client, GENERATOR_ID, _up(src["image"]), _up(src["sil"]), _up(src["iuv"]), _up(src["image"]),
             _up(src["sil"]), _up(src["iuv"]), "shoes", 0, api_name="/pose_with_style_garment")
    with pytest.raises(AppError, match="not in the list of choices"):   # the picker lists Pose with Style only
        call(client, DEFAULT_GENERATOR_ID, _up(src["image"]), _up(src["sil"]), _up(src["iuv"]), _up(tgt["iuv"]), 0,
             api_name="/pose_with_style")
    assert_still_serving(client)


def test_availability_line_says_the_files_are_here(app):
    from spaces.reposing.posewithstyle import availability_line
    _, ctx, _ = app
    line = availability_line(ctx, GENERATOR_ID)
    assert line.count("✓ here") == 4 and "missing" not in line


def test_missing_weights_give_the_sentence_with_links_and_env_vars(tmp_path, monkeypatch):
    """Without the files (no HUB_MODEL_PATH_*, an empty weights folder) the handler refuses before reading the
    uploads, naming each record, its Drive link and its variable; the availability line says the same."""
    from shared.context import create_context
    from spaces.reposing.posewithstyle import availability_line, garment_action, repose_action

    monkeypatch.setenv("HUB_WEIGHTS_DIR", str(tmp_path))
    monkeypatch.setenv("HUB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for record in (GENERATOR_ID, CCM_ID, LOOKUP_ID, PARTS_ID):
        monkeypatch.delenv(env_var_for(record), raising=False)
    ctx = create_context(device=torch.device("cpu"))
    with pytest.raises(gr.Error) as caught:
        repose_action(ctx, GENERATOR_ID, None, None, None, None, 0)
    sentence = caught.value.message
    assert sentence.startswith("Pose with Style needs 3 files that are not on this machine")
    for record in (GENERATOR_ID, CCM_ID, LOOKUP_ID):
        card = ctx.registry.get(record)
        assert record in sentence and card.env_var in sentence and card.manual_url in sentence
    assert "posewithstyle.pt" in sentence and "CCM_epoch50.pt" in sentence and "dp_uv_lookup_256.npy" in sentence
    assert PARTS_ID not in sentence
    with pytest.raises(gr.Error, match=f"needs 4 files.*{PARTS_ID}"):
        garment_action(ctx, GENERATOR_ID, None, None, None, None, None, None, "face", 0)
    with pytest.raises(gr.Error, match="needs a Pose with Style generator"):
        repose_action(ctx, DEFAULT_GENERATOR_ID, None, None, None, None, 0)
    line = availability_line(ctx, GENERATOR_ID)
    assert line.count("✗ missing") == 4 and "HUB_MODEL_PATH_POSEWITHSTYLE_DEEPFASHION_512" in line
