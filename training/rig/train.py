"""Self-supervised training of a StyleRig RigNet (Tewari et al., "StyleRig", CVPR 2020, section 4;
no official code) on any generator with any differentiable face model; the rig at run time is
`shared.rig`.

Each step draws sources w = G.mapping(z), z ~ N(0, I) (G.z_dim; the demo generator's z is its
factor-coordinate latent, also drawn as N(0, I)), reads their controls with the frozen estimator
(`training.rig.estimator`), and asks for new targets: per sample one random control is set to a
value drawn uniformly over its range (with probability `p_all`, every control is), the others keep
the source's reading. The rig edits w, G.synthesis renders it (constant noise) and the estimator
reads the result. The losses follow the paper's spirit, in normalised units:

(a) control: the reading of every control on the edited image vs the target vector (the edited
    control reaches its target, the others keep the source's value, clamped to its range), mean
    squared, -1..1 units;
(b) others: every other factor's reading (continuous ones as shares of their range, categorical
    ones as probabilities) on the edited image vs the source's, mean squared;
(c) identity: kept simple: the squared size of the offset in W (standardised by the W statistics;
    the StyleCLIP mapper's L2 prior), plus, when the estimator gives an identity embedding (ArcFace
    on FFHQ), its squared change. On the demo world, identity *is* the other factors (face shape,
    skin, hair, eyes, glasses, beard), so (b) carries it;
(d) cycle: rig(rig(w, t), source controls) vs w, standardised, mean squared (the paper's cycle
    consistency, taken in W).

G and the estimator are frozen (eval, requires_grad_(False)); only the rig learns (Adam). The run
folder holds `state.pt` (rig, optimiser, step, trained seconds; saved every `save_every` steps and
at the end; a rerun resumes from it) and `log.jsonl`; `--seconds` is the total training budget over
all resumed runs. The demo world:

    nice -n 10 python -m training.rig.train --generator shared/demo/bundle/generator.safetensors \\
        --run-dir runs/rig --seconds 7200 --threads 2 --export rig.safetensors

FFHQ on a GPU (recipe, not run here): any differentiable estimator with the `Estimator` shape
(img -> Reading) serves as the face model, e.g. a 3DMM regressor such as DECA or Deep3DFaceRecon
(pose from its rotation, expression from its first coefficients, light from its SH coefficients),
each control given a range from its 1st..99th percentile on 10k samples; `identity` = ArcFace
(`shared.inversion.identity.load_arcface`) on the aligned 112 px crop; `others` = the 3DMM's shape
and albedo coefficients scaled by their percentile ranges. Then `train_rig(G.to('cuda'), est,
RigConfig(512, 18, controls, hidden=512, code_dim=32, rows=None), RigTrainConfig(batch=32,
identity=0.1), run_dir, device='cuda')`, about 20k steps (a few hours on one A100/H100 at 1024 px;
render at 256 px through `G.synthesis` then resize if the estimator wants less).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
from torch import Tensor, nn

from shared import load_generator
from shared.demo.predictor import DEFAULT_PATH, load_predictor
from shared.rig import DEMO_CONTROLS, RigConfig, RigNet, demo_controls, save_rig
from training.rig.estimator import Estimator, Reading, predictor_estimator

__all__ = ["RigTrainConfig", "draw_targets", "load_state", "main", "rig_losses", "sample_sources", "train_rig",
           "w_statistics"]


@dataclass(frozen=True)
class RigTrainConfig:
    batch: int = 16                 # sources per step
    lr: float = 1e-3                # Adam
    p_all: float = 0.2              # share of samples whose every control gets a new target
    control: float = 1.0            # loss weights: (a)
    others: float = 5.0             # (b)
    offset: float = 1e-3            # (c) squared standardised offset
    identity: float = 0.0           # (c) identity embedding (used only when the estimator gives one)
    cycle: float = 0.1              # (d)
    grad_clip: float = 1.0
    stat_samples: int = 4096        # latents for the W statistics
    seed: int = 0
    save_every: int = 50            # steps between checkpoints
    log_every: int = 10             # steps between progress lines


@torch.no_grad()
def w_statistics(G: nn.Module, n: int, seed: int, *, device: str | torch.device = "cpu") -> tuple[Tensor, Tensor]:
    """Mean and std [w_dim] of W over n latents G.mapping(z), z ~ N(0, I) (seeded), all rows pooled."""
    g = torch.Generator().manual_seed(seed)
    ws = torch.cat([G.mapping(torch.randn(min(512, n - i), G.z_dim, generator=g).to(device)).cpu()
                    for i in range(0, n, 512)])
    flat = ws.reshape(-1, ws.shape[-1])
    return flat.mean(0), flat.std(0).clamp_min(1e-4)


@torch.no_grad()
def sample_sources(G: nn.Module, estimator: Estimator, n: int, generator: torch.Generator, *,
                   device: str | torch.device = "cpu") -> tuple[Tensor, Reading]:
    """n sources: ws [n, num_ws, w_dim] = G.mapping(z), z ~ N(0, I), and the estimator's reading of
    their images (constant noise), without gradients."""
    z = torch.randn(n, G.z_dim, generator=generator).to(device)
    ws = G.mapping(z)
    return ws, estimator(G.synthesis(ws, noise_mode="const"))


def draw_targets(source: Tensor, p_all: float, generator: torch.Generator) -> Tensor:
    """Targets [N, C] (normalised units): the source's controls (clamped to -1..1) with one random
    control per row set uniformly in -1..1, and with probability p_all every control."""
    n, c = source.shape
    source = source.clamp(-1, 1)      # readings beyond a range ask for its edge, as the sliders do
    u = torch.rand(n, c, generator=generator) * 2 - 1
    pick = torch.nn.functional.one_hot(torch.randint(c, (n,), generator=generator), c).bool()
    pick |= (torch.rand(n, 1, generator=generator) < p_all)
    return torch.where(pick.to(source.device), u.to(source.device), source)


def rig_losses(G: nn.Module, rig: RigNet, estimator: Estimator, ws: Tensor, source: Reading, targets: Tensor,
               cfg: RigTrainConfig) -> dict[str, Tensor]:
    """The training losses (a)-(d) of one batch (see the module docstring) and their weighted
    'total'; gradients flow to the rig only when G and the estimator are frozen."""
    d = rig.offsets(ws, targets)                                            # [N, R, w_dim]
    ws_edit = ws.index_add(1, rig.rows, d)
    read = estimator(G.synthesis(ws_edit, noise_mode="const"))
    out = {"control": (read.controls - targets).square().mean()}
    out["others"] = (torch.stack([(read.others[k] - v).square().mean() for k, v in source.others.items()]).mean()
                     if source.others else ws.new_zeros(()))
    out["offset"] = (d / rig.w_std).square().mean()
    out["identity"] = (ws.new_zeros(()) if source.identity is None or read.identity is None
                       else (read.identity - source.identity).square().mean())
    back = rig(ws_edit, source.controls.clamp(-1, 1))
    out["cycle"] = ((back - ws) / rig.w_std).square().mean()
    out["total"] = sum(getattr(cfg, k) * out[k] for k in ("control", "others", "offset", "identity", "cycle"))
    return out


def _save_state(path: Path, rig: RigNet, opt, step: int, seconds: float, cfg: RigTrainConfig) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"rig": rig.state_dict(), "opt": opt.state_dict(), "step": step, "seconds": seconds,
                "rig_config": json.dumps(rig.config.to_dict(), sort_keys=True), "train_config": asdict(cfg)}, tmp)
    os.replace(tmp, path)


def load_state(run_dir: Path) -> dict | None:
    """The run folder's checkpoint (weights only, no code), or None."""
    path = Path(run_dir) / "state.pt"
    return torch.load(path, weights_only=True, map_location="cpu") if path.is_file() else None


def train_rig(G: nn.Module, estimator: Estimator, rig_config: RigConfig, cfg: RigTrainConfig, run_dir: Path, *,
              device: str | torch.device = "cpu", max_seconds: float | None = None, max_steps: int | None = None,
              log: Callable[[str], None] = lambda s: None) -> tuple[RigNet, dict]:
    """Train (or resume from run_dir/state.pt) until `max_steps` steps or `max_seconds` of training
    in all (both counted over resumed runs; at least one must be given).
    Returns (rig on the CPU, eval, float32, no gradients; record of the run)."""
    if max_seconds is None and max_steps is None:
        raise ValueError("give max_seconds or max_steps")
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    G.eval().requires_grad_(False)
    rig = RigNet(rig_config, generator=torch.Generator().manual_seed(cfg.seed))
    state = load_state(run_dir)
    if state is not None:
        if json.loads(state["rig_config"]) != rig_config.to_dict():
            raise ValueError(f"{run_dir} holds a rig of another config; use a new --run-dir")
        rig.load_state_dict(state["rig"])
    else:
        rig.w_mean, rig.w_std = w_statistics(G, cfg.stat_samples, cfg.seed + 1, device=device)
    rig.to(device).train()
    opt = torch.optim.Adam(rig.parameters(), lr=cfg.lr)
    step, seconds = 0, 0.0
    if state is not None:
        opt.load_state_dict(state["opt"])
        step, seconds = int(state["step"]), float(state["seconds"])
        log(f"resumed at step {step} ({seconds / 60:.1f} min trained)")
    t_start, last = time.time() - seconds, {}
    with (run_dir / "log.jsonl").open("a") as logf:
        while (max_steps is None or step < max_steps) and (max_seconds is None or time.time() - t_start < max_seconds):
            g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
            ws, source = sample_sources(G, estimator, cfg.batch, g, device=device)
            targets = draw_targets(source.controls, cfg.p_all, g)
            losses = rig_losses(G, rig, estimator, ws, source, targets, cfg)
            opt.zero_grad(set_to_none=True)
            losses["total"].backward()
            nn.utils.clip_grad_norm_(rig.parameters(), cfg.grad_clip)
            opt.step()
            step += 1
            last = {k: round(v.item(), 6) for k, v in losses.items()}
            if step % cfg.log_every == 0:
                rec = {"step": step, **last, "seconds": round(time.time() - t_start, 1)}
                logf.write(json.dumps(rec) + "\n")
                logf.flush()
                log(f"step {step}: " + " ".join(f"{k} {v:.4f}" for k, v in last.items())
                    + f" ({rec['seconds'] / step:.2f} s/step, {rec['seconds'] / 60:.1f} min)")
            if step % cfg.save_every == 0:
                _save_state(run_dir / "state.pt", rig, opt, step, time.time() - t_start, cfg)
    seconds = time.time() - t_start
    _save_state(run_dir / "state.pt", rig, opt, step, seconds, cfg)
    record = {"steps": step, "batch": cfg.batch, "train_minutes": round(seconds / 60, 2), "last_losses": last,
              "config": asdict(cfg)}
    return rig.cpu().eval().requires_grad_(False), record


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m training.rig.train", description=__doc__.split("\n")[0])
    ap.add_argument("--generator", type=Path, required=True, help="generator checkpoint (any format the hub loads)")
    ap.add_argument("--run-dir", type=Path, required=True, help="checkpoint and log folder (a rerun resumes)")
    ap.add_argument("--seconds", type=float, default=None, help="total training budget over all resumed runs")
    ap.add_argument("--steps", type=int, default=None, help="total step budget over all resumed runs")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--export", type=Path, default=None, help="write the rig here (safetensors) when done")
    ap.add_argument("--dtype", choices=("float32", "float16"), default="float32", help="tensors of the export")
    ap.add_argument("--predictor", type=Path, default=DEFAULT_PATH, help="the demo predictor (the face model)")
    ap.add_argument("--controls", default=",".join(DEMO_CONTROLS))
    ap.add_argument("--rows", default="", help="comma-separated W+ rows to edit (default: all)")
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--code-dim", type=int, default=32)
    for f in fields(RigTrainConfig):
        if f.name not in ("save_every", "log_every", "stat_samples"):
            ap.add_argument("--" + f.name.replace("_", "-"), type=type(f.default), default=f.default)
    args = ap.parse_args(argv)
    if args.seconds is None and args.steps is None:
        ap.error("give --seconds or --steps")
    torch.set_num_threads(args.threads)
    t0 = time.time()

    def log(s: str) -> None:
        print(f"[{(time.time() - t0) / 60:5.1f} min] {s}", flush=True)

    G = load_generator(args.generator).to(args.device)
    controls = demo_controls(tuple(n.strip() for n in args.controls.split(",") if n.strip()))
    rows = tuple(int(r) for r in args.rows.split(",") if r.strip()) or None
    rig_config = RigConfig(G.w_dim, G.num_ws, controls, hidden=args.hidden, code_dim=args.code_dim, rows=rows)
    cfg = RigTrainConfig(**{f.name: getattr(args, f.name) for f in fields(RigTrainConfig) if hasattr(args, f.name)})
    estimator = predictor_estimator(load_predictor(args.predictor).to(args.device), rig_config)
    rig, record = train_rig(G, estimator, rig_config, cfg, args.run_dir, device=args.device,
                            max_seconds=args.seconds, max_steps=args.steps, log=log)
    log(f"trained {record['steps']} steps ({record['train_minutes']} min); last {record['last_losses']}")
    if args.export is not None:
        words = argv if argv is not None else sys.argv[1:]
        record.update(generator=str(args.generator), command="python -m training.rig.train " + " ".join(words))
        path = save_rig(rig, args.export, training=record, dtype=getattr(torch, args.dtype))
        log(f"saved {path} ({path.stat().st_size} bytes, {rig.num_params()} parameters)")


if __name__ == "__main__":
    main()
