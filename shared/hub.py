"""Fetch and verify registry weights: local file -> Hugging Face Hub cache -> download -> verify.

Downloads go through `huggingface_hub.hf_hub_download` (huggingface/huggingface_hub 2.x, cache
layout `models--owner--name/{blobs,snapshots,refs}`), with the revision pinned where the record
knows it. Everything that arrives is checked before anyone loads it: HTML pages (a classic
mirror/Drive failure) and files of the wrong size or without their format's magic bytes are
refused, the sha256 is compared when the record knows it, and otherwise the first download's hash
is written to a small ledger in the cache (trust on first use) and shown as "unverified". A bad
download is deleted from the cache so the next try fetches it again.

Settings are read at call time: `HUB_CACHE_DIR` (default: huggingface_hub's cache), `HF_ENDPOINT`,
`HF_HUB_OFFLINE`, `HUB_WEIGHTS_DIR` (folder of hand-downloaded files), `HUB_MODEL_PATH_<ID>`
(one model's local file). `hub_online()` probes the endpoint once (<= 1.5 s, remembered for a
minute) so an offline machine fails fast instead of waiting on download retries.
"""
from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import shutil
import socket
import struct
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from urllib.parse import urlsplit

from shared.registry import HubSource, ModelCard

__all__ = [
    "ChecksumMismatch", "DiskFull", "DownloadFailed", "HubError", "LocalFileMissing", "NotAModelFile",
    "OfflineNotCached", "Progress", "RepoUnavailable", "accept_current_hash", "cache_dir", "cached_path",
    "default_endpoint", "fetch", "file_sha256", "hub_online", "is_cached", "reset_online_probe",
    "verification", "weights_dir",
]

log = logging.getLogger(__name__)

Progress = Callable[[float, str], None]  # progress(fraction in [0, 1], description)

_REPO_ROOT = Path(__file__).resolve().parents[1]
_DEFAULT_ENDPOINT = "https://huggingface.co"
_PROBE_TTL_S = 60.0
_LEDGER_NAME = ".stylegan-hub/hashes.json"
_HEAD_BYTES = 512


# ---- errors (messages are shown to users as-is) ----------------------------------------------
class HubError(Exception):
    """A model's weights could not be provided; the message is one user-facing sentence."""


class OfflineNotCached(HubError):
    """The weights are not on this machine and the Hub cannot be reached (or offline mode is on)."""


class ChecksumMismatch(HubError):
    """The file's sha256 differs from the record (or from the hash recorded at first download)."""

    def __init__(self, message: str, *, expected: str, actual: str) -> None:
        super().__init__(message)
        self.expected, self.actual = expected, actual


class NotAModelFile(HubError):
    """What arrived is not a weights file: an HTML page, an empty or truncated file, wrong magic."""


class RepoUnavailable(HubError):
    """The Hub repository, revision or file is missing, private or gated."""


class DiskFull(HubError):
    """Not enough disk space in the cache for the download."""


class LocalFileMissing(HubError):
    """A model that only comes as a local file (NGC, Drive) has no file on this machine."""


class DownloadFailed(HubError):
    """The transfer broke off (connection dropped, server error) after the client's retries."""


# ---- settings ------------------------------------------------------------------------------
def _env_true(name: str) -> bool:
    return os.environ.get(name, "").strip().upper() in {"1", "ON", "YES", "TRUE"}


def cache_dir() -> Path:
    """The Hub cache used for downloads: `HUB_CACHE_DIR`, else huggingface_hub's default."""
    override = os.environ.get("HUB_CACHE_DIR")
    if override:
        return Path(override).expanduser()
    from huggingface_hub import constants
    return Path(constants.HF_HUB_CACHE).expanduser()


_default_cache_dir = cache_dir  # the functions below take a `cache_dir=` argument that shadows it


def _cache(explicit: Path | str | None) -> Path:
    return Path(explicit).expanduser() if explicit else _default_cache_dir()


def default_endpoint() -> str:
    """The Hub endpoint: `HF_ENDPOINT` (read now, not at import), else https://huggingface.co."""
    return (os.environ.get("HF_ENDPOINT") or _DEFAULT_ENDPOINT).rstrip("/")


def weights_dir() -> Path:
    """Folder for hand-downloaded weights (`$HUB_WEIGHTS_DIR` in LocalSource paths)."""
    return Path(os.environ.get("HUB_WEIGHTS_DIR") or "~/.cache/stylegan-hub/weights").expanduser()


# ---- connectivity ---------------------------------------------------------------------------
_probe_lock = threading.Lock()
_probes: dict[str, tuple[float, bool]] = {}


def hub_online(timeout: float = 1.5, *, endpoint: str | None = None) -> bool:
    """Whether the Hub endpoint is reachable; False at once when `HF_HUB_OFFLINE=1`.

    One TCP connection attempt to the endpoint (or to the HTTPS proxy, when one is set), bounded
    by `timeout` including name resolution; the answer is remembered for a minute per endpoint.
    """
    if _env_true("HF_HUB_OFFLINE"):
        return False
    url = (endpoint or default_endpoint()).rstrip("/")
    with _probe_lock:  # held during the probe: concurrent callers share one probe
        hit = _probes.get(url)
        if hit is not None and time.monotonic() - hit[0] < _PROBE_TTL_S:
            return hit[1]
        ok = _probe(url, timeout)
        _probes[url] = (time.monotonic(), ok)
    if not ok:
        log.info("Hub endpoint %s is unreachable; working from the local cache", url)
    return ok


def reset_online_probe() -> None:
    """Forget remembered probe results (tests, or after the network comes back)."""
    with _probe_lock:
        _probes.clear()


def _probe(url: str, timeout: float) -> bool:
    parts = urlsplit(url)
    host, scheme = parts.hostname or "", parts.scheme or "https"
    port = parts.port or (443 if scheme == "https" else 80)
    proxy = urllib.request.getproxies().get(scheme)
    if proxy and not urllib.request.proxy_bypass(host):
        proxy_parts = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        host, port = proxy_parts.hostname or host, proxy_parts.port or 80
    result: list[bool] = []

    def attempt() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                result.append(True)
        except OSError:
            result.append(False)

    worker = threading.Thread(target=attempt, name="hub-probe", daemon=True)
    worker.start()
    worker.join(timeout)  # getaddrinfo has no timeout of its own
    return bool(result) and result[0]


# ---- where a file is ------------------------------------------------------------------------
def _expand(path: str) -> Path:
    raw = path.replace("${HUB_WEIGHTS_DIR}", str(weights_dir())).replace("$HUB_WEIGHTS_DIR", str(weights_dir()))
    p = Path(os.path.expanduser(os.path.expandvars(raw)))
    return p if p.is_absolute() else _REPO_ROOT / p


def _local_file(card: ModelCard) -> tuple[Path, str] | None:
    """The override (`HUB_MODEL_PATH_<ID>`) or the first existing LocalSource, with a ledger key."""
    override = os.environ.get(card.env_var)
    if override:
        p = _expand(override)
        if not p.is_file():
            raise LocalFileMissing(f"{card.env_var} points model '{card.id}' at {p}, which is not a file: "
                                   f"fix the path or unset the variable.")
        return p, f"local:{p}"
    for src in card.local_sources:
        p = _expand(src.path)
        if p.is_file():
            return p, f"local:{p}"
    return None


def _hub_key(src: HubSource) -> str:
    return f"hub:{src.repo_type}:{src.repo_id}/{src.filename}@{src.revision or 'main'}"


def _hub_cached(src: HubSource, cache: Path) -> Path | None:
    from huggingface_hub import try_to_load_from_cache
    found = try_to_load_from_cache(src.repo_id, src.filename, cache_dir=str(cache),
                                   revision=src.revision, repo_type=src.repo_type)
    return Path(found) if isinstance(found, str) else None


def _find(card: ModelCard, cache: Path) -> tuple[Path, str, bool] | None:
    """(path, ledger key, is a Hub cache blob) of the first file available without the network."""
    local = _local_file(card)
    if local is not None:
        return local[0], local[1], False
    for src in card.hub_sources:
        p = _hub_cached(src, cache)
        if p is not None:
            return p, _hub_key(src), True
    return None


def cached_path(card: ModelCard, *, cache_dir: Path | str | None = None) -> Path | None:
    """Path of the model's file if it is on this machine (no network, no hashing), else None.

    Built-in models have no file and return None.
    """
    if card.builtin is not None:
        return None
    found = _find(card, _cache(cache_dir))
    return found[0] if found else None


def is_cached(card: ModelCard, *, cache_dir: Path | str | None = None) -> bool:
    """True when the model can be loaded without the network (built-in models always can)."""
    if card.builtin is not None:
        return True
    try:
        return cached_path(card, cache_dir=cache_dir) is not None
    except LocalFileMissing:
        return False


# ---- fetch ----------------------------------------------------------------------------------
def fetch(card: ModelCard, *, progress: Progress | None = None, cache_dir: Path | str | None = None,
          endpoint: str | None = None, offline: bool | None = None, token: str | bool | None = None) -> Path:
    """Return a verified local path to the model's weights file, downloading it if needed.

    Order: `HUB_MODEL_PATH_<ID>` / LocalSource -> Hub cache (no request) -> `hf_hub_download` from
    each HubSource in turn -> verify. `offline=None` decides with `hub_online()`.

    Raises:
        OfflineNotCached, LocalFileMissing, RepoUnavailable, DownloadFailed, DiskFull,
        NotAModelFile, ChecksumMismatch (all `HubError`); ValueError for built-in models.
    """
    if card.builtin is not None:
        raise ValueError(f"model '{card.id}' is built in code and has no weights file to fetch")
    report = progress or _no_progress
    cache = _cache(cache_dir)
    url = (endpoint or default_endpoint()).rstrip("/")
    report(0.0, f"Looking for {card.id}")
    found = _find(card, cache)
    if found is not None:
        try:
            path = _verified(card, *found, cache, report)
        except (NotAModelFile, ChecksumMismatch) as e:
            if found[0].exists():  # a local file, or a changed file kept for review: the user decides
                raise
            log.warning("model %s: the cached file was bad and is gone (%s); downloading again", card.id, e)
        else:
            report(1.0, f"{card.id} is ready")
            return path
    if not card.hub_sources:
        raise LocalFileMissing(_missing_local_message(card))
    if offline is None:
        offline = not hub_online(endpoint=url)
    if offline:
        raise OfflineNotCached(_offline_message(card, url))
    _check_space(card, cache)
    errors: list[HubError] = []
    for src in card.hub_sources:
        try:
            path = _download(card, src, cache, url, token, report)
            path = _verified(card, path, _hub_key(src), True, cache, report)
        except (RepoUnavailable, DownloadFailed, NotAModelFile, ChecksumMismatch) as e:
            log.warning("model %s: source %s failed: %s", card.id, src, e)
            errors.append(e)
            continue
        report(1.0, f"{card.id} downloaded and checked")
        return path
    if len(errors) == 1:
        raise errors[0]
    first = errors[0]
    message = str(first).rstrip(".") + f" (and its {len(errors) - 1} fallback source(s) failed too)."
    if isinstance(first, ChecksumMismatch):
        raise ChecksumMismatch(message, expected=first.expected, actual=first.actual) from first
    raise type(first)(message) from first


def _no_progress(fraction: float, desc: str) -> None:
    del fraction, desc


def _offline_message(card: ModelCard, endpoint: str) -> str:
    src = card.hub_sources[0]
    return (f"Model '{card.id}' ({src.filename} from the Hub repo {src.repo_id}) is not in the local cache "
            f"and the Hub is unreachable or HF_HUB_OFFLINE=1 is set: run `python -m shared.registry download "
            f"{card.id}` once online, or get the file from {src.url(endpoint)} and set "
            f"{card.env_var}=/path/to/{card.filename}.")


def _missing_local_message(card: ModelCard) -> str:
    where = ", ".join(str(_expand(s.path)) for s in card.local_sources)
    origin = f" from {card.manual_url}" if card.manual_url else ""
    return (f"Model '{card.id}' is not on the Hub and no local file was found ({where}): download "
            f"{card.filename}{origin} and put it there, or set {card.env_var}=/path/to/{card.filename}.")


def _check_space(card: ModelCard, cache: Path) -> None:
    if card.size is None:
        return
    probe = cache
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if free < card.size:
        raise DiskFull(f"Not enough disk space for model '{card.id}': it needs {card.size / 1e6:.0f} MB but "
                       f"{cache} has {free / 1e6:.0f} MB free; free some space or set HUB_CACHE_DIR to a "
                       f"larger disk.")


class _ByteProgress:
    """Stands in for huggingface_hub's tqdm bar and forwards byte progress to a callback."""

    def __init__(self, report: Progress, label: str, *, total: int | None = None, initial: int = 0,
                 desc: str | None = None, unit: str = "B", unit_scale: bool = True) -> None:
        del desc, unit, unit_scale
        self._report, self._label = report, label
        self.total, self.n, self._last = total, initial, -1.0

    def __enter__(self) -> "_ByteProgress":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def update(self, n: int = 1) -> None:
        self.n += n
        if self.total:
            fraction = min(max(self.n / self.total, 0.0), 1.0)
            if fraction - self._last >= 0.01 or fraction >= 1.0 > self._last:
                self._last = fraction
                self._report(0.9 * fraction, f"{self._label}: {self.n / 1e6:.1f} / {self.total / 1e6:.1f} MB")

    def close(self) -> None:
        pass


def _download(card: ModelCard, src: HubSource, cache: Path, endpoint: str, token: str | bool | None,
              report: Progress) -> Path:
    import httpx2
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (
        GatedRepoError, HfHubHTTPError, LocalEntryNotFoundError, OfflineModeIsEnabled, RemoteEntryNotFoundError,
        RepositoryNotFoundError, RevisionNotFoundError,
    )

    where = f"{src.repo_id}/{src.filename}"
    report(0.0, f"Downloading {card.id} from {src.repo_id}")
    try:
        return Path(hf_hub_download(
            src.repo_id, src.filename, repo_type=src.repo_type, revision=src.revision,
            cache_dir=str(cache), endpoint=endpoint, token=token,
            tqdm_class=partial(_ByteProgress, report, f"Downloading {card.id}"),
        ))
    except GatedRepoError as e:
        raise RepoUnavailable(f"The Hub repo {src.repo_id} holding model '{card.id}' is gated: accept its terms on "
                              f"{src.repo_url(endpoint)} and log in (`hf auth login` or HF_TOKEN), "
                              f"or set {card.env_var} to a local copy.") from e
    except RepositoryNotFoundError as e:
        raise RepoUnavailable(f"The Hub repo {src.repo_id} for model '{card.id}' does not exist or is private "
                              f"(HTTP {_status(e)}); set {card.env_var} to a local copy of {card.filename}.") from e
    except RevisionNotFoundError as e:
        raise RepoUnavailable(f"The Hub repo {src.repo_id} has no revision {src.revision} (model '{card.id}'); "
                              f"the record's pinned commit needs updating.") from e
    except RemoteEntryNotFoundError as e:
        raise RepoUnavailable(f"The Hub repo {src.repo_id} has no file {src.filename} at revision "
                              f"{src.revision or 'main'} (model '{card.id}').") from e
    except (LocalEntryNotFoundError, OfflineModeIsEnabled) as e:
        raise OfflineNotCached(_offline_message(card, endpoint)) from e
    except HfHubHTTPError as e:
        raise DownloadFailed(f"Downloading model '{card.id}' from {where} failed with HTTP {_status(e)}; "
                             f"try again later.") from e
    except httpx2.HTTPError as e:
        raise DownloadFailed(f"Downloading model '{card.id}' from {where} broke off ({type(e).__name__}); "
                             f"nothing partial was kept, try again.") from e
    except OSError as e:
        if e.errno == errno.ENOSPC:
            raise DiskFull(f"The disk holding {cache} filled up while downloading model '{card.id}'; free some "
                           f"space or set HUB_CACHE_DIR to a larger disk.") from e
        raise DownloadFailed(f"Downloading model '{card.id}' from {where} failed: {e}".rstrip(".") + ".") from e


def _status(error: Exception) -> str:
    response = getattr(error, "response", None)
    return str(getattr(response, "status_code", "?"))


# ---- verification ---------------------------------------------------------------------------
def _verified(card: ModelCard, path: Path, key: str, hub_blob: bool, cache: Path, report: Progress) -> Path:
    """Check `path` against the record; a bad Hub blob is removed so a retry downloads it again."""
    report(0.9, f"Checking {card.id}")
    try:
        _check_content(card, path)
        _check_hash(card, path, key, cache)
    except NotAModelFile:
        if hub_blob:
            _remove_cached(path)
        raise
    except ChecksumMismatch:
        if hub_blob and card.sha256 is not None:  # a known-bad blob; a first-seen change is left for review
            _remove_cached(path)
        raise
    return path


def _check_content(card: ModelCard, path: Path) -> None:
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(_HEAD_BYTES)
    name = f"The file for model '{card.id}' ({path.name})"
    if size == 0:
        raise NotAModelFile(f"{name} is empty; delete it and download again.")
    if head.lstrip()[:1] == b"<":
        raise NotAModelFile(f"{name} is an HTML page, not model weights (the host sent an error or login page); "
                            f"it was discarded, try again or fetch the file by hand.")
    if card.size is not None and size != card.size:
        raise NotAModelFile(f"{name} has {size} bytes but should have {card.size}: it is truncated or a different "
                            f"file; it was discarded, download it again.")
    # a generator file the user points at may also be the hub's own safetensors (`shared.convert`)
    native_ok = card.format in _CONVERTIBLE and _magic_ok("safetensors", head, size)
    if not (_magic_ok(card.format, head, size) or native_ok):
        raise NotAModelFile(f"{name} does not look like a {card.format} file; it was discarded, check the source.")


_CONVERTIBLE = frozenset({"nvlabs-pkl", "rosinality-pt"})  # generator formats `load_generator` also reads as native


def _magic_ok(fmt: str, head: bytes, size: int) -> bool:
    if fmt == "latent-direction":  # .npy or a torch file
        return head.startswith(b"\x93NUMPY") or head.startswith(b"PK\x03\x04") or head.startswith(b"\x80")
    if fmt == "npy":
        return head.startswith(b"\x93NUMPY")
    if fmt == "numpy-pickle":
        return head.startswith(b"\x80")
    if fmt in ("rosinality-pt", "psp-pt", "torch-state-dict", "styleclip-mapper-pt"):
        return head.startswith(b"PK\x03\x04") or head.startswith(b"\x80")  # torch zip or legacy pickle
    if fmt == "nvlabs-pkl":
        return head.startswith(b"\x80")  # pickle protocol >= 2
    if fmt in ("safetensors", "open-clip-safetensors", "timm-safetensors"):
        if len(head) < 9:
            return False
        (header_len,) = struct.unpack("<Q", head[:8])
        return 8 + header_len <= size and head[8:9] == b"{"
    return True  # dlib-dat has no magic number


_hash_lock = threading.Lock()
_hashes: dict[tuple[str, int, int], str] = {}


def file_sha256(path: Path) -> str:
    """sha256 of a file (hex), remembered per (real path, size, mtime) within this process."""
    real = Path(path).resolve()
    st = real.stat()
    key = (str(real), st.st_size, st.st_mtime_ns)
    with _hash_lock:
        if key in _hashes:
            return _hashes[key]
    digest = hashlib.sha256()
    with open(real, "rb") as f:
        for block in iter(partial(f.read, 1 << 20), b""):
            digest.update(block)
    value = digest.hexdigest()
    with _hash_lock:
        _hashes[key] = value
    return value


def _check_hash(card: ModelCard, path: Path, key: str, cache: Path) -> None:
    actual = file_sha256(path)
    if card.sha256 is not None:
        if actual != card.sha256:
            raise ChecksumMismatch(f"The file for model '{card.id}' has sha256 {actual[:12]}… but the registry "
                                   f"expects {card.sha256[:12]}…; it was refused (and removed if downloaded), "
                                   f"download it again or check the source.",
                                   expected=card.sha256, actual=actual)
        return
    ledger = _Ledger(cache)
    first = ledger.first_seen(card.id, key, actual, path.stat().st_size)
    if first != actual:
        raise ChecksumMismatch(f"The file for model '{card.id}' changed since it was first downloaded (sha256 "
                               f"{first[:12]}… then, {actual[:12]}… now); if the change is expected run "
                               f"`python -m shared.registry verify {card.id} --accept`.",
                               expected=first, actual=actual)


def _remove_cached(path: Path) -> None:
    """Delete a Hub snapshot pointer and the blob it points to."""
    blob = path.resolve()
    for p in {path, blob}:
        try:
            p.unlink()
        except FileNotFoundError:
            pass
    log.warning("removed the refused file %s", blob)


@dataclass
class _Ledger:
    """First-seen sha256 per (model, source), a JSON file in the cache (trust on first use)."""
    cache: Path

    _lock = threading.Lock()

    @property
    def path(self) -> Path:
        return self.cache / _LEDGER_NAME

    def read(self) -> dict[str, dict]:
        try:
            return json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (json.JSONDecodeError, UnicodeDecodeError):
            log.warning("hash ledger %s is unreadable; starting a new one", self.path)
            return {}

    def first_seen(self, model_id: str, key: str, sha256: str, size: int) -> str:
        """The recorded hash for (model, source); records `sha256` when there is none yet."""
        with self._lock:
            entries = self.read()
            entry = entries.get(f"{model_id} {key}")
            if entry is not None:
                return entry["sha256"]
            self._write(entries, model_id, key, sha256, size)
            return sha256

    def accept(self, model_id: str, key: str, sha256: str, size: int) -> None:
        with self._lock:
            self._write(self.read(), model_id, key, sha256, size)

    def lookup(self, model_id: str, key: str) -> str | None:
        entry = self.read().get(f"{model_id} {key}")
        return entry["sha256"] if entry else None

    def _write(self, entries: dict, model_id: str, key: str, sha256: str, size: int) -> None:
        entries[f"{model_id} {key}"] = {"sha256": sha256, "size": size,
                                        "first_seen": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_text(json.dumps(entries, indent=1, sort_keys=True))
        os.replace(tmp, self.path)


def verification(card: ModelCard, *, cache_dir: Path | str | None = None) -> str:
    """'verified' | 'unverified (first seen <sha256>)' | 'mismatch' | 'not cached' | 'built-in'.

    Hashes the cached file (once per process); records the hash when it is the first sighting.
    """
    if card.builtin is not None:
        return "built-in"
    cache = _cache(cache_dir)
    try:
        found = _find(card, cache)
    except LocalFileMissing:
        return "not cached"
    if found is None:
        return "not cached"
    path, key, _ = found
    actual = file_sha256(path)
    if card.sha256 is not None:
        return "verified" if actual == card.sha256 else "mismatch"
    first = _Ledger(cache).first_seen(card.id, key, actual, path.stat().st_size)
    return f"unverified (first seen {first})" if first == actual else "mismatch"


def accept_current_hash(card: ModelCard, *, cache_dir: Path | str | None = None) -> str:
    """Record the cached file's current hash as the trusted one (after a reviewed change).

    Returns the hash; raises LocalFileMissing/OfflineNotCached-style HubError when nothing is cached.
    """
    cache = _cache(cache_dir)
    found = _find(card, cache)
    if found is None:
        raise HubError(f"Model '{card.id}' is not cached, so there is no hash to accept.")
    path, key, _ = found
    actual = file_sha256(path)
    _Ledger(cache).accept(card.id, key, actual, path.stat().st_size)
    return actual
