"""StyleFlow editing (shared.editing.styleflow_edit) on small random flows: shapes, rows, round trips,
sequential edits, input errors, rendering, and the official flow file's layout."""
from __future__ import annotations

import pytest
import torch

from shared import registry
from shared.archs.styleflow import StyleFlow
from shared.editing.styleflow_edit import (FlowAttribute, FlowModel, apply_styleflow, edit_ws, official_attributes,
                                           official_flow_model, parse_values)
from shared.errors import InputError
from tests.flows import randomised

torch.set_num_threads(1)
DEMO = registry.DEFAULT_GENERATOR_ID


def tiny_model(dim: int = 8, k: int = 3, num_ws: int = 4, seed: int = 0) -> FlowModel:
    flow = randomised(StyleFlow(dim, (16, 16), k), seed)
    attrs = (FlowAttribute("a", "u", -1, 1, rows=(0, 1)), FlowAttribute("b", "u", 0, 1, rows=(2, 3)),
             FlowAttribute("c", "u", 0, 1, editable=False))
    return FlowModel(flow.eval().requires_grad_(False), attrs[:k], num_ws, "a tiny flow")


def ws_batch(n=3, num_ws=4, dim=8, seed=1, same_rows=False) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    if same_rows:
        return torch.randn(n, 1, dim, generator=g).expand(n, num_ws, dim).clone()
    return torch.randn(n, num_ws, dim, generator=g)


# ---- pure functions on a small random flow ---------------------------------------------------------------
def test_edit_shapes_rows_and_determinism():
    model = tiny_model()
    ws = ws_batch()
    e1 = edit_ws(model, ws, {"a": 0.0, "b": 0.5}, {"a": 0.8})
    e2 = edit_ws(model, ws, {"a": 0.0, "b": 0.5}, {"a": 0.8})
    assert e1.ws.shape == ws.shape and e1.ws.dtype == torch.float32 and torch.equal(e1.ws, e2.ws)
    assert [s[0] for s in e1.steps] == ["a"] and e1.steps[0][2] == (0, 1)
    assert torch.equal(e1.ws[:, 2:], ws[:, 2:])                      # rows outside 'a' are kept
    assert float((e1.ws[:, :2] - ws[:, :2]).abs().max()) > 1e-3      # rows of 'a' move
    assert torch.allclose(e1.target[:, 0], torch.full((3,), 0.8))
    assert torch.allclose(e1.source[:, 1], torch.full((3,), 0.5))
    full = edit_ws(model, ws, {"a": 0.0, "b": 0.5}, {"a": 0.8}, rows="all")
    assert torch.allclose(full.ws[:, :2], e1.ws[:, :2], atol=1e-4) and not torch.allclose(full.ws[:, 2:], ws[:, 2:])
    same = edit_ws(model, ws, {"a": 0.3}, {"a": 0.3})                # nothing requested: nothing changes
    assert same.steps == () and torch.equal(same.ws, ws)
    held = edit_ws(model, ws, None, {"c": 0.9})                      # not editable: held at the source
    assert held.steps == () and torch.equal(held.ws, ws)


def test_edit_round_trip_and_the_one_row_shortcut():
    model = tiny_model()
    ws = ws_batch(same_rows=True)
    there = edit_ws(model, ws, {"a": -0.5}, {"a": 0.7}, rows="all")
    back = edit_ws(model, there.ws, {"a": 0.7}, {"a": -0.5}, rows="all")
    assert float((back.ws - ws).abs().max()) < 1e-3                  # dopri5 both ways
    # rows equal within each code: solved once and copied; the same as solving every row
    direct = model.flow.reverse(model.flow(ws, model.normalise(parse_values(model, {"a": -.5}, 3))),
                                model.normalise(parse_values(model, {"a": 0.7}, 3)))
    assert torch.allclose(there.ws, direct, atol=1e-5)


def test_sequential_edits_write_each_attributes_rows_and_report_progress():
    model = tiny_model()
    ws = ws_batch()
    seen = []
    e = edit_ws(model, ws, {"a": 0.0, "b": 0.2}, {"a": 0.5, "b": 0.9}, progress=lambda f, t: seen.append(f))
    assert [s[0] for s in e.steps] == ["a", "b"] and seen == [0.5, 1.0]
    assert not torch.equal(e.ws[:, :2], ws[:, :2]) and not torch.equal(e.ws[:, 2:], ws[:, 2:])


def test_edit_input_errors_are_sentences():
    model = tiny_model()
    with pytest.raises(InputError, match="has no attribute 'age'"):
        edit_ws(model, ws_batch(), None, {"age": 1.0})
    with pytest.raises(InputError, match=r"edits W\+ codes \[N, num_ws, 8\]"):
        edit_ws(model, torch.zeros(1, 4, 5), None, {"a": 1.0})
    with pytest.raises(InputError, match="row table is for 4-row"):
        edit_ws(model, ws_batch(num_ws=6), None, {"a": 1.0})
    with pytest.raises(InputError, match="3 attribute values per image"):
        parse_values(model, [1.0, 2.0], 2)
    with pytest.raises(InputError, match="finite"):
        parse_values(model, {"a": float("nan")}, 1)


def test_apply_renders_with_the_generator():
    from shared.archs.stylegan2 import StyleGAN2Config, StyleGAN2Generator
    cfg = StyleGAN2Config(z_dim=8, w_dim=8, img_resolution=16, mapping_layers=2, channels=((4, 16), (8, 16), (16, 8)))
    G = StyleGAN2Generator(cfg).init_random_(torch.Generator().manual_seed(3)).eval()
    model = tiny_model(num_ws=G.num_ws)
    model = FlowModel(model.flow, tuple(FlowAttribute(a.name, a.unit, a.low, a.high, editable=a.editable)
                                        for a in model.attributes), G.num_ws, "a tiny flow")
    ws = G.mapping(torch.randn(2, 8, generator=torch.Generator().manual_seed(0)))
    out = apply_styleflow(G, model, ws, {"a": 0.0}, {"a": 1.0})
    assert out.image.shape == (2, 3, 16, 16) and float(out.image.abs().max()) <= 1
    with pytest.raises(InputError, match="flow over 6-dim W; this generator.s W has 8 dims"):
        apply_styleflow(G, tiny_model(dim=6), torch.zeros(1, G.num_ws, 6), None, {"a": 1.0})


def test_official_table_and_missing_file(tmp_path):
    attrs = official_attributes()
    assert [a.name for a in attrs][9:] == ["Gender", "Glasses", "Yaw", "Pitch", "Baldness", "Beard", "Age",
                                           "Expression"]
    rows = {a.name: a.rows for a in attrs}
    assert rows["Yaw"] == (0, 1, 2, 3) and rows["Expression"] == (4, 5) and rows["Beard"] == (5, 6, 7, 8, 9)
    assert rows["light_sh0"] == (7, 8, 9, 10, 11) and not attrs[0].editable
    for path in (None, tmp_path / "modellarge10k.pt"):
        with pytest.raises(InputError, match="HUB_MODEL_PATH_STYLEFLOW_FFHQ"):
            official_flow_model(path)


def test_official_layout_file_loads_and_edits_its_rows(tmp_path, monkeypatch):
    """A random prior in the official layout (cnf(512, '16', 17, 1)) stands in for modellarge10k.pt."""
    path = tmp_path / "modellarge10k.pt"
    torch.save(randomised(StyleFlow(512, (16,), 17), 5, 0.05).state_dict(), path)
    model = official_flow_model(path)
    assert model.flow.context_dim == 17 and model.num_ws == 18 and len(model.editable()) == 8
    ws = torch.randn(1, 18, 512, generator=torch.Generator().manual_seed(0))
    e = edit_ws(model, ws, None, {"Yaw": 15.0})
    assert torch.equal(e.ws[:, 4:], ws[:, 4:]) and not torch.equal(e.ws[:, :4], ws[:, :4])
    # through the model cache: loaded once, the lighting set per request
    from shared.editing.styleflow_edit import flow_for
    from shared.model_cache import ModelCache
    monkeypatch.setenv("HUB_MODEL_PATH_STYLEFLOW_FFHQ", str(path))
    monkeypatch.setenv("HUB_CACHE_DIR", str(tmp_path / "hub"))
    cache = ModelCache("cpu", 1 << 30)
    flow = flow_for(cache, "stylegan2-ffhq-1024")
    lit = flow_for(cache, "stylegan2-ffhq-1024", [0.5] * 9)
    assert lit.flow is flow.flow and lit.attributes[0].default == 0.5 and cache.loaded_ids() == ["styleflow-ffhq"]
