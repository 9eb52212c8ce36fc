"""Latent helpers (shared.latents): seed text, seeds to z and ws, the coarse/middle/fine row ranges of the
StyleGAN papers per architecture and resolution, and row specifications."""
from __future__ import annotations

import random
from types import SimpleNamespace

import pytest
import torch

from shared import latents as L
from shared.archs.stylegan2 import StyleGAN2Config, style_layout
from shared.archs.stylegan3 import StyleGAN3Config, layer_schedule
from shared.errors import InputError
from shared.generation import generate_images
from shared.latents import MAX_SEED, parse_seeds

torch.set_num_threads(1)


def _fake(arch: str, res: int, num_ws: int):
    return type("FakeG", (), dict(arch=arch, img_resolution=res, num_ws=num_ws))()


# ---- layer ranges ------------------------------------------------------------------------------
@pytest.mark.parametrize("res", [32, 64, 256, 1024])
def test_sg2_row_resolutions_match_style_layout(res):
    """Each row's resolution is that of the convolution it modulates (toRGB only for the last row)."""
    cfg = StyleGAN2Config.rosinality(res, 8, 1, channels={2 ** i: 4 for i in range(2, 11)})
    conv = {}
    for layer in style_layout(cfg):
        if not layer.is_torgb:
            conv[layer.ws_index] = layer.resolution
        else:
            conv.setdefault(layer.ws_index, layer.resolution)
    assert L.row_resolutions(_fake("stylegan2", res, cfg.num_ws)) == tuple(conv[i] for i in range(cfg.num_ws))


def test_sg2_ranges_follow_the_paper_bands():
    r = L.layer_ranges(_fake("stylegan2", 1024, 18))
    assert {k: v.rows for k, v in r.items()} == {"coarse": (0, 1, 2), "middle": (3, 4, 5, 6),
                                                  "fine": tuple(range(7, 18))}
    assert r["coarse"].resolutions == (4, 8) and r["middle"].resolutions == (16, 32)
    assert r["fine"].resolutions == (64, 128, 256, 512, 1024)
    assert r["coarse"].label == "coarse: rows 0-2 (4-8 px)"
    r64 = L.layer_ranges(_fake("stylegan2", 64, 10))
    assert r64["fine"].rows == (7, 8, 9) and r64["middle"].rows == (3, 4, 5, 6)


def test_sg3_ranges_from_the_cutoff_schedule():
    """Uses the schedule of the official 1024 px config T (without building its filters)."""
    cfg = StyleGAN3Config(img_resolution=1024)
    inp, specs = layer_schedule(cfg)
    synthesis = SimpleNamespace(input=SimpleNamespace(bandwidth=inp.bandwidth), layer_names=[s.name for s in specs],
                                **{s.name: SimpleNamespace(spec=s) for s in specs})
    G = SimpleNamespace(arch="stylegan3", img_resolution=1024, num_ws=cfg.num_ws, synthesis=synthesis)
    res = L.row_resolutions(G)
    assert len(res) == G.num_ws == 16
    assert res[0] == 4 and res[-1] == 1024 and list(res) == sorted(res)
    r = L.layer_ranges(G)
    assert (r["coarse"].rows, r["middle"].rows, r["fine"].rows) == ((0, 1, 2, 3), (4, 5, 6), tuple(range(7, 16)))


def test_small_models_have_three_nonempty_ranges(G):
    r = L.layer_ranges(G)
    assert list(r) == ["coarse", "middle", "fine"]
    rows = [i for v in r.values() for i in v.rows]
    assert rows == list(range(G.num_ws))  # a partition, in order
    assert r["fine"].resolutions == (32,) and max(r["coarse"].resolutions) <= 8


def test_resolve_rows(sg2):
    assert L.resolve_rows(sg2, "coarse") == (0, 1, 2)
    assert L.resolve_rows(sg2, "coarse+fine") == (0, 1, 2, 5, 6, 7)
    assert L.resolve_rows(sg2, "0-1, 6") == (0, 1, 6)
    assert L.resolve_rows(sg2, [7, "middle", 0]) == (0, 3, 4, 7)
    assert L.resolve_rows(sg2, L.layer_ranges(sg2)["middle"]) == (3, 4)


@pytest.mark.parametrize("rows, message", [
    ("hair", "Unknown layer range 'hair'"),
    ([8], "Row 8 does not exist; this model has rows 0 to 7."),
    ("3-9", "Row 8 does not exist"),
    ("5-2", "runs backwards"),
    ([], "Choose at least one"),
    ("", "Choose at least one"),
    ([-1], "Row -1 does not exist"),
])
def test_bad_rows_are_refused(sg2, rows, message):
    with pytest.raises(InputError, match=message):
        L.resolve_rows(sg2, rows)


def test_unsupported_arch_is_refused():
    with pytest.raises(InputError, match="StyleGAN2 and StyleGAN3"):
        L.layer_ranges(_fake("eg3d", 64, 14))


# ---- latents and mixing ------------------------------------------------------------------------
def test_ws_from_seeds_matches_generate_images(G):
    ws = L.ws_from_seeds(G, [3, 11], psi=0.7)
    assert ws.shape == (2, G.num_ws, G.w_dim) and ws.dtype == torch.float32
    # batched mapping here vs one seed at a time there: equal up to float rounding
    torch.testing.assert_close(ws, generate_images(G, [3, 11], truncation_psi=0.7).ws, atol=1e-5, rtol=1e-5)
    assert torch.equal(ws, L.ws_from_seeds(G, [3, 11], psi=0.7))  # deterministic per seed
    with pytest.raises(InputError, match="Seeds go from 0"):
        L.ws_from_seeds(G, [-1])


# ---- seeds -------------------------------------------------------------------------------------
@pytest.mark.parametrize("text, seeds", [
    ("0", [0]),
    ("0-7", list(range(8))),
    ("1,5,9", [1, 5, 9]),
    (" 1, 4-6 ,9 ", [1, 4, 5, 6, 9]),
    ("3 - 5", [3, 4, 5]),
    ("2 7", [2, 7]),
    ("1,1,2,1", [1, 2]),
    (str(MAX_SEED), [MAX_SEED]),
])
def test_parse_seeds_accepts(text, seeds):
    assert parse_seeds(text) == seeds


def test_parse_seeds_random_is_drawn_from_the_given_rng():
    a = parse_seeds("random", rng=random.Random(5))
    assert a == parse_seeds("Random", rng=random.Random(5))
    assert len(a) == 1 and 0 <= a[0] <= MAX_SEED
    four = parse_seeds("random:4", rng=random.Random(6))
    assert len(four) == 4 and all(0 <= s <= MAX_SEED for s in four)
    assert parse_seeds("random", rng=random.Random(7)) != a  # not a constant


@pytest.mark.parametrize("text, fragment", [
    ("", "empty"),
    ("   ", "empty"),
    ("abc", "'abc'"),
    ("1.5", "'1.5'"),
    ("-3", "'-3'"),
    ("4-", "'4-'"),
    ("7-2", "write it as 2-7"),
    ("0-100", "at most 16"),
    (str(MAX_SEED + 1), "too large"),
    ("random:0", "between 1 and 16"),
    ("random:99", "between 1 and 16"),
    (",,", "No seeds"),
])
def test_parse_seeds_rejects_bad_text_with_a_sentence(text, fragment):
    with pytest.raises(InputError) as e:
        parse_seeds(text, max_count=16)
    msg = str(e.value)
    assert fragment in msg
    assert msg.endswith(".") and "\n" not in msg
