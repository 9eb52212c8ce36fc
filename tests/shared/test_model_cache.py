"""shared.model_cache: one `get` per record for every kind, the byte budget and least-recently-used
eviction, the bounded derived-data cache, and the registry's companion records."""
from __future__ import annotations

import dataclasses
import importlib
import threading

import pytest
import torch
from torch import nn

from shared import registry
from shared.model_cache import (LOADERS, DerivedCache, ModelCache, default_cache, load_record, object_bytes,
                                set_default_cache)
from shared.registry import COMPANION_KINDS, LocalSource, ModelCard

DEMO = registry.DEFAULT_GENERATOR_ID


def _card(model_id: str, arch: str = "stylegan2", **kw) -> ModelCard:
    base = dict(id=model_id, family="t", arch=arch, arch_config=None, format="safetensors", tasks=("generation",),
                sources=(LocalSource("x.safetensors"),), sha256=None, size=None, license="MIT", paper="p",
                official_repo="r", resolution=64, description="d")
    return ModelCard(**{**base, **kw})


# ---- registry: companions --------------------------------------------------------------------------
def test_every_companion_names_a_registered_record_of_the_right_kind():
    kinds = {"encoder": {"e4e", "psp", "restyle-psp", "restyle-e4e"}, "predictor": {"demo-predictor"},
             "clip": {"clip-vit", "open-clip"}, "flow": {"styleflow-cnf"}, "directions": {"direction-set"},
             "mappers": {"styleclip-levels-mapper"}, "relevance": {"styleclip-relevance"},
             "stylespace-stats": {"stylespace-stats"}, "ccm": {"posewithstyle-ccm"},
             "uv-lookup": {"densepose-uv-lookup"}, "uv-parts": {"densepose-uv-parts"}}
    assert set(kinds) == COMPANION_KINDS
    for card in registry.cards():
        for kind in card.companions:
            for other in registry.companions(card.id, kind):
                assert registry.get(other).arch in kinds[kind], (card.id, kind, other)


def test_demo_generator_lists_its_companions():
    assert registry.companion(DEMO, "encoder") == "demo-portraits-e4e-64"
    assert registry.companion(DEMO, "predictor") == "demo-portraits-predictor"
    assert registry.companion(DEMO, "clip") == "demo-portraits-clip"
    assert registry.companion(DEMO, "flow") == "demo-portraits-styleflow"
    assert registry.companion(DEMO, "directions") == "demo-portraits-directions"
    assert registry.companions(DEMO, "mappers") == ("demo-portraits-mapper-blonde-hair",
                                                    "demo-portraits-mapper-glasses")
    assert registry.companion("stylegan2-ffhq-1024", "flow") == "styleflow-ffhq"
    assert registry.companion("stylegan2-ffhq-1024-rosinality", "relevance") == "styleclip-fs3-ffhq"
    # models without companions, no model, unknown model: nothing
    assert registry.companion(registry.UNTRAINED_ID, "predictor") is None
    assert registry.companion(None, "flow") is None and registry.companion("no-such-model", "flow") is None
    assert registry.companions(registry.UNTRAINED_ID, "mappers") == ()
    assert registry.PAIRED_ENCODERS == {DEMO: {"e4e": "demo-portraits-e4e-64"}}
    with pytest.raises(KeyError, match="companions"):
        registry.companion(DEMO, "mappers")
    with pytest.raises(KeyError, match="Unknown companion kind"):
        registry.companion(DEMO, "vae")


def test_card_rejects_bad_companions():
    with pytest.raises(ValueError, match="unknown companion kind"):
        _card("x-1", companions={"vae": "y"})
    with pytest.raises(ValueError, match="tuple"):
        _card("x-1", companions={"mappers": "y"})
    with pytest.raises(ValueError, match="one record id"):
        _card("x-1", companions={"flow": ("a", "b")})


def test_demo_mapper_records_match_their_file_headers():
    from shared.styleclip.mapper import demo_mappers
    mappers = demo_mappers()
    assert list(mappers) == [registry.get(i).arch_config["prompt"] for i in registry.companions(DEMO, "mappers")]


# ---- loaders ------------------------------------------------------------------------------------
def test_every_record_kind_has_a_loader_that_resolves():
    for target, call in LOADERS.values():
        module, _, name = target.partition(":")
        assert callable(getattr(importlib.import_module(module), name)), target
        assert call in ("card", "path")
    generators = {"stylegan1", "stylegan2", "stylegan3", "stylenerf", "eg3d"}
    without = {"dlib-shape-predictor", "styleclip-relevance", "stylespace-stats"}  # read by their users
    for card in registry.cards():
        if card.arch in generators | without:
            continue
        assert f"{card.arch}:{card.format}" in LOADERS or card.arch in LOADERS, card.id
    with pytest.raises(ValueError, match="not a kind the model cache loads"):
        load_record(registry.get("dlib-landmarks-68"), None)


def test_get_loads_every_demo_record_once_through_the_budget():
    cache = ModelCache("cpu", 1 << 30)
    from shared.demo.directions import DirectionSet
    from shared.editing.styleflow_edit import FlowModel
    from shared.loaders.encoders import EncoderCheckpoint
    from shared.styleclip.clip import ClipModel
    expect = {DEMO: nn.Module, "demo-portraits-e4e-64": EncoderCheckpoint, "demo-portraits-clip": ClipModel,
              "demo-portraits-predictor": nn.Module, "demo-portraits-directions": DirectionSet,
              "demo-portraits-styleflow": FlowModel, "demo-portraits-mapper-glasses": tuple}
    for model_id, kind in expect.items():
        obj = cache.get(model_id)
        assert isinstance(obj, kind), model_id
        assert cache.get(model_id) is obj                       # loaded once
    mapper, meta = cache.get("demo-portraits-mapper-glasses")
    assert meta["prompt"] == "a person wearing glasses" and not mapper.training
    assert not any(p.requires_grad for p in cache.get("demo-portraits-predictor").parameters())
    assert cache.generator(DEMO) is cache.get(DEMO)
    with pytest.raises(ValueError, match="not a generator"):
        cache.generator("demo-portraits-clip")
    assert set(cache.loaded_ids()) == set(expect)
    assert cache.bytes_used() == sum(object_bytes(cache.get(i)) for i in expect)


class _Blob:
    pass


def test_budget_evicts_least_recently_used_records_of_any_kind(monkeypatch: pytest.MonkeyPatch):
    cards = {i: _card(i, arch="demo-predictor") for i in ("a-1", "b-1", "c-1")}
    built: list[str] = []

    def fake_record(card, path):
        built.append(card.id)
        return nn.Linear(16, 16)                 # 16*16 + 16 floats = 1088 bytes

    monkeypatch.setattr("shared.model_cache.load_record", fake_record)
    monkeypatch.setattr("shared.model_cache.hub.fetch", lambda card, **kw: None)
    per = object_bytes(nn.Linear(16, 16))
    cache = ModelCache("cpu", 2 * per, lookup=cards.__getitem__)
    a = cache.get("a-1")
    cache.get("b-1")
    assert cache.get("a-1") is a                  # hit: a becomes the most recently used
    cache.get("c-1")                              # over budget: b goes
    assert cache.loaded_ids() == ["a-1", "c-1"] and cache.bytes_used() == 2 * per
    cache.get("b-1")                              # loaded again; a goes
    assert cache.loaded_ids() == ["c-1", "b-1"] and built == ["a-1", "b-1", "c-1", "b-1"]
    assert cache.evict("c-1") and not cache.evict("c-1")
    # one key per device
    assert cache.get("b-1", device="cpu") is cache.get("b-1")


def test_concurrent_gets_load_once(monkeypatch: pytest.MonkeyPatch):
    calls = []
    gate = threading.Event()

    def slow(card, path):
        calls.append(card.id)
        gate.wait(5)
        return nn.Linear(2, 2)

    monkeypatch.setattr("shared.model_cache.load_record", slow)
    monkeypatch.setattr("shared.model_cache.hub.fetch", lambda card, **kw: None)
    cache = ModelCache("cpu", 1 << 20, lookup={"p-1": _card("p-1", arch="demo-predictor")}.__getitem__)
    out = []
    threads = [threading.Thread(target=lambda: out.append(cache.get("p-1"))) for _ in range(4)]
    for t in threads:
        t.start()
    gate.set()
    for t in threads:
        t.join()
    assert calls == ["p-1"] and all(o is out[0] for o in out)


# ---- derived data -------------------------------------------------------------------------------
def test_derived_cache_builds_once_and_keeps_its_bounds():
    store = DerivedCache(max_entries=2, budget_bytes=1 << 20)
    builds = []
    value = store.get_or_build(("stats", "m-1"), lambda: builds.append(1) or torch.zeros(4))
    assert store.get_or_build(("stats", "m-1"), lambda: builds.append(1) or torch.ones(4)) is value
    assert builds == [1] and ("stats", "m-1") in store
    store.put(("stats", "m-2"), torch.zeros(4))
    store.get(("stats", "m-1"))                                     # m-1 used last
    store.put(("catalog", "m-3"), torch.zeros(4))                   # 3 entries > 2: m-2 goes
    assert store.keys() == [("stats", "m-1"), ("catalog", "m-3")]
    assert store.bytes_used() == 32 and len(store) == 2
    small = DerivedCache(max_entries=10, budget_bytes=100)
    small.put(("a",), torch.zeros(20))                              # 80 bytes
    small.put(("b",), torch.zeros(20))                              # 160 > 100: a goes
    assert small.keys() == [("b",)]
    small.put(("huge",), torch.zeros(1000))                         # alone over budget: kept
    assert small.keys() == [("huge",)]
    assert store.drop("m-1") == 1 and store.keys() == [("catalog", "m-3")]
    with pytest.raises(RuntimeError):
        store.get_or_build(("bad",), lambda: (_ for _ in ()).throw(RuntimeError("boom")))
    assert ("bad",) not in store


def test_object_bytes_counts_tensors_in_containers_once():
    t = torch.zeros(10)
    assert object_bytes(t) == 40 and object_bytes((t, t, {"x": t})) == 40
    assert object_bytes(nn.Linear(3, 2)) == 4 * 8

    @dataclasses.dataclass
    class Holder:
        a: torch.Tensor
        b: list
    assert object_bytes(Holder(torch.zeros(2), [torch.zeros(3)])) == 20
    assert object_bytes(_Blob()) == 0


def test_derived_users_share_the_default_cache():
    from shared.editing.local_style import cached_catalog
    from shared.editing.stylespace import style_stats
    previous = default_cache()
    cache = set_default_cache(ModelCache("cpu", 1 << 30))
    try:
        G = cache.generator(DEMO)
        stats = style_stats(G, samples=100, key=DEMO)
        assert style_stats(G, samples=100, key=DEMO) is stats
        catalog, hit = cached_catalog(DEMO, G, k=3, samples=8)
        again, hit2 = cached_catalog(DEMO, G, k=3, samples=8)
        assert (hit, hit2) == (False, True) and again is catalog
        kinds = {key[0] for key in cache.derived.keys()}
        assert kinds == {"stylespace-stats", "part-catalog"}
    finally:
        set_default_cache(previous)


def test_context_cache_is_the_process_default():
    from shared.context import create_context
    previous = default_cache()
    try:
        ctx = create_context(device=torch.device("cpu"))
        assert default_cache() is ctx.models
    finally:
        set_default_cache(previous)
