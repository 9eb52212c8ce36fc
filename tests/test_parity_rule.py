"""The parity rule (tests/parity.py, the `parity_dir` fixture in tests/conftest.py): without
../shared/parity a parity test skips with a sentence saying where the vectors come from; under CI
(CI=true) the same absence fails; and tests reach the vectors only through that fixture."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests import parity

TESTS = Path(__file__).resolve().parent
WHERE = "../shared/parity folder beside the checkout"


@pytest.mark.parametrize("ci", [None, "false", ""])
def test_absent_vectors_skip_with_a_sentence_outside_ci(tmp_path, monkeypatch, ci):
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    with pytest.raises(pytest.skip.Exception) as e:
        parity.require(tmp_path / "parity")
    message = str(e.value)
    assert str(tmp_path / "parity") in message and WHERE in message and "official implementations" in message


@pytest.mark.parametrize("ci", ["true", "TRUE"])
def test_absent_vectors_fail_under_ci(tmp_path, monkeypatch, ci):
    monkeypatch.setenv("CI", ci)
    with pytest.raises(pytest.fail.Exception) as e:
        parity.require(tmp_path / "parity" / "nvlabs_sg2_g64.safetensors")
    assert WHERE in str(e.value) and "CI=true" in str(e.value)


def test_present_vectors_are_returned(tmp_path, monkeypatch):
    monkeypatch.setenv("CI", "true")
    assert parity.require(tmp_path) == tmp_path


def _run_parity_test(missing: Path, ci: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["HUB_PARITY_DIR"] = str(missing)
    if ci is not None:
        env["CI"] = ci
    test = "tests/shared/archs/test_styleflow.py::test_forward_reverse_round_trip_and_edit"
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rsf", "-p", "no:cacheprovider", test],
                          cwd=TESTS.parent, env=env, capture_output=True, text=True, timeout=300)


def test_a_real_parity_test_skips_then_fails_under_ci(tmp_path):
    """Through the fixture, end to end: a parity test with HUB_PARITY_DIR pointing nowhere."""
    local = _run_parity_test(tmp_path / "nowhere", None)
    assert local.returncode == 0 and "1 skipped" in local.stdout, local.stdout[-2000:]
    assert WHERE in local.stdout
    ci = _run_parity_test(tmp_path / "nowhere", "true")
    assert ci.returncode == 1 and "1 error" in ci.stdout, ci.stdout[-2000:]   # the fixture fails: an error
    assert WHERE in ci.stdout


def test_tests_reach_the_vectors_only_through_the_fixture():
    """No test module builds the folder's path itself or skips on its own terms."""
    own = {TESTS / "parity.py", TESTS / "conftest.py", Path(__file__).resolve()}
    offenders = []
    for path in sorted(TESTS.rglob("*.py")):
        if path in own:
            continue
        text = path.read_text()
        if re.search(r"\bPARITY_DIR\b|shared[\"'/ ]+parity\b|HUB_PARITY_DIR", text.split('"""', 2)[-1]):
            offenders.append(path.relative_to(TESTS).as_posix())
    assert offenders == []
