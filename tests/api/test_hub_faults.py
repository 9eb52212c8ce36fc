"""Hub faults seen through the app (issue 19 item 4): a model download from the local Hub server
(`tests/hubserver.py`) that breaks in each way the Hub can break gets one sentence through the API,
leaves nothing in the cache, and the app keeps serving; once the fault is gone the same download
works and the file is whole (the weights cache is never left corrupt).

The library-level versions of these faults (and a checksum mismatch, a first-seen ledger change, a
resumed download) are in `tests/shared/test_hub.py`.
"""
from __future__ import annotations

import errno
import hashlib
import re
from pathlib import Path

import pytest
from gradio_client.exceptions import AppError

from shared import hub, registry
from tests.api.calls import assert_still_serving, call
from tests.hubserver import Fault, HubServer

CARD = registry.get("stylegan2-ffhq-1024-rosinality")
SRC = CARD.hub_sources[0]


def _no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


FAULTS = {
    "connection dropped mid-download, every time": (Fault("drop", times=50), r"broke off|failed"),
    "HTTP 500 from the Hub": (Fault("status", times=50, status=500), r"failed with HTTP 500|broke off"),
    "file missing (404)": ("missing", r"has no file|does not exist"),
    "gated repo": ("gated", r"is gated: accept its terms"),
    "slow Hub (timeout)": (Fault("slow", times=50, delay=3.0), r"broke off|timed? ?out|failed"),
    "disk full": ("disk-full", r"filled up while downloading"),
}


@pytest.mark.parametrize("fault", list(FAULTS), ids=list(FAULTS))
def test_a_broken_download_is_a_sentence_and_leaves_a_clean_cache(client, hub_env: HubServer, rosinality_ckpt: Path,
                                                                    fault: str):
    data = rosinality_ckpt.read_bytes()
    how, expected = FAULTS[fault]
    if how == "gated":
        hub_env.add_repo(SRC.repo_id, gated=True)
    elif how != "missing":
        hub_env.commit(SRC.repo_id, {SRC.filename: data})
    if isinstance(how, Fault):
        hub_env.inject(SRC.repo_id, SRC.filename, how)
    with pytest.MonkeyPatch.context() as mp:  # this fault's own patches, undone before the retry
        if how == "disk-full":
            mp.setattr("huggingface_hub.hf_hub_download", _no_space)
        if fault.startswith("slow"):
            from huggingface_hub import constants
            mp.setattr(constants, "HF_HUB_DOWNLOAD_TIMEOUT", 1)
            mp.setattr(constants, "HF_HUB_ETAG_TIMEOUT", 1)
        with pytest.raises(AppError) as info:
            call(client, CARD.id, api_name="/download_model")
    message = str(info.value)
    assert re.search(expected, message), message
    assert CARD.id in message and "Traceback" not in message
    assert hub.cached_path(CARD) is None, "a failed download must leave nothing behind"
    assert_still_serving(client)

    # the fault is gone: the same download works and the file is whole
    hub_env.clear_faults()
    hub_env.gated.discard(SRC.repo_id)
    hub_env.commit(SRC.repo_id, {SRC.filename: data})
    message, _ = call(client, CARD.id, api_name="/download_model")
    assert f"`{CARD.id}` is cached at" in message, message
    assert hashlib.sha256(hub.cached_path(CARD).read_bytes()).hexdigest() == hashlib.sha256(data).hexdigest()
