"""The Text editing tab through its API (gradio_client): StyleCLIP's global directions (live α/β), the
latent mapper, latent optimisation (streamed, stoppable), the three-method comparison, sending results
on, and the sentences bad prompts get."""
from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from gradio_client.exceptions import AppError

from shared import registry
from shared.editing.stylespace import style_stats
from shared.styleclip import global_directions as gd
from shared.styleclip import methods
from shared.styleclip.clip import clip_for
from shared.styleclip.prompts import templates_for
from tests.api.calls import call, png

torch.set_num_threads(1)
DEMO = registry.DEFAULT_GENERATOR_ID
DEMO_CLIP = "demo-portraits-clip"


def global_args(seed="3", neutral="a person", target="a person with red hair", alpha=4.0, beta=0.1, name=None):
    return (DEMO, DEMO_CLIP, seed, name, neutral, target, alpha, beta)


def test_the_demo_relevance_matrix_ships_and_is_genuine(app):
    """The shipped matrix is for the bundle's current generator and CLIP, and recomputing some of
    its channels with the same settings gives the same rows."""
    from safetensors import safe_open

    from shared import hub
    ctx = app[1]
    G = ctx.models.generator(DEMO)
    clip = clip_for(DEMO_CLIP)
    settings = gd.RelevanceSettings()
    path = gd.relevance_file(DEMO, DEMO_CLIP, settings, methods.SHIPPED_RELEVANCE)
    with safe_open(str(path), "pt") as fh:
        meta = fh.metadata()
    assert meta["generator_sha256"] == hub.file_sha256(hub.fetch(registry.get(DEMO)))
    assert meta["clip_sha256"] == hub.file_sha256(hub.fetch(registry.get(DEMO_CLIP)))
    shipped = gd.load_relevance(path, gd.channel_layout(G), settings)
    assert shipped.matrix.shape == (sum(n for _, n in gd.channel_layout(G)), 192)

    sub = gd.relevance_matrix(G, clip, settings=settings, limit=12,
                              stats=style_stats(G, samples=settings.stats_samples, seed=settings.seed))
    # the shipped file is float16: rows agree to its precision
    assert torch.allclose(sub.matrix, shipped.matrix[:12], atol=2e-3), (sub.matrix - shipped.matrix[:12]).abs().max()


def test_global_directions_edit_and_report(client, app):
    gallery, info = call(client, *global_args(), api_name="/styleclip_global")
    source, edited = (png(item["image"]) for item in gallery)
    assert source.shape == edited.shape == (64, 64, 3)
    assert np.abs(source.astype(int) - edited.astype(int)).mean() > 2
    channels = int(re.search(r"\*\*(\d+) channels\*\* changed", info).group(1))
    assert channels > 0 and "| layer | channel | relevance r |" in info and "Local editing" in info
    # a higher beta keeps fewer channels; alpha 0 changes nothing
    _, info_b = call(client, *global_args(beta=0.2), api_name="/styleclip_global")
    assert int(re.search(r"\*\*(\d+) channels\*\*", info_b).group(1)) < channels
    gallery0, _ = call(client, *global_args(alpha=0.0), api_name="/styleclip_global")
    assert np.array_equal(png(gallery0[0]["image"]), png(gallery0[1]["image"]))
    # the tab's image is the library's edit (at the benchmark's settings here, alpha 4)
    G = app[1].models.generator(DEMO)
    clip = clip_for(DEMO_CLIP)
    assets = methods.global_assets(DEMO, G, clip)
    from shared.latents import ws_from_seeds
    res = methods.run_global(G, clip, assets, ws_from_seeds(G, [3]), "a person", "a person with red hair", alpha=4.0,
                             beta=0.1, templates=templates_for(registry.get(DEMO_CLIP)))
    from shared.images import to_uint8_hwc
    assert int(np.abs(to_uint8_hwc(res.images)[0].astype(int) - edited.astype(int)).max()) <= 1


def test_global_edit_is_fast_once_the_matrix_is_cached(app):
    G = app[1].models.generator(DEMO)
    clip = clip_for(DEMO_CLIP)
    assets = methods.global_assets(DEMO, G, clip)
    from shared.latents import ws_from_seeds
    ws = ws_from_seeds(G, [5])
    templates = templates_for(registry.get(DEMO_CLIP))
    methods.run_global(G, clip, assets, ws, "a person", "a person wearing glasses", alpha=4, beta=0.1,
                       templates=templates)                                   # prompts embedded once
    times = [methods.run_global(G, clip, assets, ws, "a person", "a person wearing glasses", alpha=a, beta=0.1,
                                templates=templates).seconds for a in (2, 3, 4, 5, 6)]
    # issue 8: under 100 ms at 64 px; the best of five, so that other processes on the machine do not decide
    assert min(times) < 0.1, times


@pytest.mark.parametrize("target, message", [
    ("", "target prompt is empty"),
    ("x" * 10_000, "10,000 characters"),
    ("😀🎉🔥", "no words"),
    ("a person", "same"),
])
def test_bad_prompts_are_sentences(client, target, message):
    with pytest.raises(AppError, match=message):
        call(client, *global_args(target=target), api_name="/styleclip_global")
    if target != "a person":
        with pytest.raises(AppError, match=message):
            call(client, DEMO, DEMO_CLIP, "3", None, target, "w+", 5, 0.05, 0.008, 0.0,
                 api_name="/styleclip_optimize")


def test_optimisation_streams_and_raises_similarity(client):
    gallery, info = call(client, DEMO, DEMO_CLIP, "4", None, "a person with blonde hair", "w+", 20, 0.05, 0.008,
                            0.0, api_name="/styleclip_optimize")
    first, last = map(float, re.search(r"CLIP similarity ([\d.]+) → ([\d.]+)", info).groups())
    assert last > first + 0.02
    assert gallery[0]["caption"] == "source" and gallery[1]["caption"].startswith("optimised W+")
    assert [g["caption"].split(" ·")[0] for g in gallery[2:]] == [f"step {s}" for s in (2, 4, 6, 8, 10, 12, 14, 16,
                                                                                         18, 20)]
    job = client.submit(DEMO, DEMO_CLIP, "4", None, "a person with red hair", "w", 10, 0.05, 0.008, 0.0,
                        api_name="/styleclip_optimize")
    outputs = job.result(timeout=120)
    assert len(job.outputs()) >= 3                                              # streamed intermediate updates
    assert "in W:" in outputs[1]
    with pytest.raises(AppError, match="ArcFace IR-SE50 weights"):       # identity loss without its weights
        call(client, DEMO, DEMO_CLIP, "4", None, "a person with red hair", "w", 5, 0.05, 0.008, 0.01,
             api_name="/styleclip_optimize")


def test_mapper_edit_and_send_on(client, app):
    from shared.styleclip.mapper import demo_mappers
    prompts = list(demo_mappers())
    assert len(prompts) >= 2
    gallery, info = call(client, DEMO, "3", None, f"demo:{prompts[0]}", None, 0.1, api_name="/styleclip_mapper")
    source, edited = (png(item["image"]) for item in gallery)
    assert np.abs(source.astype(int) - edited.astype(int)).mean() > 1 and "demo mapper" in info
    sent = call(client, "local-editing", api_name="/send_text_latent")
    assert "Sent **text: seed 3" in sent and "Local editing" in sent
    with pytest.raises(AppError, match="no demo mapper"):
        call(client, DEMO, "3", None, "demo:a purple giraffe", None, 0.1, api_name="/styleclip_mapper")


def test_compare_runs_the_three_methods_with_times(client):
    from shared.styleclip.mapper import demo_mappers
    prompt = list(demo_mappers())[0]
    gallery, table = call(client, DEMO, DEMO_CLIP, "6", None, "a person", prompt, 4.0, 0.1, f"demo:{prompt}", None,
                          0.1, "w+", 10, 0.05, 0.008, api_name="/styleclip_compare")
    assert [g["caption"].split(" ·")[0] for g in gallery] == ["source", "global directions", "mapper", "optimisation"]
    assert all(re.search(r"\d+(\.\d+)? (ms|s)$", g["caption"]) for g in gallery[1:])
    for method in ("global directions", "latent mapper", "latent optimisation"):
        assert re.search(rf"\| {method} \| [\d.]+ m?s \| 0\.\d+ \|", table), method


def test_global_edits_cannot_be_sent_as_w_plus(client):
    call(client, *global_args(), api_name="/styleclip_global")
    with pytest.raises(AppError, match="cannot be sent"):
        call(client, "mixing", api_name="/send_text_latent")
