"""Serving many users at once (issue 19 item 1): identical concurrent requests all get whole responses.

The cause of the lost responses: Gradio 6.31 writes an in-memory result image at a path named by the
hash of its bytes with a plain truncate-then-write, so an identical request rewrites the file while an
earlier download is streaming it (`spaces.handlers.write_results_atomically` has the details). The
first two tests show the race on Gradio's function itself and its absence on ours; the last drives it
end to end through `gradio_client` the way the report did (8 clients, the same seeds, 5 times each).
"""
from __future__ import annotations

import os
import re
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from gradio import processing_utils
from gradio_client import handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from shared import registry
from shared.generation import generate_images
from shared.latent_store import LatentStore
from spaces.handlers import StopFlags, _gradio_save_pil_to_cache, _save_pil_to_cache_atomically
from tests.api.calls import assert_still_serving, call, new_client

DEMO = registry.DEFAULT_GENERATOR_ID


def _torn_reads(save, seconds: float = 1.0) -> tuple[int, int]:
    """(reads that saw a short or changing file, all reads) while another thread saves the same image
    again and again, as identical requests do."""
    img = Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    folder = tempfile.mkdtemp(prefix="hub-race-")
    path = Path(save(img, folder, format="png"))
    full = path.stat().st_size
    stop, counts = threading.Event(), [0, 0]

    def writer() -> None:
        while not stop.is_set():
            save(img, folder, format="png")

    def reader() -> None:  # what a FileResponse does: stat for Content-Length, then read
        while not stop.is_set():
            declared = os.stat(path).st_size
            with open(path, "rb") as f:
                got = len(f.read())
            counts[1] += 1
            counts[0] += declared != full or got != full

    threads = [threading.Thread(target=writer), threading.Thread(target=reader)]
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    return counts[0], counts[1]


def test_gradio_rewrites_an_identical_result_in_place_while_it_is_read():
    """The old failure, reproduced on Gradio's own writer: readers see truncated files."""
    torn, reads = _torn_reads(_gradio_save_pil_to_cache)
    assert reads > 100 and torn > 0, (torn, reads)


def test_atomic_writer_never_shows_a_partial_file_and_keeps_gradios_path_and_bytes():
    torn, reads = _torn_reads(_save_pil_to_cache_atomically)
    assert reads > 100 and torn == 0, (torn, reads)
    img = Image.fromarray(np.arange(48, dtype=np.uint8).reshape(4, 4, 3))
    ours = _save_pil_to_cache_atomically(img, tempfile.mkdtemp(), format="png")
    theirs = _gradio_save_pil_to_cache(img, tempfile.mkdtemp(), format="png")
    assert Path(ours).read_bytes() == Path(theirs).read_bytes()
    assert Path(ours).parent.name == Path(theirs).parent.name and Path(ours).name == "image.png"


def test_the_app_serves_with_the_atomic_writer(app):
    assert processing_utils.save_pil_to_cache is _save_pil_to_cache_atomically


def test_concurrent_identical_generate_requests_all_arrive_whole(app):
    """8 clients x 5 calls of /generate with seeds 0-7: before the fix 1-2 of 40 were lost."""
    clients = [new_client(app) for _ in range(8)]

    def session(client) -> list[bytes]:
        out = []
        for _ in range(5):
            gallery, _, _ = call(client, DEMO, "0-7", 0.7, 0, None, 0.0, 0.0, 0.0, "const", api_name="/generate")
            out.append(b"".join(Path(item["image"]).read_bytes() for item in gallery))
        return out

    with ThreadPoolExecutor(len(clients)) as pool:
        results = [r for rs in pool.map(session, clients) for r in rs]  # re-raises any lost response
    assert len(results) == 40
    assert len(set(results)) == 1, "identical requests must give identical bytes"
    assert_still_serving(clients[0])


def _session_store(app, client) -> LatentStore:
    """The LatentStore in `client`'s session on the server (the one `gr.State` holding one)."""
    demo = app[2]
    ids = [i for i, block in demo.blocks.items()
           if type(block).__name__ == "State" and isinstance(block.value, LatentStore)]
    assert len(ids) == 1
    return demo.state_holder[client.session_hash][ids[0]]


def test_sessions_keep_their_own_latents_under_load(app):
    """8 sessions at once (the test app queues 8), each generating its own seeds and sending them on
    while the others do the same: every session's store holds exactly its own latents (values included), none of another's,
    and a latent name from another session is unknown to this one."""
    sessions = [new_client(app) for _ in range(8)]
    G = app[1].models.generator(DEMO)

    def work(i: int) -> None:
        client, seed = sessions[i], 500 + i
        for round_ in range(3):
            call(client, DEMO, f"{seed},{seed + 100}", 0.7, 0, None, 0.0, 0.0, 0.0, "const", api_name="/generate")
            call(client, seed if round_ % 2 == 0 else seed + 100, api_name="/send_to_mixing")

    with ThreadPoolExecutor(len(sessions)) as pool:
        list(pool.map(work, range(len(sessions))))
    for i, client in enumerate(sessions):
        store = _session_store(app, client)
        names = store.list()
        own = {f"seed {500 + i} ", f"seed {600 + i} "}
        assert names and all(any(n.startswith(o) for o in own) for n in names), (i, names)
        for name in names:
            seed = int(name.split()[1])
            expected = generate_images(G, [seed], truncation_psi=0.7).ws.numpy()
            np.testing.assert_array_equal(store.get(name).ws, expected)
    other = _session_store(app, sessions[1]).list()[0]
    with pytest.raises(AppError, match=f"No latent called {re.escape(repr(other))} in this session"):
        call(sessions[0], DEMO, "1", [other], "2", [], "coarse", "", 1.0, "const", api_name="/mix")


# ---- cancelled jobs ------------------------------------------------------------------------------
def _threads_in(function: str) -> int:
    """How many threads have `function` on their stack right now."""
    count = 0
    for frame in sys._current_frames().values():
        while frame is not None:
            if frame.f_code.co_name == function:
                count += 1
                break
            frame = frame.f_back
    return count


def _wait_for(predicate, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def test_stop_flags_stop_the_sessions_previous_run():
    flags = StopFlags()
    a, b = SimpleNamespace(session_hash="a"), SimpleNamespace(session_hash="b")
    first, other = flags.start(a), flags.start(b)
    second = flags.start(a)
    assert first.is_set() and not second.is_set() and not other.is_set()
    flags.finish(a, first)            # the old run ending leaves the new run's flag in place
    flags.stop(a)
    assert second.is_set()


def test_an_inversion_cancelled_through_the_api_does_not_run_on(app, portrait):
    """`job.cancel()` drops the result but cannot stop the worker thread; the session's next run
    raises the old run's stop flag, so the orphaned optimisation ends at its next step instead of
    running its 1,000 steps beside the new job."""
    client = new_client(app)
    job = client.submit(handle_file(str(portrait)), "center", DEMO, ["w+"], 1000, 0.1, 2, api_name="/compare")
    assert not job.done()
    assert _wait_for(lambda: _threads_in("optimize_latent") == 1, 60), "the W+ inversion never started"
    job.cancel()
    gallery, info = call(client, handle_file(str(portrait)), "center", DEMO, "w+", 5, 0.1, 2, api_name="/invert")
    assert "PSNR" in info or gallery
    assert _wait_for(lambda: _threads_in("optimize_latent") == 0, 20), "the cancelled inversion kept running"
    assert_still_serving(client)
