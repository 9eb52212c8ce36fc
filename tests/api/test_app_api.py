"""Every public endpoint of the app through `gradio_client`, as a developer would call it.

The app is launched in-process on 127.0.0.1 (a free port, offline, a private Hub cache). Each
endpoint gets valid inputs and at least one bad input; a bad input must come back as an
`AppError` carrying a readable sentence, and the app must keep serving afterwards. The model
download runs against the local Hub-compatible server of `tests/hubserver.py`.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import httpx
import torch
from gradio_client import Client
from gradio_client.exceptions import AppError

from shared import registry
from shared.generation import generate_images
from shared.latent_store import LatentStore
from tests.api.calls import assert_still_serving, call, new_client, png
from tests.hubserver import HubServer

torch.set_num_threads(1)

DEMO = registry.DEFAULT_GENERATOR_ID
PUBLIC = {"/generate", "/send_to_mixing", "/send_to_local_editing", "/send_to_text_editing",
          "/send_to_inversion", "/list_models", "/download_model", "/status",
          # Inversion tab (tested in tests/api/test_inversion.py)
          "/align", "/invert", "/compare", "/send_inversion_latent", "/download_latent", "/upload_latent",
          # Mixing tab (tested in tests/api/test_mixing.py)
          "/mix", "/mixing_grid", "/crossover", "/interpolate", "/send_mixing_latent",
          # Local editing tab (tested in tests/api/test_local_editing*.py and test_retrieve_in_style.py)
          "/edit_direction", "/edit_stylespace", "/send_edit_latent", "/part_catalogue", "/part_transfer",
          "/find_channels", "/ris_transfer", "/ris_retrieve", "/edit_styleflow", "/edit_named_channels",
          "/name_clusters",
          # Text editing tab (tested in tests/api/test_text_editing.py)
          "/styleclip_global", "/styleclip_mapper", "/styleclip_optimize", "/styleclip_compare", "/send_text_latent",
          # 3D rendering tab (tested in tests/api/test_rendering_3d.py)
          "/render_3d", "/orbit_3d", "/mesh_3d", "/compare_3d", "/photo_3d",
          # Reposing tab (tested in tests/api/test_reposing.py)
          "/repose", "/repose_strip", "/repose_transform",
          # Reposing › Pose with Style (tested in tests/api/test_posewithstyle.py)
          "/pose_with_style", "/pose_with_style_garment"}
SEND = ["/send_to_mixing", "/send_to_local_editing", "/send_to_text_editing", "/send_to_inversion"]


def generate(client: Client, seeds: str = "0-3", *, model: str = DEMO, psi: float = 0.7, cutoff=None,
             class_idx=None, tx: float = 0.0, ty: float = 0.0, rotate: float = 0.0, noise: str = "const"):
    return call(client, model, seeds, psi, cutoff, class_idx, tx, ty, rotate, noise, api_name="/generate")


# ---- the endpoint list -----------------------------------------------------------------------
def test_public_endpoints_are_exactly_the_tested_ones(client: Client):
    named = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert set(named) == PUBLIC
    for name, info in named.items():  # each says what it does (not functools.partial's docstring)
        assert info["description"] and not info["description"].startswith("partial("), name


def test_status(client: Client):
    text = call(client, api_name="/status")
    assert "**Device** CPU" in text and "ops:" in text and "offline" in text and "cache" in text


# ---- generate ----------------------------------------------------------------------------------
def test_generate_returns_png_images_timing_and_the_first_seed(client: Client):
    gallery, info, first = generate(client, "0-3")
    assert [item["caption"] for item in gallery] == ["seed 0", "seed 1", "seed 2", "seed 3"]
    images = [png(item["image"]) for item in gallery]
    assert all(img.shape == (64, 64, 3) for img in images)
    assert all(img.std() > 5 for img in images), "images must not be blank"
    assert re.search(r"\*\*4 image\(s\)\*\* from `.+` in \*\*\d+\.\d\d s\*\* on CPU", info), info
    assert "seeds 0, 1, 2, 3" in info and "untrained" not in info  # the trained demo-world model
    assert first == 0


def test_generate_different_seeds_give_different_images(client: Client):
    """The default model must show a different image per seed (not one image four times)."""
    gallery, _, _ = generate(client, "0-3")
    images = [png(item["image"]).astype(np.float32) for item in gallery]
    for i in range(len(images)):
        for j in range(i + 1, len(images)):
            assert np.abs(images[i] - images[j]).mean() > 2.0, f"seeds {i} and {j} give the same image"


def test_generate_is_deterministic_and_matches_the_library(client: Client, app):
    a, _, _ = generate(client, "5")
    b, _, _ = generate(client, "5")
    assert np.array_equal(png(a[0]["image"]), png(b[0]["image"]))
    ctx = app[1]
    expected = generate_images(ctx.models.generator(DEMO), [5], truncation_psi=0.7).images
    expected = ((expected[0] * 127.5 + 128).clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy())
    assert np.array_equal(png(a[0]["image"]), expected)


def test_generate_random_shows_the_seed_it_drew(client: Client):
    gallery, info, first = generate(client, "random")
    assert len(gallery) == 1
    seed = int(gallery[0]["caption"].removeprefix("seed "))
    assert first == seed and f"seeds {seed} " in info


@pytest.mark.parametrize("kwargs, fragment", [
    ({"seeds": "abc"}, "Could not read 'abc' as a seed"),
    ({"seeds": ""}, "The seeds field is empty"),
    ({"seeds": "0-99"}, "at most 8"),
    ({"seeds": "9-3"}, "write it as 3-9"),
    ({"cutoff": 99}, "Truncation cutoff must be a number of layers from 1 to 10"),
    ({"cutoff": -2}, "Truncation cutoff must be a number of layers from 1 to 10"),
    ({"class_idx": 2}, "unconditional; leave the class label empty"),
    ({"tx": 0.2}, "only apply to StyleGAN3"),
    ({"model": "stylegan2-ffhq-1024"}, "HF_HUB_OFFLINE=1"),
    ({"model": "stylenerf-ffhq-256"}, "not in the list of choices"),
    ({"model": "stylegan3-t-ffhq-1024"}, "HUB_MODEL_PATH_STYLEGAN3_T_FFHQ_1024"),
])
def test_generate_bad_input_gets_a_readable_error(client: Client, kwargs, fragment):
    args = {"seeds": "0", **kwargs}
    with pytest.raises(AppError) as e:
        generate(client, args.pop("seeds"), **args)
    assert fragment in str(e.value)
    assert_still_serving(client)


# ---- send to other tabs ------------------------------------------------------------------------
def _session_store(app, client: Client) -> LatentStore:
    """The LatentStore held in `client`'s session on the server."""
    demo = app[2]
    state = demo.state_holder[client.session_hash]
    ids = [i for i, block in demo.blocks.items()
           if type(block).__name__ == "State" and isinstance(block.value, LatentStore)]
    assert len(ids) == 1
    return state[ids[0]]


def test_send_before_generating_is_refused(app):
    fresh = new_client(app)
    with pytest.raises(AppError, match="Generate some images first"):
        call(fresh, 0, api_name="/send_to_mixing")
    assert_still_serving(fresh)


@pytest.mark.parametrize("endpoint", SEND)
def test_send_puts_the_latent_into_the_session_store(app, endpoint: str):
    session = new_client(app)
    generate(session, "10,11")
    message = call(session, 11, api_name=endpoint)
    tab = endpoint.removeprefix("/send_to_").replace("_", "-")
    assert "Sent **seed 11" in message
    store = _session_store(app, session)
    name, entry = store.latest_for(tab)
    assert name.startswith("seed 11") and entry.model_id == DEMO
    G = app[1].models.generator(DEMO)
    assert entry.ws.shape == (1, G.num_ws, G.w_dim) and entry.ws.dtype == np.float32
    expected = generate_images(G, [11], truncation_psi=0.7).ws.numpy()
    np.testing.assert_array_equal(entry.ws, expected)


def test_send_bad_inputs(app):
    session = new_client(app)
    generate(session, "1-2")
    with pytest.raises(AppError, match=r"Seed 7 is not among the images on screen \(1, 2\)"):
        call(session, 7, api_name="/send_to_inversion")
    with pytest.raises(AppError, match="Choose the image to send"):
        call(session, None, api_name="/send_to_text_editing")
    assert "Sent" in call(session, 2, api_name="/send_to_text_editing")


def test_sessions_do_not_share_latents(app):
    a, b = new_client(app), new_client(app)
    generate(a, "3")
    call(a, 3, api_name="/send_to_mixing")
    generate(b, "4")
    assert len(_session_store(app, a)) == 1
    assert len(_session_store(app, b)) == 0


# ---- models ------------------------------------------------------------------------------------
def test_list_models_covers_the_registry(client: Client):
    table = call(client, api_name="/list_models")
    assert table["headers"] == ["Model", "Family", "Resolution", "Licence", "Size", "Cached", "Hash", "Source"]
    rows = {row[0]: row for row in table["data"]}
    assert set(rows) == set(registry.ids())
    assert all(row[3].strip() for row in rows.values()), "every model shows its licence"
    assert rows[registry.UNTRAINED_ID][5] == "built in"
    assert rows[DEMO][5] == "yes" and rows[DEMO][7] == "local:shared/demo/bundle/generator.safetensors"
    assert rows["stylegan2-ffhq-1024"][5] == "no"
    assert rows["stylegan2-ffhq-1024"][7].startswith("hf:public-data/StyleGAN2/models/")


def test_list_models_rejects_a_malformed_request_and_keeps_serving(app, client: Client):
    r = httpx.post(app[0] + "gradio_api/call/list_models", json={"data": "not a list"}, timeout=30)
    assert r.status_code == 422
    assert len(call(client, api_name="/list_models")["data"]) == len(registry.ids())


@pytest.mark.parametrize("model_id, fragment", [
    ("no-such-model", "not in the list of choices"),
    ("stylegan2-ffhq-256", "HF_HUB_OFFLINE=1"),
    ("eg3d-ffhq-512", "HUB_MODEL_PATH_EG3D_FFHQ_512"),
])
def test_download_model_bad_input(client: Client, model_id: str, fragment: str):
    with pytest.raises(AppError) as e:
        call(client, model_id, api_name="/download_model")
    assert fragment in str(e.value)
    assert_still_serving(client)


def test_download_model_builtin_needs_nothing(client: Client):
    message, table = call(client, registry.UNTRAINED_ID, api_name="/download_model")
    assert "nothing to download" in message
    assert len(table["data"]) == len(registry.ids())


def test_download_model_finds_the_shipped_demo_bundle(client: Client):
    message, table = call(client, DEMO, api_name="/download_model")
    assert "shared/demo/bundle/generator.safetensors" in message and "verified" in message, message


def test_download_model_from_the_local_hub_marks_it_cached(client: Client, hub_env: HubServer, rosinality_ckpt: Path):
    """The real record's Hub repo and file, served by the local Hub with a real rosinality checkpoint."""
    ckpt = rosinality_ckpt
    card = registry.get("stylegan2-ffhq-1024-rosinality")
    src = card.hub_sources[0]
    hub_env.commit(src.repo_id, {src.filename: ckpt.read_bytes()})
    before = {row[0]: row for row in call(client, api_name="/list_models")["data"]}
    assert before[card.id][5] == "no"
    message, table = call(client, card.id, api_name="/download_model")
    assert f"`{card.id}` is cached at" in message and "unverified (first seen" in message
    rows = {row[0]: row for row in table["data"]}
    assert rows[card.id][5] == "yes"
    assert rows[card.id][6].startswith("unverified (first seen ")
    assert hub_env.count(src.filename, method="GET") == 1
    # A second download is served from the cache without a request.
    call(client, card.id, api_name="/download_model")
    assert hub_env.count(src.filename, method="GET") == 1
