"""A pre-rendered pool of demo portraits (shared/portraits.py) for training on a GPU.

On the CPU the demo trainings render every batch on the fly; a GPU consumes images far faster
than one Python process can render them, so a GPU run first renders a pool in parallel worker
processes (one thread each, chunks seeded independently, so the pool is the same whatever the
worker count) and then draws batches from it on the device. Images are stored as uint8, as
real datasets are.

    python -m training.demo.pool --n 160000 --out /dev/shm/pool.pt --workers 16
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from shared.portraits import FACTORS, Factors, render, sample_factors

__all__ = ["Pool", "POOL_SEED_BASE", "render_pool", "load_pool", "factors_from_vectors"]

POOL_SEED_BASE = 2 * 10**9  # chunk seeds 2e9 + seed * 1e6 + j: disjoint from every other use
CHUNK = 500


@dataclass(frozen=True)
class Pool:
    """img [N,3,H,W] uint8; parts [N,H,W] uint8 (PART_NAMES codes); factors [N,F] float32
    (`Factors.to_vector` layout); seed: the pool's seed."""
    img: Tensor
    parts: Tensor
    factors: Tensor
    seed: int

    def __len__(self) -> int:
        return int(self.img.shape[0])

    def to(self, device: torch.device | str) -> "Pool":
        return Pool(self.img.to(device), self.parts.to(device), self.factors.to(device), self.seed)

    def batch(self, index: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(img float [-1,1], parts int64, factor vectors) of the rows in `index`."""
        img = self.img[index].float().div_(127.5).sub_(1.0)
        return img, self.parts[index].long(), self.factors[index]


def _chunk(args: tuple[int, int, int, int]) -> tuple[Tensor, Tensor, Tensor]:
    seed, j, n, size = args
    torch.set_num_threads(1)
    r = render(sample_factors(n, POOL_SEED_BASE + seed * 10**6 + j), size)
    img = r.img.add(1).mul(127.5).round().clamp(0, 255).to(torch.uint8)
    return img, r.parts.to(torch.uint8), r.factors.to_vector()


def render_pool(n: int, seed: int = 0, size: int = 64, workers: int | None = None,
                progress=print) -> Pool:
    """Render n portraits in `workers` processes (default: every CPU)."""
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    jobs = [(seed, j, min(CHUNK, n - j * CHUNK), size) for j in range((n + CHUNK - 1) // CHUNK)]
    workers = workers or os.cpu_count() or 1
    t0 = time.time()
    if workers == 1:
        outs = [_chunk(job) for job in jobs]
    else:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            outs = pool.map(_chunk, jobs, chunksize=1)
    progress(f"rendered {n} portraits at {size} px in {time.time() - t0:.1f} s ({workers} workers)")
    return Pool(*(torch.cat([o[k] for o in outs]) for k in range(3)), seed=seed)


def load_pool(path: Path | str) -> Pool:
    st = torch.load(path, weights_only=True)
    return Pool(st["img"], st["parts"], st["factors"], int(st["seed"]))


def factors_from_vectors(vec: Tensor) -> Factors:
    """`Factors.from_vector` that keeps the tensors on their device (codes as int64)."""
    vals = {}
    for j, s in enumerate(FACTORS):
        col = vec[:, j]
        vals[s.name] = col.round().long() if s.kind == "categorical" else col.float()
    return Factors(vals)


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m training.demo.pool", description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    p = render_pool(args.n, args.seed, args.size, args.workers, progress=lambda s: print(s, flush=True))
    torch.save({"img": p.img, "parts": p.parts, "factors": p.factors, "seed": p.seed}, args.out)


if __name__ == "__main__":
    main()
