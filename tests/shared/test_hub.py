"""shared.hub and shared.model_cache against a local Hub-compatible server (tests/hubserver.py).

The file served is a real rosinality-format checkpoint (`rosinality_sg2_g64_ckpt.pt`, written by
the official rosinality/stylegan2-pytorch code; see ../shared/parity/README.md), so what goes
through download and verification is what users download.
"""
from __future__ import annotations

import errno
import hashlib
import threading
import time
from pathlib import Path

import pytest
import torch
from torch import nn

from shared import hub
from shared.model_cache import ModelCache, default_loader, module_bytes
from shared.registry import BuiltinSource, HubSource, LocalSource, ModelCard
from tests.hubserver import Fault, HubServer

torch.set_num_threads(1)

REPO = "tester/tiny-stylegan2"
FILE = "stylegan2-tiny-64.pt"


def make_card(model_id: str = "test-tiny-64", *, sources: tuple | None = None, sha256: str | None = None,
              size: int | None = None, revision: str | None = None, fmt: str = "rosinality-pt") -> ModelCard:
    return ModelCard(
        id=model_id, family="stylegan2", arch="stylegan2", arch_config=None, format=fmt,
        tasks=("generation",), sources=sources or (HubSource(REPO, FILE, revision),),
        sha256=sha256, size=size, license="MIT (test)", paper="test", official_repo="test",
        resolution=64, description="tiny test model",
    )


@pytest.fixture(scope="module")
def ckpt_bytes(rosinality_ckpt: Path) -> bytes:
    return rosinality_ckpt.read_bytes()


@pytest.fixture
def served(hub_env: HubServer, ckpt_bytes: bytes) -> HubServer:
    """The local Hub with REPO/FILE holding the rosinality checkpoint on main."""
    hub_env.commit(REPO, {FILE: ckpt_bytes, "README.md": b"# tiny\n"})
    return hub_env


def cache_files(cache: Path) -> list[Path]:
    """Blobs and snapshot links in the Hub cache (refs only name commits and may stay)."""
    return sorted(p for p in cache.glob("models--*/*/**/*") if (p.is_file() or p.is_symlink())
                  and p.relative_to(cache).parts[1] in ("blobs", "snapshots"))


def blobs(cache: Path) -> list[Path]:
    return sorted(cache.glob("models--*/blobs/*"))


# ---- download, cache, revisions -----------------------------------------------------------------
def test_first_download_is_verified_against_first_seen_hash(served: HubServer, ckpt_bytes: bytes, tmp_path: Path):
    calls: list[tuple[float, str]] = []
    path = hub.fetch(make_card(), progress=lambda f, d: calls.append((f, d)))
    assert path.read_bytes() == ckpt_bytes
    assert path.is_relative_to(tmp_path / "cache")
    assert served.count(f"/{REPO}/resolve/main/{FILE}", "HEAD") == 1
    assert served.count(f"/{REPO}/resolve/main/{FILE}", "GET") == 1
    fractions = [f for f, _ in calls]
    assert fractions[0] == 0.0 and fractions[-1] == 1.0
    assert fractions == sorted(fractions)  # monotone, byte progress included
    assert any("MB" in d for _, d in calls)
    digest = hashlib.sha256(ckpt_bytes).hexdigest()
    assert hub.verification(make_card()) == f"unverified (first seen {digest})"
    assert blobs(tmp_path / "cache")[0].name == digest  # the ETag (sha256) names the blob


def test_cached_reuse_makes_no_request(served: HubServer):
    card = make_card()
    first = hub.fetch(card)
    served.reset_counts()
    assert hub.is_cached(card) and hub.cached_path(card) == first
    assert hub.fetch(card) == first
    assert served.count() == 0


def test_pinned_revision_gets_that_commit(served: HubServer, ckpt_bytes: bytes):
    old = served.commit(REPO, {"notes.txt": b"v1"})
    new = served.commit(REPO, {FILE: ckpt_bytes + b"\0", "notes.txt": b"v2"})  # main moves on
    assert old != new
    pinned = make_card("test-pinned", revision=old)
    path = hub.fetch(pinned)
    assert path.read_bytes() == ckpt_bytes
    assert old in path.parts  # snapshots/<old commit>/FILE
    assert served.count(f"/resolve/{old}/{FILE}", "GET") == 1
    assert served.count("/resolve/main/") == 0
    served.reset_counts()
    assert hub.fetch(pinned) == path and served.count() == 0
    latest = hub.fetch(make_card("test-latest"))
    assert latest.read_bytes() == ckpt_bytes + b"\0" and new in latest.parts


def test_fallback_source_used_when_first_repo_missing(served: HubServer, ckpt_bytes: bytes):
    card = make_card(sources=(HubSource("tester/gone", FILE, None), HubSource(REPO, FILE, None)))
    path = hub.fetch(card)
    assert path.read_bytes() == ckpt_bytes
    assert served.count("/tester/gone/") == 1


# ---- offline ----------------------------------------------------------------------------------
def test_offline_serves_cached_file_without_requests(served: HubServer, monkeypatch: pytest.MonkeyPatch):
    card = make_card()
    path = hub.fetch(card)
    served.reset_counts()
    assert hub.fetch(card, offline=True) == path
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert hub.fetch(card) == path
    assert served.count() == 0


@pytest.mark.parametrize("how", ["argument", "env"])
def test_offline_not_cached_names_model_file_repo_and_env_var(served: HubServer, how: str,
                                                               monkeypatch: pytest.MonkeyPatch):
    if how == "env":
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    card = make_card("test-offline-64")
    with pytest.raises(hub.OfflineNotCached) as err:
        hub.fetch(card, offline=True if how == "argument" else None)
    msg = str(err.value)
    for part in ("test-offline-64", FILE, REPO, "HUB_MODEL_PATH_TEST_OFFLINE_64", "shared.registry download"):
        assert part in msg
    assert served.count() == 0


def test_unreachable_endpoint_fails_fast(hub_env: HubServer, monkeypatch: pytest.MonkeyPatch):
    import socket
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    t0 = time.monotonic()
    assert hub.hub_online(endpoint=dead) is False
    with pytest.raises(hub.OfflineNotCached):
        hub.fetch(make_card(), endpoint=dead)
    assert time.monotonic() - t0 < 3.0  # no ~45 s of download retries
    assert hub.hub_online(endpoint=hub_env.endpoint) is True
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert hub.hub_online(endpoint=hub_env.endpoint) is False


def test_probe_is_bounded_and_memoised(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    hub.reset_online_probe()
    t0 = time.monotonic()
    hub.hub_online(timeout=0.3, endpoint="http://10.255.255.1:9")  # unroutable: times out
    first = time.monotonic() - t0
    t0 = time.monotonic()
    hub.hub_online(timeout=0.3, endpoint="http://10.255.255.1:9")
    assert first < 1.0 and time.monotonic() - t0 < 0.05
    hub.reset_online_probe()


# ---- verification -------------------------------------------------------------------------------
def test_wrong_checksum_refused_and_nothing_left(served: HubServer, ckpt_bytes: bytes, tmp_path: Path):
    bad = make_card(sha256="0" * 64)
    with pytest.raises(hub.ChecksumMismatch) as err:
        hub.fetch(bad)
    assert "test-tiny-64" in str(err.value) and err.value.expected == "0" * 64
    assert blobs(tmp_path / "cache") == [] and hub.cached_path(bad) is None
    good = make_card(sha256=hashlib.sha256(ckpt_bytes).hexdigest(), size=len(ckpt_bytes))
    assert hub.fetch(good).read_bytes() == ckpt_bytes
    assert hub.verification(good) == "verified"
    assert hub.verification(bad) == "mismatch"


def test_html_body_refused_then_retry_succeeds(served: HubServer, ckpt_bytes: bytes, tmp_path: Path):
    served.inject(REPO, FILE, Fault("html"))
    with pytest.raises(hub.NotAModelFile) as err:
        hub.fetch(make_card())
    assert "HTML" in str(err.value)
    assert cache_files(tmp_path / "cache") == []
    assert hub.fetch(make_card()).read_bytes() == ckpt_bytes


def test_corrupted_cache_blob_is_downloaded_again(served: HubServer, ckpt_bytes: bytes):
    path = hub.fetch(make_card())
    path.resolve().write_bytes(b"<html>disk went bad</html>")
    served.reset_counts()
    assert hub.fetch(make_card()).read_bytes() == ckpt_bytes
    assert served.count(f"/{FILE}", "GET") == 1


def test_wrong_size_and_wrong_magic_refused(served: HubServer, ckpt_bytes: bytes, tmp_path: Path):
    with pytest.raises(hub.NotAModelFile, match="truncated"):
        hub.fetch(make_card(size=len(ckpt_bytes) + 1))
    with pytest.raises(hub.NotAModelFile, match="nvlabs-pkl"):
        hub.fetch(make_card("test-as-pickle", fmt="nvlabs-pkl"))
    assert blobs(tmp_path / "cache") == []


def test_connection_dropped_half_way_resumes(served: HubServer, ckpt_bytes: bytes, tmp_path: Path):
    served.inject(REPO, FILE, Fault("drop", times=1))  # half the body, then the socket closes
    path = hub.fetch(make_card())
    assert path.read_bytes() == ckpt_bytes
    assert served.count(f"/{FILE}", "GET") == 2  # the client resumed with a Range request
    assert not list((tmp_path / "cache").rglob("*.incomplete"))


def test_connection_dropped_for_good_leaves_no_file(served: HubServer, ckpt_bytes: bytes, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch):
    import huggingface_hub.file_download as fd
    monkeypatch.setattr(fd.time, "sleep", lambda _s: None)  # the client waits 1 s between its retries
    served.inject(REPO, FILE, Fault("drop", times=50, after_bytes=0))
    with pytest.raises(hub.DownloadFailed) as err:
        hub.fetch(make_card())
    assert "test-tiny-64" in str(err.value)
    assert blobs(tmp_path / "cache") == [] and not list((tmp_path / "cache").rglob("*.incomplete"))
    served.clear_faults()
    assert hub.fetch(make_card()).read_bytes() == ckpt_bytes


def test_short_body_is_a_failed_download(served: HubServer, ckpt_bytes: bytes, tmp_path: Path):
    served.inject(REPO, FILE, Fault("truncate", after_bytes=1000))
    with pytest.raises(hub.DownloadFailed):
        hub.fetch(make_card())
    assert blobs(tmp_path / "cache") == []
    assert hub.fetch(make_card()).read_bytes() == ckpt_bytes


def test_server_error_is_a_failed_download(served: HubServer, ckpt_bytes: bytes):
    served.inject(REPO, FILE, Fault("status", status=503))
    with pytest.raises(hub.DownloadFailed, match="HTTP 503"):
        hub.fetch(make_card())
    assert hub.fetch(make_card()).read_bytes() == ckpt_bytes


def test_changed_file_caught_by_first_seen_ledger(served: HubServer, ckpt_bytes: bytes, tmp_path: Path):
    import shutil
    card = make_card()
    hub.fetch(card)
    shutil.rmtree(next((tmp_path / "cache").glob("models--*")))  # user clears the cache ...
    served.commit(REPO, {FILE: ckpt_bytes + b"tampered"})         # ... and main now serves other bytes
    with pytest.raises(hub.ChecksumMismatch, match="changed since it was first downloaded"):
        hub.fetch(card)
    assert hub.verification(card) == "mismatch"
    new = hub.accept_current_hash(card)
    assert hub.fetch(card).read_bytes() == ckpt_bytes + b"tampered"
    assert hub.verification(card) == f"unverified (first seen {new})"


# ---- error messages ---------------------------------------------------------------------------
def test_missing_repo_file_revision_and_gated_messages(served: HubServer):
    served.add_repo("tester/gated", gated=True)
    cases = {
        "tester/nothing-here": ("does not exist or is private", None, FILE),
        "tester/gated": ("is gated", None, FILE),
        REPO: ("has no file", None, "missing.pt"),
    }
    for repo, (phrase, rev, fname) in cases.items():
        with pytest.raises(hub.RepoUnavailable) as err:
            hub.fetch(make_card(sources=(HubSource(repo, fname, rev),)))
        assert phrase in str(err.value) and repo in str(err.value) and "test-tiny-64" in str(err.value)
    with pytest.raises(hub.RepoUnavailable, match="has no revision"):
        hub.fetch(make_card(revision="f" * 40))
    both = make_card(sources=(HubSource("tester/gone", FILE, None), HubSource(REPO, "gone.pt", None)))
    with pytest.raises(hub.RepoUnavailable, match=r"tester/gone .* \(and its 1 fallback source\(s\) failed too\)\.$"):
        hub.fetch(both)


def test_disk_full(served: HubServer, monkeypatch: pytest.MonkeyPatch):
    with pytest.raises(hub.DiskFull, match="HUB_CACHE_DIR"):
        hub.fetch(make_card(size=1 << 60))
    assert served.count() == 0

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr("huggingface_hub.hf_hub_download", no_space)
    with pytest.raises(hub.DiskFull, match="filled up"):
        hub.fetch(make_card())


# ---- local files ------------------------------------------------------------------------------
def test_env_override_wins_without_requests(served: HubServer, monkeypatch: pytest.MonkeyPatch, rosinality_ckpt: Path):
    card = make_card("test-override-64")
    monkeypatch.setenv("HUB_MODEL_PATH_TEST_OVERRIDE_64", str(rosinality_ckpt))
    assert hub.fetch(card) == rosinality_ckpt and hub.is_cached(card)
    assert served.count() == 0
    monkeypatch.setenv("HUB_MODEL_PATH_TEST_OVERRIDE_64", "/nonexistent/file.pt")
    with pytest.raises(hub.LocalFileMissing, match="HUB_MODEL_PATH_TEST_OVERRIDE_64"):
        hub.fetch(card)
    assert hub.is_cached(card) is False


def test_local_source_in_weights_dir(hub_env: HubServer, tmp_path: Path, ckpt_bytes: bytes):
    card = ModelCard(
        id="test-local-64", family="stylegan3", arch="stylegan2", arch_config=None, format="rosinality-pt",
        tasks=("generation",), sources=(LocalSource("$HUB_WEIGHTS_DIR/tiny.pt"),), sha256=None, size=None,
        license="MIT (test)", paper="test", official_repo="test", resolution=64, description="test",
        manual_url="https://example.org/tiny.pt")
    with pytest.raises(hub.LocalFileMissing) as err:
        hub.fetch(card)
    for part in ("test-local-64", "tiny.pt", "https://example.org/tiny.pt", "HUB_MODEL_PATH_TEST_LOCAL_64",
                 str(tmp_path / "weights")):
        assert part in str(err.value)
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "tiny.pt").write_bytes(ckpt_bytes)
    assert hub.fetch(card) == tmp_path / "weights" / "tiny.pt"
    assert hub.verification(card).startswith("unverified (first seen ")


def test_builtin_cards_have_no_file():
    from shared.registry import UNTRAINED_ID, get
    card = get(UNTRAINED_ID)
    assert hub.is_cached(card) and hub.cached_path(card) is None and hub.verification(card) == "built-in"
    with pytest.raises(ValueError):
        hub.fetch(card)


# ---- model cache ------------------------------------------------------------------------------
def test_two_concurrent_loads_of_one_model_load_once(served: HubServer):
    card = make_card()
    calls: list[str] = []

    def counting_loader(c: ModelCard, path: Path | None) -> nn.Module:
        calls.append(c.id)
        return default_loader(c, path)

    served.inject(REPO, FILE, Fault("slow", times=1, delay=0.5))  # both threads are in flight at once
    cache = ModelCache("cpu", 1 << 30, loader=counting_loader, lookup={card.id: card}.__getitem__)
    results: list[nn.Module] = []
    barrier = threading.Barrier(2)

    def worker() -> None:
        barrier.wait()
        results.append(cache.generator(card.id))

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(results) == 2 and results[0] is results[1]
    assert calls == [card.id]
    assert served.count(f"/{FILE}", "GET") == 1
    G = results[0]
    assert not G.training and not any(p.requires_grad for p in G.parameters())
    assert G.img_resolution == 64
    with torch.no_grad():
        img = G(torch.randn(1, G.z_dim, generator=torch.Generator().manual_seed(0)))
    assert img.shape == (1, 3, 64, 64) and torch.isfinite(img).all()
    assert cache.loaded_ids() == [card.id]


def _builtin_card(model_id: str) -> ModelCard:
    return ModelCard(id=model_id, family="demo", arch="stylegan2", arch_config=None, format="builtin",
                     tasks=("generation",), sources=(BuiltinSource(seed=1),), sha256=None, size=None,
                     license="MIT (test)", paper="test", official_repo="test", resolution=None,
                     description="test", untrained=True)


def test_lru_eviction_by_parameter_bytes():
    widths = {"m-a": 100, "m-b": 100, "m-c": 100}  # nn.Linear(w, w): (w*w + w) * 4 bytes = 40400
    cards = {k: _builtin_card(k) for k in widths}
    loads: list[str] = []

    def loader(card: ModelCard, path: Path | None) -> nn.Module:
        assert path is None
        loads.append(card.id)
        return nn.Linear(widths[card.id], widths[card.id])

    per_model = (100 * 100 + 100) * 4
    cache = ModelCache("cpu", budget_bytes=2 * per_model, loader=loader, lookup=cards.__getitem__)
    a = cache.generator("m-a")
    assert module_bytes(a) == per_model
    cache.generator("m-b")
    assert cache.generator("m-a") is a             # hit: a becomes most recently used
    cache.generator("m-c")                          # over budget: b (least recent) goes
    assert cache.loaded_ids() == ["m-a", "m-c"]
    assert cache.bytes_used() == 2 * per_model
    cache.generator("m-b")                          # reload, a goes
    assert cache.loaded_ids() == ["m-c", "m-b"]
    assert loads == ["m-a", "m-b", "m-c", "m-b"]
    small = ModelCache("cpu", budget_bytes=10, loader=loader, lookup=cards.__getitem__)
    small.generator("m-a")                          # alone over budget: kept anyway
    assert small.loaded_ids() == ["m-a"]


def test_builtin_default_generator_is_deterministic_and_frozen():
    pytest.importorskip("shared.archs.stylegan2")
    from shared.registry import DEFAULT_GENERATOR_ID
    one = ModelCache("cpu", 1 << 30).generator(DEFAULT_GENERATOR_ID)
    two = ModelCache("cpu", 1 << 30).generator(DEFAULT_GENERATOR_ID)
    assert one is not two
    assert not one.training and not any(p.requires_grad for p in one.parameters())
    assert (one.img_resolution, one.z_dim, one.w_dim) == (64, 35, 128)   # z: the renderer's factor vector
    z = torch.randn(2, one.z_dim, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        a, b = one(z), two(z)
    assert a.shape == (2, 3, 64, 64) and torch.equal(a, b)


def test_model_cache_unknown_id_and_offline_error(hub_env: HubServer):
    cache = ModelCache("cpu", 1 << 30, offline=True, lookup={"test-tiny-64": make_card()}.__getitem__)
    with pytest.raises(hub.OfflineNotCached):
        cache.generator("test-tiny-64")
    with pytest.raises(KeyError):
        ModelCache("cpu", 1 << 30).generator("no-such-model")
    assert cache.loaded_ids() == []
