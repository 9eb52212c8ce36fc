"""Generation speed and peak memory of our StyleGAN2 (config-f, random weights).

    python -m benchmarks.generate [--res 64 256 1024] [--batch 1 8] [--device cpu|cuda]
                                  [--repeats 3] [--json benchmarks/results/generate.json]

CPU: reference ops, fp32. CUDA: reference vs CUDA kernels, fp32 and fp16. Each case runs in a
fresh subprocess so that the peak resident memory (CPU) is that case's alone; on CUDA the peak
is `torch.cuda.max_memory_allocated`. Prints a table and writes JSON. Not a test.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import resource
import time
from pathlib import Path


def _case(res: int, batch: int, device: str, ops: str, fp16: bool, repeats: int, threads: int, q) -> None:
    os.environ["HUB_OPS"] = ops
    import torch
    from shared.archs.stylegan2 import StyleGAN2Config, StyleGAN2Generator

    torch.set_num_threads(threads)
    if device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    G = StyleGAN2Generator(StyleGAN2Config.rosinality(res)).init_random_(torch.Generator().manual_seed(0))
    G = G.eval().requires_grad_(False).to(device)
    z = torch.randn([batch, G.z_dim], generator=torch.Generator().manual_seed(1)).to(device)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    with torch.no_grad():
        G.synthesis(G.mapping(z), fp16=fp16)  # warm-up (and kernel build)
        sync()
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            G.synthesis(G.mapping(z), fp16=fp16)
            sync()
            times.append(time.perf_counter() - t0)
    best = min(times)
    peak = (torch.cuda.max_memory_allocated() if device == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    from custom_ops import status
    q.put({"res": res, "batch": batch, "device": device, "ops": ops, "dtype": "fp16" if fp16 else "fp32",
           "seconds_per_batch": best, "images_per_s": batch / best, "peak_mem_mb": peak / 2 ** 20,
           "op_paths": {k: v["path"] for k, v in status().items()}})


def run(resolutions, batches, device, repeats, threads) -> list[dict]:
    ctx = mp.get_context("spawn")
    combos = [("ref", False)] if device == "cpu" else [("ref", False), ("cuda", False), ("ref", True), ("cuda", True)]
    rows = []
    for res in resolutions:
        for batch in batches:
            for ops, fp16 in combos:
                q = ctx.Queue()
                p = ctx.Process(target=_case, args=(res, batch, device, ops, fp16, repeats, threads, q))
                p.start()
                p.join()
                if p.exitcode != 0:
                    rows.append({"res": res, "batch": batch, "device": device, "ops": ops,
                                 "dtype": "fp16" if fp16 else "fp32", "error": f"exit code {p.exitcode}"})
                else:
                    rows.append(q.get())
                print(_fmt(rows[-1]), flush=True)
    return rows


def _fmt(r: dict) -> str:
    if "error" in r:
        return f"{r['res']:>5} {r['batch']:>5} {r['device']:>5} {r['ops']:>5} {r['dtype']:>5}  {r['error']}"
    return (f"{r['res']:>5} {r['batch']:>5} {r['device']:>5} {r['ops']:>5} {r['dtype']:>5} "
            f"{r['images_per_s']:>10.2f} {r['seconds_per_batch']:>10.3f} {r['peak_mem_mb']:>10.0f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--res", type=int, nargs="+", default=[64, 256, 1024])
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--json", type=Path, default=Path("benchmarks/results/generate.json"))
    args = ap.parse_args()
    print(f"{'res':>5} {'batch':>5} {'dev':>5} {'ops':>5} {'dtype':>5} {'img/s':>10} {'s/batch':>10} {'peak MB':>10}")
    rows = run(args.res, args.batch, args.device, args.repeats, args.threads)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    meta = {"machine": platform.platform(), "processor": platform.processor(), "cpus": os.cpu_count(),
            "threads": args.threads, "date": time.strftime("%Y-%m-%d %H:%M")}
    args.json.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
