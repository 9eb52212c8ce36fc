"""Training StyleCLIP's latent mapper (Patashnik et al., ICCV 2021, orpatashnik/StyleCLIP@f87a47f7
`mapper/training/coach.py`) for any generator of the registry and any CLIP, and measuring a demo-world
mapper with the demo predictor as the judge.

Each step draws a batch of source latents ws = G.mapping(z) (truncation ψ, z from a torch.Generator
seeded by (seed, step), so a resumed run sees the same latents), edits them to
ŵ = ws + 0.1·M(ws) and minimises

    (1 - cos(CLIP(G.synthesis(ŵ)), CLIP(prompt)))  +  λ_L2 · mean((0.1·M(ws))²)  [+ λ_ID · (1 - id(x̂, x))]

with Adam on the mapper's weights only (the official code uses Ranger; Adam needs no extra
package). The L2 term is the official `MSELoss(w_hat, w)`. The identity term takes any
`IdentityModel` (ArcFace IR-SE50 for FFHQ, record `arcface-ir-se50`); the demo world trains without
one: ArcFace means nothing on 64-px cartoon portraits, and the demo predictor, the only other
judge of "the same person", is what measures the mappers, so it must not also train them.

A run folder receives `state.pt` (mapper, optimiser, step, loss history, wall time) every
`checkpoint_every` steps; the same command continues an interrupted run.

    python -m training.styleclip.train_mapper train --prompt "a person wearing glasses" --out OUT.safetensors
        [--steps 1000 --batch 8 --lr 0.02 --lambda-l2 0.8 --lambda-id 0 --identity arcface-ir-se50
         --layers 4 --levels coarse,medium,fine --psi 0.7 --seed 0 --device cpu --threads 1
         --generator demo-portraits-stylegan2-64 --clip demo-portraits-clip --run-dir DIR
         --checkpoint-every 100 --dtype float32 --sidecar]
    python -m training.styleclip.train_mapper measure OUT.safetensors [--target glasses] [--sources 50] [--sidecar]
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn

from shared import hub, load_generator, registry
from shared.demo.predictor import load_predictor
from shared.errors import InputError
from shared.inversion.identity import load_arcface
from shared.styleclip.clip import clip_for
from shared.styleclip.mapper import (OFFICIAL_STRENGTH, LevelsMapper, MapperConfig, edit_with_mapper, load_mapper,
                                     save_mapper)
from shared.styleclip.prompts import check_prompt
from training.demo.text_eval import TEXT_EVAL_SEED, TEXT_TARGETS, sources, text_edit_report

__all__ = ["TrainResult", "TrainSettings", "main", "measure_into_sidecar", "measure_mapper", "train_and_save",
           "train_mapper"]

DEMO_GENERATOR = "demo-portraits-stylegan2-64"
DEMO_CLIP = "demo-portraits-clip"


@dataclass(frozen=True)
class TrainSettings:
    """What a training run does (saved with its checkpoints; a resumed run must match)."""
    prompt: str
    steps: int = 1000                # optimiser steps
    batch: int = 8                   # latents per step
    lr: float = 0.02                 # Adam learning rate on the stored (lr_mul-scaled) weights
    lambda_l2: float = 0.8           # official latent_l2_lambda
    lambda_id: float = 0.0           # official id_lambda is 0.1 (FFHQ with ArcFace)
    psi: float = 0.7                 # truncation of the training latents (official: 0.7)
    seed: int = 0                    # mapper initialisation and latent draws
    strength: float = OFFICIAL_STRENGTH
    checkpoint_every: int = 100

    def resume_key(self) -> dict:
        """Fields that must match for a run folder to be continued (steps may grow)."""
        return {k: v for k, v in asdict(self).items() if k not in ("steps", "checkpoint_every")}


@dataclass
class TrainResult:
    """A trained mapper (eval mode, on the training device), the steps done, wall time over all
    sessions, per-step losses ({'clip', 'l2', 'id', 'loss'}) and whether should_stop ended it."""
    mapper: LevelsMapper
    steps: int
    seconds: float
    history: list[dict] = field(default_factory=list)
    stopped: bool = False


def _latents(G: nn.Module, settings: TrainSettings, step: int, device: torch.device) -> Tensor:
    g = torch.Generator().manual_seed(int(settings.seed) * 1_000_003 + int(step))
    z = torch.randn([settings.batch, G.z_dim], generator=g)
    with torch.no_grad():
        return G.mapping(z.to(device), truncation_psi=settings.psi).float()


def _losses(G, clip, mapper, ws, text, settings, identity) -> tuple[Tensor, dict]:
    delta = settings.strength * mapper(ws)                                  # [N, num_ws, w_dim]
    img = G.synthesis(ws + delta, noise_mode="const").float()
    clip_loss = (1 - (clip.encode_image(img) * text).sum(-1)).mean()
    l2 = delta.square().mean()
    loss = clip_loss + settings.lambda_l2 * l2
    id_loss = torch.zeros(())
    if identity is not None and settings.lambda_id > 0:
        with torch.no_grad():
            source = G.synthesis(ws, noise_mode="const").float()
        id_loss = (1 - identity.similarity(img, source)).mean()
        loss = loss + settings.lambda_id * id_loss
    return loss, {k: float(v.detach()) for k, v in (("clip", clip_loss), ("l2", l2), ("id", id_loss), ("loss", loss))}


def _save_state(run_dir: Path, mapper, opt, step, history, seconds, settings, config) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    tmp = run_dir / "state.pt.tmp"
    torch.save({"mapper": mapper.state_dict(), "optimizer": opt.state_dict(), "step": step,
                "history": [[h["clip"], h["l2"], h["id"], h["loss"]] for h in history], "seconds": seconds,
                "settings": settings.resume_key(), "config": config.to_dict()}, tmp)
    os.replace(tmp, run_dir / "state.pt")


def _load_state(run_dir: Path | None, settings: TrainSettings, config: MapperConfig) -> dict | None:
    path = None if run_dir is None else run_dir / "state.pt"
    if path is None or not path.is_file():
        return None
    state = torch.load(path, map_location="cpu", weights_only=True)
    if state["settings"] != settings.resume_key() or state["config"] != config.to_dict():
        raise InputError(f"{run_dir} holds a run with other settings ({state['settings']}, {state['config']}); "
                         "use another run folder or the same settings.")
    return state


def train_mapper(G: nn.Module, clip, settings: TrainSettings, config: MapperConfig, *, identity=None,
                 run_dir: str | os.PathLike | None = None,
                 on_step: Callable[[int, dict], object] | None = None,
                 should_stop: Callable[[], bool] | None = None) -> TrainResult:
    """Train a LevelsMapper for `settings.prompt` on G's latents with `clip` (a ClipModel).

    Args:
        G:        generator (num_ws, w_dim, z_dim, mapping, synthesis); only read, never given gradients.
        clip:     ClipModel on G's device (`encode_image` differentiable, `encode_text`).
        config:   mapper shape; config.w_dim must equal G.w_dim.
        identity: optional IdentityModel (`similarity(a, b) -> [N]`), used when settings.lambda_id > 0.
        run_dir:  folder for `state.pt` checkpoints; an existing one with the same settings is continued.
        on_step:  called after every step with (step, losses of that step).
    Returns:
        TrainResult (the mapper in eval mode on G's device).
    """
    if config.w_dim != G.w_dim:
        raise InputError(f"The mapper's w_dim {config.w_dim} differs from the generator's {G.w_dim}.")
    if int(settings.steps) < 1 or int(settings.batch) < 1:
        raise InputError("Use at least one step and a batch of at least one latent.")
    prompt = check_prompt(settings.prompt, "prompt")
    dev = next(G.parameters()).device
    run_dir = None if run_dir is None else Path(run_dir)
    mapper = LevelsMapper(config, generator=torch.Generator().manual_seed(int(settings.seed))).to(dev).train()
    params = list(mapper.parameters())
    opt = torch.optim.Adam(params, lr=float(settings.lr))
    step, seconds, history = 0, 0.0, []
    state = _load_state(run_dir, settings, config)
    if state is not None:
        mapper.load_state_dict(state["mapper"])
        opt.load_state_dict(state["optimizer"])
        step, seconds = int(state["step"]), float(state["seconds"])
        history = [dict(zip(("clip", "l2", "id", "loss"), h)) for h in state["history"]]
    text = clip.encode_text([prompt]).to(dev, torch.float32)              # [1, D]
    t0, stopped = time.perf_counter() - seconds, False
    while step < int(settings.steps):
        ws = _latents(G, settings, step, dev)
        loss, record = _losses(G, clip, mapper, ws, text, settings, identity)
        # gradients for the mapper only (none left on G); a level with no rows (num_ws <= 8) gets none
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        for p, g in zip(params, grads):
            p.grad = g
        opt.step()
        step += 1
        history.append(record)
        if on_step is not None:
            on_step(step, record)
        stop = should_stop is not None and should_stop()
        if run_dir is not None and (step % max(1, settings.checkpoint_every) == 0 or step == settings.steps or stop):
            _save_state(run_dir, mapper, opt, step, history, time.perf_counter() - t0, settings, config)
        if stop:
            stopped = True
            break
    return TrainResult(mapper.eval(), step, time.perf_counter() - t0, history, stopped)


# ---- measuring on the demo world ---------------------------------------------------------------------
@torch.no_grad()
def measure_mapper(G: nn.Module, mapper: nn.Module, predictor, target, *, n: int = 50, seed: int | None = None,
                   strength: float = OFFICIAL_STRENGTH, timing_repeats: int = 20) -> dict:
    """The demo predictor's verdict on a mapper edit over n fresh latents (`training.demo.text_eval`:
    seed 7,500,000+, ψ 0.7): success share, target change, other-factor change, plus the median CPU
    milliseconds of one edit (mapper + synthesis) of a single latent."""
    ws = sources(G, n, TEXT_EVAL_SEED if seed is None else seed)
    base = G.synthesis(ws, noise_mode="const").float().clamp(-1, 1)
    edited, _ = edit_with_mapper(G, mapper, ws, strength=strength)
    report = text_edit_report(predictor, base.cpu(), edited, target)
    times = []
    for i in range(timing_repeats):
        t0 = time.perf_counter()
        edit_with_mapper(G, mapper, ws[i % n:i % n + 1], strength=strength)
        times.append(time.perf_counter() - t0)
    return {**report, "ms_per_edit": 1000 * statistics.median(times), "strength": strength,
            "seed": TEXT_EVAL_SEED if seed is None else seed}


def _target_for(prompt: str, key: str | None):
    for t in TEXT_TARGETS:
        if (key is not None and t.key == key) or (key is None and t.prompt == prompt):
            return t
    raise InputError(f"No demo-world target for {key or prompt!r}; pass --target one of "
                     f"{', '.join(t.key for t in TEXT_TARGETS)}.")


def train_and_save(G: nn.Module, clip, settings: TrainSettings, config: MapperConfig, out: str | os.PathLike, *,
                   run_dir: str | os.PathLike, generator_id: str, clip_id: str, device: str = "cpu",
                   dtype: torch.dtype = torch.float32, sidecar: bool = False, identity=None, identity_id: str = "",
                   on_step: Callable[[int, dict], object] | None = None, command: str = "") -> Path:
    """`train_mapper` (resuming from `run_dir`), then `save_mapper` to `out` with the training record
    (settings, models, wall time, mean losses of the first and last steps, `command`); with
    `sidecar`, also `out.json` (prompt, file, config, dtype, training). Returns the written path."""
    res = train_mapper(G, clip, settings, config, identity=identity, run_dir=run_dir, on_step=on_step)
    k = min(50, max(1, len(res.history) // 10))
    first = {key: statistics.fmean(h[key] for h in res.history[:k]) for key in ("clip", "l2", "id", "loss")}
    last = {key: statistics.fmean(h[key] for h in res.history[-k:]) for key in ("clip", "l2", "id", "loss")}
    training = {**asdict(settings), "generator": generator_id, "clip": clip_id, "device": device,
                "threads": torch.get_num_threads(), "identity": identity_id if identity is not None else None,
                "optimizer": "adam", "steps_done": res.steps, "wall_time_s": round(res.seconds, 1),
                f"losses_first_{k}_steps": first, f"losses_last_{k}_steps": last, "command": command}
    path = save_mapper(res.mapper.cpu(), out, prompt=settings.prompt, training=training,
                       extra={"generator": generator_id, "clip": clip_id}, dtype=dtype)
    if sidecar:
        name = {torch.float16: "float16", torch.float32: "float32"}[dtype]
        path.with_suffix(".json").write_text(json.dumps({"prompt": settings.prompt, "file": path.name,
                                                         "config": config.to_dict(), "dtype": name,
                                                         "training": training}, indent=1) + "\n")
    return path


def measure_into_sidecar(G: nn.Module, path: str | os.PathLike, predictor, *, n: int = 50, key: str | None = None,
                         command: str = "") -> dict:
    """`measure_mapper` on the demo-world target of the mapper's prompt (or `key`); the result is
    written into `path.json` under "measured" and returned."""
    mapper, meta = load_mapper(path)
    target = _target_for(meta.get("prompt", ""), key)
    res = measure_mapper(G, mapper, predictor, target, n=n)
    res = {"target": target.key, "factor": target.factor, "class": target.cls, "sign": target.sign,
           **res, "threads": torch.get_num_threads(), "command": command}
    side = Path(path).with_suffix(".json")
    rec = json.loads(side.read_text()) if side.is_file() else {"prompt": meta.get("prompt", "")}
    rec["measured"] = res
    side.write_text(json.dumps(rec, indent=1) + "\n")
    return res


# ---- command line ------------------------------------------------------------------------------------
def _load_models(generator_id: str, clip_id: str | None, device: str):
    G = load_generator(hub.fetch(registry.get(generator_id))).eval().requires_grad_(False).to(device)
    clip = None
    if clip_id is not None:
        clip = clip_for(clip_id, device)
    return G, clip


def _cmd_train(args) -> None:
    torch.set_num_threads(args.threads)
    G, clip = _load_models(args.generator, args.clip, args.device)
    config = MapperConfig(w_dim=G.w_dim, layers=args.layers, levels=tuple(args.levels.split(",")))
    settings = TrainSettings(prompt=args.prompt, steps=args.steps, batch=args.batch, lr=args.lr,
                             lambda_l2=args.lambda_l2, lambda_id=args.lambda_id, psi=args.psi, seed=args.seed,
                             checkpoint_every=args.checkpoint_every)
    identity = None
    if args.lambda_id > 0:
        identity = load_arcface(hub.fetch(registry.get(args.identity))).eval().requires_grad_(False).to(args.device)
    every = max(1, args.steps // 20)

    def report(step: int, rec: dict) -> None:
        if step % every == 0 or step == 1:
            print(f"step {step}/{args.steps}  clip {rec['clip']:.4f}  l2 {rec['l2']:.5f}  id {rec['id']:.4f}", flush=True)

    dtype = {"float16": torch.float16, "float32": torch.float32}[args.dtype]
    out = train_and_save(G, clip, settings, config, args.out, run_dir=args.run_dir or Path(str(args.out) + ".run"),
                         identity=identity, generator_id=args.generator, clip_id=args.clip, device=args.device,
                         dtype=dtype, sidecar=args.sidecar, on_step=report,
                         command="python -m training.styleclip.train_mapper " + shlex.join(sys.argv[1:]),
                         identity_id=args.identity)
    print(f"saved {out} ({out.stat().st_size} bytes)", flush=True)


def _cmd_measure(args) -> None:
    torch.set_num_threads(args.threads)
    mapper, meta = load_mapper(args.path)
    G, _ = _load_models(meta.get("generator") or DEMO_GENERATOR, None, "cpu")
    command = "python -m training.styleclip.train_mapper " + shlex.join(sys.argv[1:])
    if args.sidecar:
        res = measure_into_sidecar(G, args.path, load_predictor(), n=args.sources, key=args.target, command=command)
    else:
        target = _target_for(meta.get("prompt", ""), args.target)
        res = {"target": target.key, **measure_mapper(G, mapper, load_predictor(), target, n=args.sources)}
    print(json.dumps(res, indent=1), flush=True)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m training.styleclip.train_mapper", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    tr = sub.add_parser("train", help="train a latent mapper for one prompt")
    tr.add_argument("--prompt", required=True)
    tr.add_argument("--out", type=Path, required=True)
    tr.add_argument("--steps", type=int, default=1000)
    tr.add_argument("--batch", type=int, default=8)
    tr.add_argument("--lr", type=float, default=0.02)
    tr.add_argument("--lambda-l2", type=float, default=0.8)
    tr.add_argument("--lambda-id", type=float, default=0.0)
    tr.add_argument("--identity", default="arcface-ir-se50", help="identity model record (with --lambda-id > 0)")
    tr.add_argument("--layers", type=int, default=4)
    tr.add_argument("--levels", default="coarse,medium,fine")
    tr.add_argument("--psi", type=float, default=0.7)
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--device", default="cpu")
    tr.add_argument("--threads", type=int, default=1)
    tr.add_argument("--generator", default=DEMO_GENERATOR)
    tr.add_argument("--clip", default=DEMO_CLIP)
    tr.add_argument("--run-dir", type=Path, default=None, help="checkpoint folder (default OUT.run)")
    tr.add_argument("--checkpoint-every", type=int, default=100)
    tr.add_argument("--dtype", choices=("float32", "float16"), default="float32")
    tr.add_argument("--sidecar", action="store_true", help="also write OUT.json with the training record")
    me = sub.add_parser("measure", help="judge a demo-world mapper with the demo predictor")
    me.add_argument("path", type=Path)
    me.add_argument("--target", default=None, help="training.demo.text_eval target key (default: by prompt)")
    me.add_argument("--sources", type=int, default=50)
    me.add_argument("--threads", type=int, default=1)
    me.add_argument("--sidecar", action="store_true", help="write the result into PATH.json under 'measured'")
    args = ap.parse_args(argv)
    try:
        (_cmd_train if args.cmd == "train" else _cmd_measure)(args)
    except InputError as e:
        ap.exit(2, f"error: {e}\n")


if __name__ == "__main__":
    main()
