"""Serving load: many `gradio_client` sessions against the app on loopback (issue 19 item 2).

    python -m benchmarks.serving [--sessions 32] [--requests 20] [--sequential 1000] [--cancels 20]
                                 [--queue-size 64] [--json benchmarks/results/serving.json]

The app runs as its own process (`python app.py`, demo world, offline, private Hub cache), exactly
as it is deployed, so that its resident memory is measured alone (from /proc/<pid>/status). Then:

1. `--sessions` concurrent sessions, each one `gradio_client.Client` (its own session hash, so its
   own `gr.State`), each making `--requests` requests drawn from a fixed mix: generate, mixing grid,
   a direction edit, a global-direction text edit, an encoder (e4e) inversion, and a W+ inversion
   stopped midway (the job is cancelled after a fraction of a second, as the Stop button does);
2. `--sequential` requests in a row from one session (the same mix, without the cancelled
   inversion), sampling the server's RSS every 50 requests;
3. `--cancels` W+ inversions cancelled one after the other, with the RSS before and after.

Why a thread pool of `gradio_client` clients rather than Locust: the endpoints are called through the
same client users script against (queue join, SSE stream, file download), which Locust's HTTP user
would have to re-implement; each client blocks on its stream, so threads are enough to hold 32
sessions open on a 2-core machine (the server, not the load generator, is the bottleneck: its queue
runs `default_concurrency_limit` jobs at a time); and it adds no dependency. Latencies are measured
at the client and include the wait in Gradio's queue. A refusal because the queue is full is counted
apart from failures (the issue's target: no failure other than a clean "queue full").

Prints a table (p50/p95 per action, failures, RSS growth) and writes JSON. Not a test.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from gradio_client import Client, handle_file

ROOT = Path(__file__).resolve().parents[1]
DEMO = "demo-portraits-stylegan2-64"
DEMO_CLIP = "demo-portraits-clip"
# action -> weight in the mix (a session draws its requests with these odds)
MIX = {"generate": 4, "mixing_grid": 2, "edit_direction": 2, "text_global": 2, "invert_e4e": 1, "invert_wplus_stop": 1}


# ---- the app process --------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(queue_size: int, workdir: Path) -> tuple[subprocess.Popen, str]:
    """`python app.py` on a free loopback port, offline, with private cache folders; waits until it serves."""
    port = _free_port()
    env = dict(os.environ, HF_HUB_OFFLINE="1", GRADIO_ANALYTICS_ENABLED="False", HUB_QUEUE_SIZE=str(queue_size),
               HUB_CACHE_DIR=str(workdir / "hub-cache"), HUB_WEIGHTS_DIR=str(workdir / "weights"),
               HF_HOME=str(workdir / "hf-home"), GRADIO_TEMP_DIR=str(workdir / "gradio"))
    log = open(workdir / "app.log", "w")  # noqa: SIM115 - kept open for the process's lifetime
    proc = subprocess.Popen([sys.executable, "app.py", "--host", "127.0.0.1", "--port", str(port)], cwd=ROOT,
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the app exited with {proc.returncode}; see {workdir / 'app.log'}")
        try:
            if httpx.get(url + "config", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    proc.kill()
    raise RuntimeError(f"the app did not start within 300 s; see {workdir / 'app.log'}")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


# ---- the actions ------------------------------------------------------------------------------------------
class Actions:
    """One session's requests. Each returns normally or raises what `gradio_client` raised."""

    def __init__(self, client: Client, portrait: str, rng: random.Random) -> None:
        self.client, self.portrait, self.rng = client, portrait, rng

    def _call(self, *args, api_name: str, timeout: float = 600):
        return self.client.submit(*args, api_name=api_name).result(timeout=timeout)

    def generate(self):
        seeds = self.rng.choice(["0-3", "4-7", "random:4", "100-101"])
        return self._call(DEMO, seeds, 0.7, 0, None, 0.0, 0.0, 0.0, "const", api_name="/generate")

    def mixing_grid(self):
        return self._call(DEMO, "1,2,3", [], "4,5,6", [], "coarse", "", 1.0, "const", api_name="/mixing_grid")

    def edit_direction(self):
        attribute = self.rng.choice(["smile", "yaw", "glasses=round", "hair_color=blonde"])
        return self._call(DEMO, str(self.rng.randint(0, 99)), None, "interfacegan", attribute, None, 3, "all", "",
                          api_name="/edit_direction")

    def text_global(self):
        target = self.rng.choice(["a person with red hair", "a smiling person", "a person wearing glasses"])
        return self._call(DEMO, DEMO_CLIP, str(self.rng.randint(0, 99)), None, "a person", target, 4.0, 0.1,
                          api_name="/styleclip_global")

    def invert_e4e(self):
        return self._call(handle_file(self.portrait), "center", DEMO, "e4e", 20, 0.1, 2, api_name="/invert")

    def invert_wplus_stop(self):
        """A long W+ inversion, stopped after a moment: the job is cancelled as the page's Stop does."""
        job = self.client.submit(handle_file(self.portrait), "center", DEMO, ["w+"], 100, 0.1, 2,
                                 api_name="/compare")
        time.sleep(self.rng.uniform(0.3, 1.0))
        job.cancel()
        deadline = time.monotonic() + 120
        while not job.done() and time.monotonic() < deadline:
            time.sleep(0.05)
        if not job.done():
            raise TimeoutError("the cancelled inversion did not end within 120 s")
        return "cancelled"


def _outcome(error: BaseException | None) -> str:
    if error is None:
        return "ok"
    text = str(error)
    if "queue is full" in text.lower() or "queue full" in text.lower():
        return "queue full"
    return f"{type(error).__name__}: {text.splitlines()[0][:120] if text else ''}"


def run_session(url: str, portrait: str, seed: int, count: int, mix: dict[str, int], record) -> None:
    rng = random.Random(seed)
    client = Client(url, verbose=False)
    actions = Actions(client, portrait, rng)
    names, weights = zip(*mix.items())
    for _ in range(count):
        name = rng.choices(names, weights)[0]
        t0 = time.perf_counter()
        error = None
        try:
            getattr(actions, name)()
        except Exception as e:  # noqa: BLE001 - every failure is counted, by kind
            error = e
        record(name, time.perf_counter() - t0, _outcome(error))


class Recorder:
    def __init__(self) -> None:
        self.rows: list[tuple[str, float, str]] = []
        self._lock = threading.Lock()

    def __call__(self, action: str, seconds: float, outcome: str) -> None:
        with self._lock:
            self.rows.append((action, seconds, outcome))

    def table(self) -> list[dict]:
        by_action = defaultdict(list)
        for action, seconds, outcome in self.rows:
            by_action[action].append((seconds, outcome))
        out = []
        for action in MIX:
            rows = by_action.get(action, [])
            ok = sorted(s for s, o in rows if o == "ok")
            failures = defaultdict(int)
            for _, o in rows:
                if o != "ok":
                    failures[o] += 1
            out.append({"action": action, "n": len(rows), "ok": len(ok),
                        "p50_s": statistics.median(ok) if ok else None,
                        "p95_s": ok[min(len(ok) - 1, round(0.95 * (len(ok) - 1)))] if ok else None,
                        "max_s": ok[-1] if ok else None, "failures": dict(failures)})
        return out


def _print_table(title: str, rows: list[dict]) -> None:
    print(f"\n{title}\n| action | requests | ok | p50 (s) | p95 (s) | max (s) | failures |\n|---|---|---|---|---|---|---|")
    fmt = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
    for r in rows:
        fails = ", ".join(f"{k} x{v}" for k, v in r["failures"].items()) or "0"
        print(f"| {r['action']} | {r['n']} | {r['ok']} | {fmt(r['p50_s'])} | {fmt(r['p95_s'])} | {fmt(r['max_s'])} "
              f"| {fails} |")


# ---- main -------------------------------------------------------------------------------------------------
def _portrait(folder: Path) -> str:
    """A demo-world portrait as a PNG file, rendered in a child process (this one never imports torch)."""
    path = folder / "portrait.png"
    code = ("import sys; from PIL import Image; from shared.portraits import render_seeds; "
            "from shared.images import to_uint8_hwc; "
            "Image.fromarray(to_uint8_hwc(render_seeds([7], 256).img)[0]).save(sys.argv[1])")
    subprocess.run([sys.executable, "-c", code, str(path)], cwd=ROOT, check=True)
    return str(path)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sessions", type=int, default=32)
    p.add_argument("--requests", type=int, default=20, help="requests per session in the concurrent phase")
    p.add_argument("--sequential", type=int, default=1000, help="requests in a row from one session")
    p.add_argument("--cancels", type=int, default=20, help="W+ inversions cancelled in a row (memory release)")
    p.add_argument("--cancel-rounds", type=int, default=2, help="rounds of --cancels, each followed by --idle")
    p.add_argument("--idle", type=float, default=20.0, help="seconds of quiet after each round of cancels")
    p.add_argument("--queue-size", type=int, default=64, help="HUB_QUEUE_SIZE of the app under test")
    p.add_argument("--json", type=Path, default=ROOT / "benchmarks/results/serving.json")
    args = p.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="hub-serving-"))
    portrait = _portrait(workdir)
    proc, url = start_app(args.queue_size, workdir)
    result: dict = {"machine": platform.platform(), "cpus": os.cpu_count(), "args": {k: str(v) for k, v in
                                                                                      vars(args).items()}}
    try:
        warm = Actions(Client(url, verbose=False), portrait, random.Random(0))
        result["warmup_s"] = {}
        for action in MIX:  # first loads (models, CLIP, relevance matrix) are not in the tables below
            t0 = time.perf_counter()
            getattr(warm, action)()
            result["warmup_s"][action] = time.perf_counter() - t0
        warm._call(handle_file(portrait), "center", DEMO, "w+", 20, 0.1, 2, api_name="/invert")  # W+ loads too
        result["rss_after_warmup_mb"] = rss_mb(proc.pid)

        concurrent = Recorder()
        t0 = time.perf_counter()
        with ThreadPoolExecutor(max(1, args.sessions)) as pool:
            for f in [pool.submit(run_session, url, portrait, 1000 + i, args.requests, MIX, concurrent)
                      for i in range(args.sessions)]:
                f.result()
        result["concurrent"] = {"seconds": time.perf_counter() - t0, "table": concurrent.table(),
                                "rss_after_mb": rss_mb(proc.pid)}
        _print_table(f"{args.sessions} sessions x {args.requests} requests at once "
                     f"({result['concurrent']['seconds']:.0f} s)", result["concurrent"]["table"])

        sequential = Recorder()
        seq_mix = {k: v for k, v in MIX.items() if k != "invert_wplus_stop"}
        rss = [(0, rss_mb(proc.pid))]
        client = Client(url, verbose=False)
        actions = Actions(client, portrait, random.Random(7))
        names, weights = zip(*seq_mix.items())
        t0 = time.perf_counter()
        for i in range(1, args.sequential + 1):
            name = actions.rng.choices(names, weights)[0]
            t1 = time.perf_counter()
            error = None
            try:
                getattr(actions, name)()
            except Exception as e:  # noqa: BLE001
                error = e
            sequential(name, time.perf_counter() - t1, _outcome(error))
            if i % 50 == 0 or i == args.sequential:
                rss.append((i, rss_mb(proc.pid)))
        result["sequential"] = {"seconds": time.perf_counter() - t0, "table": sequential.table(), "rss_mb": rss,
                                "rss_growth_mb": rss[-1][1] - rss[0][1],
                                "rss_growth_after_first_100_mb": rss[-1][1] - (rss[2][1] if len(rss) > 2 else rss[0][1])}
        _print_table(f"{args.sequential} requests in a row ({result['sequential']['seconds']:.0f} s)",
                     result["sequential"]["table"])

        # Rounds of cancelled W+ inversions, each followed by a quiet wait: memory that a cancelled job
        # kept would grow round after round; the allocator's high-water mark stays flat.
        cancel_rows, rounds = Recorder(), [rss_mb(proc.pid)]
        for _ in range(args.cancel_rounds):
            for _ in range(args.cancels):
                t1 = time.perf_counter()
                error = None
                try:
                    actions.invert_wplus_stop()
                except Exception as e:  # noqa: BLE001
                    error = e
                cancel_rows("invert_wplus_stop", time.perf_counter() - t1, _outcome(error))
            time.sleep(args.idle)  # a cancelled optimisation finishes its current method in the background
            rounds.append(rss_mb(proc.pid))
        result["cancels"] = {"n_per_round": args.cancels, "rss_mb_before_and_after_each_round": rounds,
                             "table": [r for r in cancel_rows.table() if r["n"]]}
        alive = Actions(client, portrait, random.Random(1)).generate()
        result["serving_after"] = bool(alive)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()

    seq = result["sequential"]
    print(f"\nserver RSS: {result['rss_after_warmup_mb']:.0f} MB after warm-up, "
          f"{result['concurrent']['rss_after_mb']:.0f} MB after the concurrent phase; over the "
          f"{args.sequential} requests in a row {seq['rss_mb'][0][1]:.0f} -> {seq['rss_mb'][-1][1]:.0f} MB "
          f"(growth {seq['rss_growth_mb']:+.0f} MB, {seq['rss_growth_after_first_100_mb']:+.0f} MB after the first 100); "
          f"{args.cancel_rounds} x {args.cancels} cancelled W+ inversions: "
          f"{' -> '.join(f'{v:.0f}' for v in result['cancels']['rss_mb_before_and_after_each_round'])} MB; "
          f"serving afterwards: {result['serving_after']}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.json}")
    return result


if __name__ == "__main__":
    main()
