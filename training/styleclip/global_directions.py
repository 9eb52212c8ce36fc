"""Building StyleCLIP's global-direction relevance matrix ahead of time (Patashnik et al., ICCV 2021,
orpatashnik/StyleCLIP `global_directions/`, the official `fs3`): the command line that computes (or
resumes) the matrix of a registry generator with a registry CLIP and saves it, and the builder the
demo bundle uses. The matrix itself and its on-first-use cache: `shared.styleclip.global_directions`.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from torch import nn

from shared import hub, load_generator, registry
from shared.styleclip.clip import clip_for
from shared.styleclip.global_directions import (Progress, RelevanceSettings, computed_dir, relevance_file,
                                                relevance_matrix, save_relevance)

__all__ = ["build_relevance_file", "main"]


def build_relevance_file(G: nn.Module, clip, model_id: str, settings: RelevanceSettings, folder: Path, *,
                         half: bool = False, extra: dict | None = None, limit: int | None = None,
                         progress: Progress | None = None) -> Path:
    """Build (or resume, from `<file>.partial`) the relevance matrix of (G, clip) and save it as
    `relevance_file(model_id, clip.model_id, settings, folder)`, float16 with `half`; `extra` goes
    into the header (e.g. the sha256 of the generator and CLIP files). `limit`: the first rows only
    (a pipeline check, not a usable matrix). Returns the path."""
    path = relevance_file(model_id, clip.model_id, settings, folder)
    rel = relevance_matrix(G, clip, settings=settings, checkpoint=path.with_suffix(".partial"), progress=progress,
                           limit=limit)
    save_relevance(rel, path, settings, dtype=torch.float16 if half else torch.float32, extra=extra)
    path.with_suffix(".partial").unlink(missing_ok=True)
    return path


def main(argv: list[str] | None = None) -> None:
    """`python -m training.styleclip.global_directions --model ID --clip ID [--out DIR] [--samples N]
    [--threads N] [--device cpu|cuda]`: build (or resume) a relevance matrix and save it in DIR
    (default: the computed-assets cache), stored as float16 when --half is given."""
    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("--model", required=True)
    ap.add_argument("--clip", required=True)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--samples", type=int, default=RelevanceSettings.samples)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--half", action="store_true")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    card, clip_card = registry.get(args.model), registry.get(args.clip)
    G = load_generator(hub.fetch(card)).eval().requires_grad_(False).to(args.device)
    clip = clip_for(args.clip, args.device)
    extra = {"generator_sha256": hub.file_sha256(hub.fetch(card)), "clip_sha256": hub.file_sha256(hub.fetch(clip_card)),
             "device": args.device, "threads": torch.get_num_threads()}
    t0 = time.perf_counter()
    path = build_relevance_file(G, clip, card.id, RelevanceSettings(samples=args.samples),
                                args.out or computed_dir() / "styleclip", half=args.half, extra=extra,
                                progress=lambda f, d: print(f"{d} ({time.perf_counter() - t0:.0f} s)", flush=True))
    print(f"{path} in {time.perf_counter() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    main()
