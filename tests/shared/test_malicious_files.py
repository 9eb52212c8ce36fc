"""Every loader of every registry format refuses files that would run code (issue 19 item 5).

The per-format suites test their own malicious pickles (`tests/shared/loaders/test_nvlabs_pickle.py`,
`test_tf_pickle.py`, `test_stylenerf_pickle.py`, `tests/shared/archs/test_eg3d.py`, the StyleCLIP
tests); this one is generated from the registry, timm-style: for each (arch, format) pair a record
uses, the loader the model cache would call gets the same code-running payload in each carrier a
file of that kind could be (a raw pickle, a `torch.save` zip, a legacy `torch.save`, a NumPy object
array), under the record's own file name. Each must be refused with an exception, and the payload's
marker file must not exist afterwards.
"""
from __future__ import annotations

import io
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from shared import registry
from shared.editing.directions import read_direction_file
from shared.model_cache import GENERATOR_ARCHS, default_loader, load_record
from shared.styleclip import global_directions as gd


class _Payload:
    """Unpickling this runs `os.system('touch <marker>')`."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _carriers(marker: Path) -> dict[str, bytes]:
    evil = _Payload(marker)
    out = {"pickle": pickle.dumps({"G_ema": evil, "state_dict": evil, "ws": evil}, protocol=4)}
    for name, zip_format in (("torch-zip", True), ("torch-legacy", False)):
        buf = io.BytesIO()
        torch.save({"state_dict": {"w": evil}, "g_ema": evil, "opts": evil}, buf,
                   _use_new_zipfile_serialization=zip_format)
        out[name] = buf.getvalue()
    buf = io.BytesIO()
    np.save(buf, np.array([evil], dtype=object), allow_pickle=True)
    out["npy-object-array"] = buf.getvalue()
    return out


def _kinds() -> list:
    """One record per (arch, format) the registry uses and the model cache or a named reader loads."""
    seen, out = set(), []
    for card in registry.cards():
        key = (card.arch, card.format)
        if card.builtin is not None or key in seen:
            continue
        seen.add(key)
        if card.format == "dlib-dat":
            out.append(pytest.param(card, marks=pytest.mark.skip(
                reason="dlib's shape predictor is dlib's own binary serialisation, not a pickle: nothing to unpickle")))
        else:
            out.append(pytest.param(card, id=f"{card.arch}:{card.format}"))
    return out


class _FakeStyleGAN2:
    """Enough of a generator for the StyleCLIP readers to get past their argument checks."""
    style_layers = ()


def _load(card, path: Path):
    if card.arch in GENERATOR_ARCHS:
        return default_loader(card, path)
    if card.arch == "styleclip-relevance":
        return gd.load_official_relevance(path, _FakeStyleGAN2())
    if card.arch == "stylespace-stats":
        return gd.load_official_stats(path, _FakeStyleGAN2())
    return load_record(card, path)


@pytest.mark.parametrize("card", _kinds())
def test_every_loader_refuses_code_in_every_carrier(card, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    marker = tmp_path / "pwned"
    for carrier, data in _carriers(marker).items():
        path = tmp_path / carrier / Path(card.filename or "weights.bin").name
        path.parent.mkdir()
        path.write_bytes(data)
        monkeypatch.setenv(card.env_var, str(path))  # loaders that find their file from the card
        with pytest.raises(Exception) as refused:  # noqa: PT011 - any refusal; the point is what did not run
            _load(card, path)
        assert not marker.exists(), f"{card.id}: the {carrier} payload ran"
        assert not isinstance(refused.value, (SystemExit, KeyboardInterrupt))


@pytest.mark.parametrize("carrier", ["pickle", "torch-zip", "torch-legacy", "npy-object-array"])
def test_uploaded_direction_files_refuse_code(carrier, tmp_path: Path):
    """Direction files are the one model-like file users upload on the page (besides latents and mappers)."""
    marker = tmp_path / "pwned"
    path = tmp_path / ("direction.npy" if carrier.startswith("npy") else "direction.pt")
    path.write_bytes(_carriers(marker)[carrier])
    with pytest.raises(Exception):  # noqa: PT011
        read_direction_file(path)
    assert not marker.exists()
