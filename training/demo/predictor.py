"""Training, evaluation and the command line of the demo world's judge (the architecture and
its loading: `shared.demo.predictor`).

The architecture (own construction: a strided ResNet-style encoder and an FPN decoder with
part-pooled factor heads) is described in `shared.demo.predictor`.

Training renders portraits on the fly (no dataset, no overfitting): every step renders
`fresh` new portraits and adds the mirror images of the previous step's renders, which are
exact renders of the mirrored factors (yaw and light azimuth negated), so each rendered image
is used twice. AdamW with linear warm-up and cosine decay; resumable from the run folder's
checkpoint. A run can start from saved weights (`--init`), growing the optional 64-px refine
block from zero. The shipped weights come from three chained runs (each one's settings are
kept in predictor.json under training / previous):

    python -m training.demo.predictor train --steps 1600 --run-dir runs/predictor \
        --out runs/predictor/stage1.safetensors
    python -m training.demo.predictor train --steps 1200 --seed 1 --lr 1e-3 --warmup 50 \
        --part-balance 0.5 --init runs/predictor/stage1.safetensors \
        --run-dir runs/predictor_stage2 --out runs/predictor_stage2/stage2.safetensors
    python -m training.demo.predictor train --steps 2000 --seed 2 --lr 1e-3 --warmup 50 \
        --part-balance 0.5 --refine-channels 24 --init runs/predictor_stage2/stage2.safetensors \
        --run-dir runs/predictor_stage3 --out shared/demo/bundle/predictor.safetensors
    python -m training.demo.predictor evaluate     # 2,000 fresh renders -> predictor.json

Run with OMP_WAIT_POLICY=PASSIVE when the CPU is shared: with busy-waiting OpenMP threads a
training step cost several times more CPU time here.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import Tensor

from shared.demo.predictor import (CATEGORICAL, CIRCULAR, CONTINUOUS, DEFAULT_PATH, FORMAT, MASKED, RESOLUTION,
                                   Prediction, Predictor, PredictorConfig, RawOutputs, encode_regression,
                                   load_predictor)
from shared.portraits import FACTORS, PART_NAMES, Factors, FactorSpec, render, sample_factors
from training.demo.pool import factors_from_vectors, load_pool

__all__ = ["EVAL_SEED", "PredictorTrainConfig", "TARGETS", "evaluate_predictor", "finetune_on_pool", "mirror_factors",
           "save_predictor", "train_predictor"]

EVAL_SEED = 7_000_001                   # `evaluate`; disjoint from training (seed 0) and tests


def _visible(spec: FactorSpec, factors: Factors) -> Tensor | None:
    """Mask [N] of portraits where a factor is drawn (None: always)."""
    if spec.name not in MASKED:
        return None
    gate, hidden = MASKED[spec.name]
    return factors[gate] != hidden


def mirror_factors(factors: Factors) -> Factors:
    """Factors of the left-right mirror image: every shape in the renderer is symmetric in x,
    so render(mirror_factors(f)) equals render(f) flipped along the width (to float error)."""
    vals = dict(factors.values)
    vals["yaw"], vals["light_azimuth"] = -vals["yaw"], -vals["light_azimuth"]
    return Factors(vals)


@dataclass(frozen=True)
class _Losses:
    total: Tensor
    reg: Tensor      # sum over regression columns of the mean squared error
    cls: Tensor      # sum over categorical factors of the cross-entropy
    parts: Tensor    # per-pixel cross-entropy


def _losses(out: RawOutputs, factors: Factors, parts: Tensor, reg_weight: float,
            part_weight: Tensor | None = None) -> _Losses:
    reg = F.mse_loss(out.reg, encode_regression(factors), reduction="none").mean(0).sum()
    cls = out.reg.new_zeros(())
    for s in CATEGORICAL:
        ce = F.cross_entropy(out.logits[s.name], factors[s.name], reduction="none")
        mask = _visible(s, factors)
        cls = cls + (ce.mean() if mask is None else (ce * mask).sum() / mask.sum().clamp(min=1))
    part = F.cross_entropy(out.part_logits, parts, weight=part_weight)
    return _Losses(reg_weight * reg + cls + part, reg.detach(), cls.detach(), part.detach())


# ----------------------------------------------------------------------------- evaluation

def _r2(pred: Tensor, true: Tensor, circular_range: float | None) -> float:
    res = pred.double() - true.double()
    if circular_range is not None:  # hue 0 and hue 1 are the same colour
        res = torch.remainder(res + circular_range / 2, circular_range) - circular_range / 2
    return float(1 - res.square().sum() / (true.double() - true.double().mean()).square().sum())


def evaluate_predictor(model: Predictor, *, n: int = 2000, seed: int = EVAL_SEED,
                       batch: int = 100) -> dict:
    """Score the predictor on n fresh renders drawn from one generator seeded with `seed`.

    Returns a JSON-ready dict: R^2 per continuous factor (background_hue with the residual
    taken modulo 1), accuracy per categorical factor (glasses_color over portraits with
    glasses), IoU per part (intersection and union summed over all pixels of all images),
    their mean (miou), n and seed.
    """
    g = torch.Generator().manual_seed(seed)
    preds: list[Prediction] = []
    truth: list[Factors] = []
    inter = torch.zeros(len(PART_NAMES), dtype=torch.float64)
    union = torch.zeros_like(inter)
    for start in range(0, n, batch):
        r = render(sample_factors(min(batch, n - start), g), RESOLUTION)
        p = model.predict(r.img)
        preds.append(p)
        truth.append(r.factors)
        for k in range(len(PART_NAMES)):
            a, b = p.parts.cpu() == k, r.parts == k
            inter[k] += (a & b).sum()
            union[k] += (a | b).sum()
    cat = {s.name: (torch.cat([p.factors[s.name].cpu() for p in preds]),
                    torch.cat([t[s.name] for t in truth])) for s in FACTORS}
    all_truth = Factors({k: v[1] for k, v in cat.items()})
    r2 = {s.name: _r2(*cat[s.name], (s.high - s.low) if s.name in CIRCULAR else None)
          for s in CONTINUOUS}
    acc = {}
    for s in CATEGORICAL:
        hit = (cat[s.name][0] == cat[s.name][1]).double()
        mask = _visible(s, all_truth)
        acc[s.name] = float(hit.mean() if mask is None else hit[mask].mean())
    iou = {name: float(inter[k] / union[k]) for k, name in enumerate(PART_NAMES)}
    return {"n": n, "seed": seed, "r2": r2, "accuracy": acc, "part_iou": iou,
            "miou": sum(iou.values()) / len(iou)}


# ----------------------------------------------------------------------------- weights

def save_predictor(model: Predictor, path: Path, *, dtype: torch.dtype = torch.float16,
                   extra: dict | None = None) -> None:
    """Write the weights as safetensors (floating tensors cast to `dtype`) with the config in
    the header metadata under "config" (JSON) and `extra` under "extra" (JSON)."""
    state = {k: (v.to(dtype) if v.is_floating_point() else v).contiguous().cpu()
             for k, v in model.state_dict().items()}
    meta = {"format": FORMAT, "config": json.dumps(asdict(model.config))}
    if extra is not None:
        meta["extra"] = json.dumps(extra)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    save_file(state, str(tmp), metadata=meta)
    os.replace(tmp, path)

# ----------------------------------------------------------------------------- training


@dataclass(frozen=True)
class PredictorTrainConfig:
    steps: int = 3000
    fresh: int = 32                # new renders per step; the batch adds their mirror images
    lr: float = 2e-3
    weight_decay: float = 0.02
    warmup: int = 100
    min_lr_ratio: float = 0.02     # cosine decays from lr to lr * min_lr_ratio
    reg_weight: float = 2.0        # weight of the regression loss against the cross-entropies
    grad_clip: float = 2.0
    part_balance: float = 0.0      # part CE class weights ~ pixel frequency^-part_balance
    init: str = ""                 # start from these saved weights (a continuation run)
    seed: int = 0
    model: PredictorConfig = field(default_factory=PredictorConfig)


def _chunk_seed(cfg: PredictorTrainConfig, j: int) -> int:
    """Seed of the j-th training chunk: >= 10**9, so disjoint from EVAL_SEED and test seeds."""
    return 10**9 + cfg.seed * 10**7 + j


def _lr(cfg: PredictorTrainConfig, step: int) -> float:
    warm = min(1.0, (step + 1) / cfg.warmup)
    cos = 0.5 * (1 + math.cos(math.pi * step / cfg.steps))
    return cfg.lr * warm * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * cos)


def _optimizer(model: Predictor, cfg: PredictorTrainConfig) -> torch.optim.AdamW:
    decay = [p for p in model.parameters() if p.ndim > 1]
    rest = [p for p in model.parameters() if p.ndim <= 1]
    return torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                              {"params": rest, "weight_decay": 0.0}], lr=cfg.lr)


def _batch(cfg: PredictorTrainConfig, step: int, prev):
    """Step k trains on chunk k+1 (fresh) and the mirror of chunk k; returns the batch and the
    fresh chunk (the next step's `prev`)."""
    if prev is None:
        prev = render(sample_factors(cfg.fresh, _chunk_seed(cfg, step)), RESOLUTION)
    new = render(sample_factors(cfg.fresh, _chunk_seed(cfg, step + 1)), RESOLUTION)
    mirrored = mirror_factors(prev.factors)
    factors = Factors({k: torch.cat([new.factors[k], mirrored[k]]) for k in new.factors.values})
    img = torch.cat([new.img, prev.img.flip(-1)])
    parts = torch.cat([new.parts, prev.parts.flip(-1)])
    return img.clone(), parts.clone(), factors, new  # clone: renders are inference tensors


def _quick_metrics(model: Predictor, val) -> str:
    p = model.predict(val.img)
    r2 = min((_r2(p.factors[s.name], val.factors[s.name],
                  (s.high - s.low) if s.name in CIRCULAR else None), s.name) for s in CONTINUOUS)
    acc = []
    for s in CATEGORICAL:
        hit = (p.factors[s.name] == val.factors[s.name]).float()
        mask = _visible(s, val.factors)
        acc.append((float(hit.mean() if mask is None else hit[mask].mean()), s.name))
    ious = [float(((p.parts == k) & (val.parts == k)).sum() / ((p.parts == k) | (val.parts == k)).sum())
            for k in range(len(PART_NAMES))]
    return (f"val: min R2 {r2[0]:.3f} ({r2[1]}), min acc {min(acc)[0]:.3f} ({min(acc)[1]}), "
            f"mIoU {sum(ious) / len(ious):.3f}")


def train_predictor(cfg: PredictorTrainConfig, run_dir: Path, *, checkpoint_every: int = 100,
                    log_every: int = 20, eval_every: int = 250,
                    progress: Callable[[str], None] = print) -> Predictor:
    """Train, or resume from run_dir/checkpoint.pt, for cfg.steps steps; returns the model
    (eval mode). Progress lines go to `progress`."""
    run_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path = run_dir / "checkpoint.pt"
    with torch.random.fork_rng(devices=[]):  # seeded init, global RNG left as it was
        torch.manual_seed(cfg.seed)
        model = Predictor(cfg.model).to(memory_format=torch.channels_last)
    opt = _optimizer(model, cfg)
    step, elapsed = 0, 0.0
    if ckpt_path.is_file():
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
        if ckpt["config"] != json.loads(json.dumps(asdict(cfg))):
            raise ValueError(f"{ckpt_path} was written with another config; use a new run dir.")
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        step, elapsed = ckpt["step"], ckpt["elapsed"]
        progress(f"resumed at step {step}/{cfg.steps} ({elapsed / 60:.1f} min so far)")
    elif cfg.init:
        missing, unexpected = model.load_state_dict(load_predictor(cfg.init).state_dict(),
                                                    strict=False)
        if unexpected or any(not k.startswith("refine.") for k in missing):
            raise ValueError(f"{cfg.init} does not fit this model: missing {missing}, "
                             f"unexpected {unexpected}.")
        progress(f"initialised from {cfg.init}" + (" (new: refine block)" if missing else ""))
    val = render(sample_factors(256, EVAL_SEED + 99), RESOLUTION)
    part_weight = None
    if cfg.part_balance > 0:  # frequencies from the fixed validation renders: deterministic
        freq = torch.bincount(val.parts.flatten(), minlength=len(PART_NAMES)).double() + 1
        freq /= freq.sum()
        part_weight = freq.pow(-cfg.part_balance)
        part_weight = (part_weight / (freq * part_weight).sum()).float()
    model.train()
    prev, t0, t_log = None, time.time() - elapsed, time.time()
    sums = torch.zeros(3)
    while step < cfg.steps:
        img, parts, factors, prev = _batch(cfg, step, prev)
        for group in opt.param_groups:
            group["lr"] = _lr(cfg, step)
        losses = _losses(model(img), factors, parts, cfg.reg_weight, part_weight)
        opt.zero_grad(set_to_none=True)
        losses.total.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        sums += torch.stack([losses.reg, losses.cls, losses.parts])
        step += 1
        if step % log_every == 0 or step == cfg.steps:
            now = time.time()
            rate = log_every / max(now - t_log, 1e-9)
            reg, cls, prt = (sums / log_every).tolist()
            progress(f"step {step}/{cfg.steps} lr {_lr(cfg, step - 1):.2e} reg {reg:.4f} "
                     f"cls {cls:.4f} parts {prt:.4f} | {rate:.2f} steps/s, "
                     f"{(now - t0) / 60:.1f} min, eta {(cfg.steps - step) / rate / 60:.1f} min")
            sums.zero_()
            t_log = now
        if step % eval_every == 0 or step == cfg.steps:
            progress(_quick_metrics(model, val))
            model.train()
        if step % checkpoint_every == 0 or step == cfg.steps:
            tmp = ckpt_path.with_suffix(".tmp")
            torch.save({"config": asdict(cfg), "model": model.state_dict(),
                        "optimizer": opt.state_dict(), "step": step,
                        "elapsed": time.time() - t0}, tmp)
            os.replace(tmp, ckpt_path)
    return model.eval()


def finetune_on_pool(model: Predictor, pool, *, seconds: float, batch: int = 256, lr: float = 1e-3,
                     min_lr_ratio: float = 0.02, weight_decay: float = 0.02, reg_weight: float = 2.0,
                     part_balance: float = 0.5, grad_clip: float = 2.0, seed: int = 0,
                     device: str | torch.device = "cpu", out: Path | None = None,
                     export_every_s: float = 60.0, progress: Callable[[str], None] = print) -> Predictor:
    """Continue training on a pre-rendered `training.demo.pool.Pool` for `seconds` of wall-clock
    time (the GPU path: batches drawn on the device, half of each mirrored). The learning rate
    follows a cosine over the time budget. With `out`, float32 weights are saved there every
    `export_every_s` seconds and at the end. Returns the model in eval mode on `device`."""
    device = torch.device(device)
    model = model.to(device).train().requires_grad_(True)
    pool = pool.to(device)
    cfg = PredictorTrainConfig(lr=lr, weight_decay=weight_decay)
    opt = _optimizer(model, cfg)
    freq = torch.bincount(pool.parts[:20000].flatten().long(), minlength=len(PART_NAMES)).double() + 1
    freq /= freq.sum()
    weight = freq.pow(-part_balance)
    part_weight = (weight / (freq * weight).sum()).float().to(device)
    g = torch.Generator(device).manual_seed(seed)
    t0 = t_log = t_export = time.time()
    step, sums = 0, torch.zeros(3, device=device)
    while (frac := (time.time() - t0) / seconds) < 1:
        cur = lr * min(1.0, (step + 1) / 100) * (min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * frac)))
        for group in opt.param_groups:
            group["lr"] = cur
        index = torch.randint(len(pool), [batch], generator=g, device=device)
        img, parts, vec = pool.batch(index)
        flip = torch.arange(batch, device=device) < batch // 2
        img = torch.where(flip[:, None, None, None], img.flip(-1), img)
        parts = torch.where(flip[:, None, None], parts.flip(-1), parts)
        vec = vec.clone()
        for name in ("yaw", "light_azimuth"):
            j = [s.name for s in FACTORS].index(name)
            vec[:, j] = torch.where(flip, -vec[:, j], vec[:, j])
        losses = _losses(model(img.contiguous(memory_format=torch.channels_last)), factors_from_vectors(vec),
                         parts, reg_weight, part_weight)
        opt.zero_grad(set_to_none=True)
        losses.total.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        opt.step()
        sums += torch.stack([losses.reg, losses.cls, losses.parts])
        step += 1
        if step % 200 == 0:
            now = time.time()
            reg, cls, prt = (sums / 200).tolist()
            sums.zero_()
            progress(f"step {step} lr {cur:.2e} reg {reg:.4f} cls {cls:.4f} parts {prt:.4f} | "
                     f"{200 / (now - t_log):.1f} steps/s, {(now - t0) / 60:.1f} min")
            t_log = now
        if out is not None and time.time() - t_export >= export_every_s:
            save_predictor(model, out, dtype=torch.float32)
            model.train()
            t_export = time.time()
    model.eval()
    if out is not None:
        save_predictor(model, out, dtype=torch.float32, extra={"finetune": {
            "seconds": seconds, "steps": step, "batch": batch, "lr": lr, "part_balance": part_balance,
            "pool_seed": pool.seed, "pool_size": len(pool), "device": str(device)}})
    progress(f"fine-tuned {step} steps of {batch}")
    return model


# ----------------------------------------------------------------------------- command line

def _sidecar(path: Path) -> Path:
    return path.with_suffix(".json")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m training.demo.predictor", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    tr = sub.add_parser("train", help="train (or resume) and save the weights")
    tr.add_argument("--out", type=Path, default=DEFAULT_PATH)
    tr.add_argument("--run-dir", type=Path, default=Path("runs/predictor"))
    tr.add_argument("--steps", type=int, default=PredictorTrainConfig.steps)
    tr.add_argument("--seed", type=int, default=PredictorTrainConfig.seed)
    tr.add_argument("--lr", type=float, default=PredictorTrainConfig.lr)
    tr.add_argument("--warmup", type=int, default=PredictorTrainConfig.warmup)
    tr.add_argument("--part-balance", type=float, default=PredictorTrainConfig.part_balance)
    tr.add_argument("--init", default="", help="continue from these saved weights")
    tr.add_argument("--refine-channels", type=int, default=PredictorConfig.refine_channels)
    tr.add_argument("--threads", type=int, default=2)
    tr.add_argument("--fp32", action="store_true", help="store float32 instead of float16")
    ft = sub.add_parser("finetune", help="continue training on a pre-rendered pool (GPU path)")
    ft.add_argument("--init", type=Path, default=DEFAULT_PATH)
    ft.add_argument("--pool", type=Path, required=True)
    ft.add_argument("--out", type=Path, required=True)
    ft.add_argument("--seconds", type=float, required=True)
    ft.add_argument("--batch", type=int, default=256)
    ft.add_argument("--lr", type=float, default=1e-3)
    ft.add_argument("--device", default="cpu")
    ft.add_argument("--threads", type=int, default=2)
    ev = sub.add_parser("evaluate", help="score saved weights on fresh renders, record in JSON")
    ev.add_argument("--weights", type=Path, default=DEFAULT_PATH)
    ev.add_argument("--n", type=int, default=2000)
    ev.add_argument("--seed", type=int, default=EVAL_SEED)
    ev.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.cmd == "finetune":
        finetune_on_pool(load_predictor(args.init), load_pool(args.pool), seconds=args.seconds,
                         batch=args.batch, lr=args.lr, device=args.device, out=args.out,
                         progress=lambda s: print(s, flush=True))
        return
    if args.cmd == "train":
        cfg = PredictorTrainConfig(steps=args.steps, seed=args.seed, lr=args.lr,
                                   warmup=args.warmup, part_balance=args.part_balance,
                                   init=args.init, model=PredictorConfig(
                                       refine_channels=args.refine_channels))
        t0 = time.time()
        model = train_predictor(cfg, args.run_dir, progress=lambda s: print(s, flush=True))
        ckpt = torch.load(args.run_dir / "checkpoint.pt", map_location="cpu", weights_only=True)
        dtype = torch.float32 if args.fp32 else torch.float16
        training = {"config": asdict(cfg), "steps": cfg.steps,
                    "images_per_step": 2 * cfg.fresh, "rendered_images": cfg.fresh * (cfg.steps + 1),
                    "seed": cfg.seed, "wall_minutes": round(ckpt["elapsed"] / 60, 1),
                    "threads": args.threads, "session_minutes": round((time.time() - t0) / 60, 1)}
        init_side = _sidecar(Path(cfg.init)) if cfg.init else None
        if init_side is not None and init_side.is_file():  # a continuation: keep the chain
            training["previous"] = json.loads(init_side.read_text()).get("training")
        save_predictor(model, args.out, dtype=dtype, extra={"training": training})
        info = {"file": args.out.name, "storage_dtype": str(dtype).removeprefix("torch."),
                "params": model.num_params(), "model_config": asdict(model.config),
                "training": training}
        _sidecar(args.out).write_text(json.dumps(info, indent=2) + "\n")
        print(f"saved {args.out} ({model.num_params()} parameters, {dtype})")
    else:
        model = load_predictor(args.weights)
        t0 = time.time()
        metrics = evaluate_predictor(model, n=args.n, seed=args.seed)
        metrics["seconds"] = round(time.time() - t0, 1)
        _print_metrics(metrics)
        side = _sidecar(args.weights)
        info = json.loads(side.read_text()) if side.is_file() else {}
        info["metrics"] = metrics
        side.write_text(json.dumps(info, indent=2) + "\n")
        print(f"metrics recorded in {side}")


TARGETS = {"accuracy": 0.95, "r2": 0.9, "miou": 0.8}


def _print_metrics(m: dict) -> None:
    print(f"held-out fresh renders: n={m['n']} seed={m['seed']}")
    for kind, label in (("r2", "R2"), ("accuracy", "accuracy")):
        for name, v in m[kind].items():
            flag = "ok" if v >= TARGETS[kind] else "MISS"
            print(f"  {label:9s} {name:16s} {v:.4f}  (target {TARGETS[kind]})  {flag}")
    for name, v in m["part_iou"].items():
        print(f"  IoU       {name:16s} {v:.4f}")
    print(f"  mIoU      {m['miou']:.4f}  (target {TARGETS['miou']})  "
          f"{'ok' if m['miou'] >= TARGETS['miou'] else 'MISS'}")


if __name__ == "__main__":
    main()
