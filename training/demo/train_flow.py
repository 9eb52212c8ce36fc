"""Training the StyleFlow prior of the demo world (StyleFlow: Abdal et al., ACM TOG 2021,
RameenAbdal/StyleFlow; its flow follows FFJORD, Grathwohl et al., ICLR 2019); its conditions and
loading at run time: `shared.demo.flow`.

The flow is `shared.archs.styleflow.StyleFlow` at a small size: W of the demo generator (128
dims) conditioned on 8 attributes the demo predictor reads reliably on generated faces (held-out
R^2 >= 0.98, accuracy >= 0.999 on renders, `bundle/predictor.json`), chosen to mirror StyleFlow's
own: yaw, pitch, smile (its Expression), the light's azimuth and elevation (its lighting), and the
probabilities of glasses, of a bald head (its Baldness) and of a beard. Training pairs are
(w = mapping(z), the predictor's reading of G(w)) for seeded z, as StyleFlow pairs W with the
attributes read off the generated images; the flow sees each condition standardised by its
training mean and std.

Training is maximum likelihood, log p(w | c) = log N(z) + log|det| of the two batch norms (fixed
statistics: the data's mean and variance in, identity out, learned log-scale affines) + the
integral of tr(df/dx) along the ODE. Adaptive dopri5 with the adjoint is too slow for a CPU budget,
so training discretises the ODE with a fixed-step classic Runge-Kutta 4 (`rk4_steps` steps over
[0, T], T = sqrt_end_time^2 learned) and backpropagates through the steps; the trace is the
Hutchinson estimate with one Rademacher vector per sample (FFJORD). The RNODE regularisers
(Finlay et al., "How to train your neural ODE", ICML 2020: kinetic energy |f|^2 and the Jacobian's
Frobenius norm, estimated with the same vector) keep the dynamics straight, so the fixed-step
solution agrees with the adaptive one used at inference (`StyleFlow.forward` / `reverse`,
dopri5, atol = rtol = 1e-5); `finalise` measures that agreement, the forward-reverse round trip,
the held-out NLL (exact trace) against a full-covariance Gaussian and against shuffled conditions,
and picks the W+ rows each attribute's edit writes (measured, see `select_rows`).

    python -m training.demo.train_flow --out shared/demo/bundle/flow.safetensors [--steps 4000]
        [--batch 256] [--threads 1] [--device cpu] [--run-dir runs/flow] [--max-minutes 8]

The run folder holds the labelled pairs (data.pt), a checkpoint every 100 steps (state.pt; a
rerun resumes from it) and log.jsonl. Weights ship as float16 safetensors with the config and
conditions in the header, plus a JSON sidecar (`flow.json`) with the training record.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import Tensor

from shared import load_generator
from shared.archs.styleflow import StyleFlow
from shared.demo.bundle import bundle_file
from shared.demo.flow import CONDITIONS, FORMAT, conditions_from_labels, read_conditions
from shared.demo.predictor import DEFAULT_PATH as PREDICTOR
from shared.demo.predictor import load_predictor
from shared.editing.styleflow_edit import FlowAttribute, FlowModel, edit_ws
from shared.latents import layer_ranges
from shared.portraits import FACTORS
from training.demo.directions import label_samples
from training.demo.edit_eval import EDIT_EVAL_SEED

__all__ = ["FlowTrainConfig", "build_demo_flow", "flow_edit_report", "flow_log_likelihood",
           "save_flow", "select_rows", "train_flow"]

LABEL_SEED = 5_100_000          # training pairs; disjoint from the edit evaluation (7.4e6) and tests
SELECT_SEED = 5_200_000         # the latents `select_rows` measures on


@dataclass(frozen=True)
class FlowTrainConfig:
    hidden: tuple[int, ...] = (112, 112, 112)  # ODE net widths (128 -> hidden -> 128)
    samples: int = 8_000          # labelled (w, conditions) pairs
    holdout: int = 800            # of them, held out for the NLL
    steps: int = 4_000
    batch: int = 256
    lr: float = 1e-3
    min_lr: float = 5e-5          # cosine decay to this
    warmup: int = 50
    rk4_steps: int = 4            # fixed RK4 steps over [0, T] in training
    kinetic: float = 0.01         # RNODE weights
    jacobian: float = 0.01
    grad_clip: float = 5.0
    psi: float = 1.0              # truncation of the training latents
    seed: int = 0                 # batches and Hutchinson vectors
    label_seed: int = LABEL_SEED


# ---- likelihood with a fixed-step RK4 ----------------------------------------------------------------
def _net_out(flow: StyleFlow, t: Tensor, x: Tensor, c: Tensor) -> Tensor:
    return flow.chain[1].odefunc.diffeq(torch.cat([t.reshape(1, 1).expand(x.shape[0], 1), c], 1), x)


def _dynamics(flow: StyleFlow, c: Tensor, eps: Tensor | None, create_graph: bool):
    """f(t, x) -> (dx/dt, tr(df/dx) (Hutchinson with `eps`, exact when None), |f|^2, |eps^T J|^2)."""
    def f(t: Tensor, x: Tensor):
        out = _net_out(flow, t, x, c)
        if eps is None:  # exact: one vector-Jacobian product per basis vector, batched
            d = x.shape[1]
            basis = torch.eye(d, dtype=x.dtype, device=x.device)[:, None, :].expand(d, *x.shape)
            jac = torch.autograd.grad(out, x, basis, create_graph=create_graph, is_grads_batched=True)[0]
            tr = torch.diagonal(jac, dim1=0, dim2=2).sum(-1)                  # [d, N, d] -> [N]
            return out, tr, out.square().sum(1), jac.square().sum((0, 2))
        v = torch.autograd.grad(out, x, eps, create_graph=create_graph)[0]
        return out, (v * eps).sum(1), out.square().sum(1), v.square().sum(1)
    return f


def flow_log_likelihood(flow: StyleFlow, w: Tensor, cond: Tensor, *, steps: int, eps: Tensor | None = None,
                        create_graph: bool = True) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """log p(w | cond) under `flow` with `steps` RK4 steps.

    Args:
        w: [N, D] points of W; cond: [N, K] the flow's (normalised) condition.
        eps: [N, D] Hutchinson vector (Rademacher), or None for the exact trace (D vector-Jacobian
            products per stage: evaluation only).
        create_graph: keep the graph for training (False: values only).
    Returns:
        (log-likelihood [N] in nats, z [N, D], kinetic energy [N], Jacobian Frobenius norm [N]),
        the last two integrated over [0, T].
    """
    bn0, cnf, bn2 = flow.chain
    with torch.enable_grad():
        x = bn0(w)
        if not x.requires_grad:
            x = x.detach().requires_grad_(True)
        T = cnf.sqrt_end_time.square()
        h = T / steps
        f = _dynamics(flow, cond, eps, create_graph)
        acc = [torch.zeros(w.shape[0], dtype=w.dtype, device=w.device) for _ in range(3)]
        for i in range(steps):
            t = i * h
            k1 = f(t, x)
            k2 = f(t + h / 2, x + h / 2 * k1[0])
            k3 = f(t + h / 2, x + h / 2 * k2[0])
            k4 = f(t + h, x + h * k3[0])
            x = x + h / 6 * (k1[0] + 2 * k2[0] + 2 * k3[0] + k4[0])
            acc = [a + h / 6 * (q1 + 2 * q2 + 2 * q3 + q4)
                   for a, q1, q2, q3, q4 in zip(acc, k1[1:], k2[1:], k3[1:], k4[1:])]
        z = bn2(x)
        logdet = bn0.logdet().sum() + bn2.logdet().sum()
        logp = -0.5 * (z.square().sum(1) + z.shape[1] * math.log(2 * math.pi)) + acc[0] + logdet
    if not create_graph:
        return logp.detach(), z.detach(), acc[1].detach(), acc[2].detach()
    return logp, z, acc[1], acc[2]


# ---- data, model, checkpoints ------------------------------------------------------------------------
def _label(G, predictor, cfg: FlowTrainConfig, log: Callable[[str], None]) -> tuple[Tensor, Tensor]:
    ws, labels = label_samples(G, predictor, cfg.samples, cfg.label_seed, batch=100, psi=cfg.psi,
                               progress=lambda s: log(s) if s.split("/")[0].endswith("000") else None)
    return ws.float().cpu(), conditions_from_labels(labels)


def _new_flow(cfg: FlowTrainConfig, w: Tensor) -> StyleFlow:
    flow = StyleFlow(w.shape[1], cfg.hidden, len(CONDITIONS))
    bn0 = flow.chain[0]
    bn0.running_mean.copy_(w.mean(0))
    bn0.running_var.copy_(w.var(0))
    return flow


def _lr(cfg: FlowTrainConfig, step: int) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    q = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * min(1.0, q)))


def _save_state(path: Path, flow: StyleFlow, opt, step: int, seconds: float, cfg: FlowTrainConfig) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"flow": flow.state_dict(), "opt": opt.state_dict(), "step": step, "seconds": seconds,
                "config": asdict(cfg)}, tmp)
    os.replace(tmp, path)


def train_flow(cfg: FlowTrainConfig, run_dir: Path, G, predictor, *, device: str = "cpu",
               max_seconds: float | None = None, log: Callable[[str], None] = lambda s: None):
    """Label the pairs (or reuse run_dir/data.pt), then train (resuming from run_dir/state.pt).
    Returns (flow on the CPU in eval mode, float32; data dict; record of the run)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    data_path, state_path = run_dir / "data.pt", run_dir / "state.pt"
    if data_path.is_file():
        data = torch.load(data_path, weights_only=True)
    else:
        t0 = time.time()
        ws, conds = _label(G, predictor, cfg, log)
        data = {"w": ws, "cond": conds, "seconds": torch.tensor(time.time() - t0)}
        torch.save(data, data_path)
    label_seconds = float(data["seconds"])
    n_train = cfg.samples - cfg.holdout
    w_all, c_all = data["w"], data["cond"]
    c_mean, c_std = c_all[:n_train].mean(0), c_all[:n_train].std(0).clamp_min(1e-3)
    w_train = w_all[:n_train].to(device)
    c_train = ((c_all[:n_train] - c_mean) / c_std).to(device)
    flow = _new_flow(cfg, w_all[:n_train]).to(device).train()
    params = [p for n, p in flow.named_parameters()]
    opt = torch.optim.Adam(params, lr=cfg.lr)
    step, seconds = 0, 0.0
    if state_path.is_file():
        st = torch.load(state_path, weights_only=True, map_location=device)
        flow.load_state_dict(st["flow"])
        opt.load_state_dict(st["opt"])
        step, seconds = int(st["step"]), float(st["seconds"])
        log(f"resumed at step {step} ({seconds / 60:.1f} min trained)")
    t_start, last_save = time.time() - seconds, step
    with (run_dir / "log.jsonl").open("a") as logf:
        while step < cfg.steps:
            if max_seconds is not None and time.time() - t_start >= max_seconds:
                log(f"time budget reached at step {step}")
                break
            g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
            idx = torch.randint(n_train, (cfg.batch,), generator=g)
            eps = (torch.randint(0, 2, (cfg.batch, w_train.shape[1]), generator=g) * 2 - 1).float().to(device)
            for group in opt.param_groups:
                group["lr"] = _lr(cfg, step)
            logp, _, kin, jac = flow_log_likelihood(flow, w_train[idx.to(device)], c_train[idx.to(device)],
                                                    steps=cfg.rk4_steps, eps=eps)
            nll = -logp.mean()
            loss = nll + cfg.kinetic * kin.mean() + cfg.jacobian * jac.mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            opt.step()
            step += 1
            if step % 25 == 0 or step == cfg.steps:
                rec = {"step": step, "nll": nll.item(), "kinetic": kin.mean().item(), "jacobian": jac.mean().item(),
                       "T": flow.chain[1].sqrt_end_time.square().item(), "lr": _lr(cfg, step - 1),
                       "seconds": round(time.time() - t_start, 1)}
                logf.write(json.dumps(rec) + "\n")
                logf.flush()
                log(f"step {step}: nll {rec['nll']:.2f} kinetic {rec['kinetic']:.2f} jacobian {rec['jacobian']:.1f} "
                    f"T {rec['T']:.3f} ({rec['seconds'] / 60:.1f} min)")
            if step - last_save >= 100 or step == cfg.steps:
                _save_state(state_path, flow, opt, step, time.time() - t_start, cfg)
                last_save = step
    seconds = time.time() - t_start
    _save_state(state_path, flow, opt, step, seconds, cfg)
    record = {"steps": step, "batch": cfg.batch, "train_minutes": round(seconds / 60, 2),
              "label_minutes": round(label_seconds / 60, 2), "samples": cfg.samples, "holdout": cfg.holdout,
              "condition_mean": c_mean.tolist(), "condition_std": c_std.tolist(),
              "condition_p01": c_all[:n_train].quantile(0.01, dim=0).tolist(),
              "condition_p99": c_all[:n_train].quantile(0.99, dim=0).tolist()}
    return flow.cpu().eval().requires_grad_(False), data, record


def _quantised(flow: StyleFlow) -> StyleFlow:
    """The same flow with every floating tensor rounded through float16 (what ships)."""
    q = StyleFlow(flow.input_dim, flow.hidden, flow.context_dim)
    q.load_state_dict({k: v.half().float() if v.is_floating_point() else v for k, v in flow.state_dict().items()})
    return q.eval().requires_grad_(False)


# ---- the shipped model ---------------------------------------------------------------------------------
def _flow_model(flow: StyleFlow, record: Mapping, rows: Mapping[str, list[int] | None], num_ws: int) -> FlowModel:
    attrs = tuple(FlowAttribute(c.name, c.unit, c.low, c.high, default=round(m, 4), mean=m, std=s,
                                rows=None if rows.get(c.name) is None else tuple(rows[c.name]))
                  for c, m, s in zip(CONDITIONS, record["condition_mean"], record["condition_std"]))
    return FlowModel(flow, attrs, num_ws, "the demo world's flow")


def save_flow(model: FlowModel, path: Path, sidecar: dict) -> None:
    """float16 safetensors (config and attributes in the header) and `<path>.json` (`sidecar`)."""
    flow = model.flow
    state = {k: (v.half() if v.is_floating_point() else v).contiguous().cpu() for k, v in flow.state_dict().items()}
    meta = {"format": FORMAT,
            "config": json.dumps({"input_dim": flow.input_dim, "hidden": list(flow.hidden),
                                  "context_dim": flow.context_dim, "num_ws": model.num_ws}),
            "attributes": json.dumps([asdict(a) for a in model.attributes])}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    save_file(state, str(tmp), metadata=meta)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
    path.with_suffix(".json").write_text(json.dumps(sidecar, indent=1) + "\n")


# ---- measurements ----------------------------------------------------------------------------------------
def _reader(G, predictor):
    conts = [s for s in FACTORS if s.kind == "continuous"]

    @torch.no_grad()
    def read(ws: Tensor) -> tuple[Tensor, Tensor]:
        p = predictor.predict(G.synthesis(ws, noise_mode="const"))
        return read_conditions(p), torch.stack([p.factors[s.name].float().cpu() for s in conts], 1)
    return read, conts


def _requests(src: Tensor, j: int, change: float) -> list[tuple[Tensor, Tensor]]:
    """(target values [N], requested sign [N]) edits for condition j: +-change x range for a
    continuous one, the other class (1 - round(p)) for a probability."""
    c = CONDITIONS[j]
    if c.classes:
        tgt = 1.0 - src[:, j].round()
        return [(tgt, torch.sign(tgt - src[:, j]))]
    step = change * (c.high - c.low)
    return [(src[:, j] + s * step, torch.full_like(src[:, j], s)) for s in (1.0, -1.0)]


def _score(read, conts, ws_edit: Tensor, src: Tensor, base_f: Tensor, j: int, sign: Tensor) -> dict:
    c = CONDITIONS[j]
    new, f = read(ws_edit)
    delta = new[:, j] - src[:, j]
    size = c.high - c.low
    others = [k for k, s in enumerate(conts) if s.name != c.factor]
    rng = torch.tensor([conts[k].high - conts[k].low for k in others])
    other = ((f[:, others] - base_f[:, others]).abs() / rng).mean(1)
    return {"ok": (sign * delta > 0).float(), "target": (delta.abs() / size), "other": other}


@torch.no_grad()
def flow_edit_report(G, predictor, model: FlowModel, *, n: int = 100, seed: int | None = None, change: float = 0.25,
                     rows: str = "attribute", progress: Callable[[float, str], object] | None = None) -> dict:
    """StyleFlow edits of n fresh latents (seeded as `training.demo.edit_eval`), judged by the
    predictor. Per condition: continuous ones are moved up and down by `change` x the factor's
    range, probabilities are flipped to the other class (target 1 - round(p)). Returns
    {name: {'success': share of edits where the read value moves the requested way,
    'target_change': mean |change| read (share of range, or probability), 'other_change': mean
    |change| of the other continuous factors (share of range, as edit_eval), 'edits': count,
    'rows': rows written}}."""
    read, conts = _reader(G, predictor)
    ws = G.mapping(torch.randn([n, G.z_dim], generator=torch.Generator().manual_seed(
        EDIT_EVAL_SEED if seed is None else seed)))
    src, base_f = read(ws)
    out = {}
    for j, c in enumerate(CONDITIONS):
        parts = []
        for tgt, sign in _requests(src, j, change):
            e = edit_ws(model, ws, src, {c.name: tgt}, rows=rows)
            parts.append(_score(read, conts, e.ws, src, base_f, j, sign))
        cat = {k: torch.cat([p[k] for p in parts]) for k in parts[0]}
        out[c.name] = {"success": float(cat["ok"].mean()), "target_change": float(cat["target"].mean()),
                       "other_change": float(cat["other"].mean()), "edits": len(cat["ok"]),
                       "rows": list(e.steps[0][2]) if e.steps else None}
        if progress is not None:
            progress((j + 1) / len(CONDITIONS), f"{c.name}: success {out[c.name]['success']:.2f}")
    return out


@torch.no_grad()
def select_rows(G, predictor, model: FlowModel, *, n: int = 48, seed: int = SELECT_SEED, change: float = 0.25,
                slack: float = 0.05, log: Callable[[str], None] = lambda s: None) -> tuple[dict, dict]:
    """Which W+ rows each attribute's edit should write, measured the way the official editor's
    table keeps an edit to few rows: every candidate set from the generator's coarse / middle /
    fine ranges (and their unions) is scored on n latents (a seed of its own); the fewest rows
    whose success is within `slack` of the best candidate's win (ties: smaller other-factor
    change). Returns ({name: rows}, {name: {candidate: scores}})."""
    rng = {k: tuple(v.rows) for k, v in layer_ranges(G).items()}
    cands = {"all": tuple(range(G.num_ws)), "coarse": rng["coarse"], "middle": rng["middle"], "fine": rng["fine"],
             "coarse+middle": rng["coarse"] + rng["middle"], "middle+fine": rng["middle"] + rng["fine"]}
    read, conts = _reader(G, predictor)
    ws = G.mapping(torch.randn([n, G.z_dim], generator=torch.Generator().manual_seed(seed)))
    src, base_f = read(ws)
    chosen, table = {}, {}
    for j, c in enumerate(CONDITIONS):
        scores = {k: [] for k in cands}
        for tgt, sign in _requests(src, j, change):
            full = edit_ws(model, ws, src, {c.name: tgt}, rows="all").ws
            for k, rows in cands.items():
                mask = torch.zeros(G.num_ws, dtype=torch.bool)
                mask[list(rows)] = True
                scores[k].append(_score(read, conts, torch.where(mask[None, :, None], full, ws), src, base_f, j, sign))
        res = {k: {m: float(torch.cat([p[m] for p in v]).mean()) for m in ("ok", "target", "other")}
               for k, v in scores.items()}
        best = max(r["ok"] for r in res.values())
        ok = [k for k, r in res.items() if r["ok"] >= best - slack]
        pick = min(ok, key=lambda k: (len(cands[k]), res[k]["other"]))
        chosen[c.name] = list(cands[pick])
        table[c.name] = {k: {"success": round(r["ok"], 3), "target_change": round(r["target"], 4),
                             "other_change": round(r["other"], 4)} for k, r in res.items()}
        log(f"rows for {c.name}: {pick} {cands[pick]} ("
            + ", ".join(f"{k} {r['ok']:.2f}" for k, r in res.items()) + ")")
    return chosen, table


def _held_out(flow: StyleFlow, w: Tensor, c: Tensor, steps: int, batch: int = 250) -> Tensor:
    return torch.cat([flow_log_likelihood(flow, w[i:i + batch], c[i:i + batch], steps=steps, create_graph=False)[0]
                      for i in range(0, len(w), batch)])


def _gaussian_nll(train: Tensor, test: Tensor) -> float:
    x, y = train.double(), test.double()
    mu, cov = x.mean(0), torch.cov(x.T) + 1e-6 * torch.eye(x.shape[1], dtype=torch.float64)
    return float(-torch.distributions.MultivariateNormal(mu, cov).log_prob(y).mean())


def finalise(flow: StyleFlow, data: dict, record: dict, cfg: FlowTrainConfig, G, predictor, out: Path, *,
             select_n: int = 48, log: Callable[[str], None] = lambda s: None) -> dict:
    """Round the weights to float16, measure them, choose the rows, write `out` and its JSON."""
    q = _quantised(flow)
    n_train = cfg.samples - cfg.holdout
    mean, std = torch.tensor(record["condition_mean"]), torch.tensor(record["condition_std"])
    w_test, c_test = data["w"][n_train:], (data["cond"][n_train:] - mean) / std
    t0 = time.time()
    nll = float(-_held_out(q, w_test, c_test, cfg.rk4_steps).mean())
    nll_fine = float(-_held_out(q, w_test, c_test, 4 * cfg.rk4_steps).mean())
    perm = torch.randperm(len(c_test), generator=torch.Generator().manual_seed(1))
    nll_shuffled = float(-_held_out(q, w_test, c_test[perm], cfg.rk4_steps).mean())
    gauss = _gaussian_nll(data["w"][:n_train], w_test)
    log(f"held-out NLL {nll:.2f} nats (RK4 x{4 * cfg.rk4_steps}: {nll_fine:.2f}; shuffled conditions "
        f"{nll_shuffled:.2f}; Gaussian {gauss:.2f}) in {time.time() - t0:.0f} s")
    w_rt, c_rt = w_test[:200, None, :], c_test[:200]
    z = q(w_rt, c_rt)                                                       # dopri5
    back = q.reverse(z, c_rt)
    _, z_rk4, _, _ = flow_log_likelihood(q, w_rt[:, 0], c_rt, steps=cfg.rk4_steps, eps=torch.zeros_like(w_rt[:, 0]),
                                         create_graph=False)
    round_trip = float((back - w_rt).abs().max())
    rk4_gap = float((z_rk4 - z[:, 0]).abs().max())
    log(f"dopri5 round trip max |w - w'| {round_trip:.2e}; |z_dopri5 - z_rk4| max {rk4_gap:.3f} "
        f"(z std {float(z.std()):.2f})")
    model = _flow_model(q, record, {}, int(G.num_ws))
    rows, table = select_rows(G, predictor, model, n=select_n, log=log)
    model = _flow_model(q, record, rows, int(G.num_ws))
    sidecar = {"file": out.name, "storage_dtype": "float16",
               "params": sum(p.numel() for p in q.parameters()),
               "model_config": {"input_dim": q.input_dim, "hidden": list(q.hidden), "context_dim": q.context_dim,
                                "num_ws": int(G.num_ws), "generator": "demo-portraits-stylegan2-64"},
               "conditions": [{"name": a.name, "unit": a.unit, "mean": a.mean, "std": a.std, "slider": [a.low, a.high],
                               "training_p01_p99": [record["condition_p01"][i], record["condition_p99"][i]],
                               "rows": list(a.rows) if a.rows is not None else None,
                               "read_as": (f"P({CONDITIONS[i].factor} in {list(CONDITIONS[i].classes)})"
                                           if CONDITIONS[i].classes else f"predicted {CONDITIONS[i].factor}")}
                              for i, a in enumerate(model.attributes)],
               "training": {**{k: v for k, v in record.items() if not k.startswith("condition_")},
                            "config": asdict(cfg), "solver": f"RK4, {cfg.rk4_steps} fixed steps (training); "
                                                             "dopri5 atol=rtol=1e-5 (inference)",
                            "labeller": "shared.demo.predictor", "generator": "demo-portraits-stylegan2-64",
                            "script": "python -m training.demo.train_flow"},
               "metrics": {"heldout_n": len(w_test), "heldout_nll_nats": nll, "heldout_nll_rk4_x4_steps": nll_fine,
                           "heldout_nll_shuffled_conditions": nll_shuffled, "heldout_nll_gaussian": gauss,
                           "round_trip_max_abs_dopri5": round_trip, "z_rk4_vs_dopri5_max_abs": rk4_gap,
                           "end_time": float(q.end_time)},
               "rows_selection": {"n": select_n, "seed": SELECT_SEED, "change": 0.25, "slack": 0.05, "table": table}}
    save_flow(model, out, sidecar)
    log(f"wrote {out} ({out.stat().st_size} bytes) and {out.with_suffix('.json').name}")
    return sidecar


def _final_train_nll(log_path: Path, last: int = 4) -> float | None:
    """Mean training-batch NLL of the last `last` logged records (25 steps apart)."""
    if not log_path.is_file():
        return None
    recs = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
    return round(sum(r["nll"] for r in recs[-last:]) / len(recs[-last:]), 3) if recs else None


def build_demo_flow(G, predictor, cfg: FlowTrainConfig, run_dir: Path, out: Path, *, device: str = "cpu",
                    threads: int = 1, max_seconds: float | None = None, command: str = "", select_n: int = 48,
                    log: Callable[[str], None] = lambda s: None) -> dict:
    """Train (or resume) the flow in `run_dir`, then `finalise` it into `out` and its JSON sidecar
    with the training record (times, final training NLL, `command`); the W+ rows of each attribute
    are chosen on `select_n` latents. Returns the sidecar."""
    t0 = time.time()
    flow, data, record = train_flow(cfg, run_dir, G, predictor, device=device, log=log, max_seconds=max_seconds)
    record.update({"threads": threads, "device": device})
    t_fin = time.time()
    side = finalise(flow, data, record, cfg, G, predictor, out, select_n=select_n, log=log)
    side["training"]["finalise_minutes"] = round((time.time() - t_fin) / 60, 2)
    side["training"]["final_train_nll"] = _final_train_nll(Path(run_dir) / "log.jsonl")
    side["training"]["wall_minutes"] = round((time.time() - t0) / 60, 2)  # this session (resumed runs: less)
    side["training"]["command"] = command
    Path(out).with_suffix(".json").write_text(json.dumps(side, indent=1) + "\n")
    log("done")
    return side


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m training.demo.train_flow", description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--steps", type=int, default=FlowTrainConfig.steps)
    ap.add_argument("--batch", type=int, default=FlowTrainConfig.batch)
    ap.add_argument("--samples", type=int, default=FlowTrainConfig.samples)
    ap.add_argument("--holdout", type=int, default=FlowTrainConfig.holdout)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--run-dir", type=Path, default=Path("runs/flow"))
    ap.add_argument("--max-minutes", type=float, default=None, help="stop training after this long (then finalise)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    if not 0 < args.holdout < args.samples:
        ap.error("--holdout must be between 0 and --samples")
    cfg = FlowTrainConfig(steps=args.steps, batch=args.batch, samples=args.samples, holdout=args.holdout)
    t0 = time.time()

    def log(s: str) -> None:
        print(f"[{(time.time() - t0) / 60:5.1f} min] {s}", flush=True)

    G = load_generator(bundle_file("generator.safetensors")).eval().requires_grad_(False)
    words = argv if argv is not None else sys.argv[1:]
    build_demo_flow(G, load_predictor(PREDICTOR), cfg, args.run_dir, args.out, device=args.device, threads=args.threads,
                    max_seconds=None if args.max_minutes is None else 60 * args.max_minutes,
                    command="python -m training.demo.train_flow " + " ".join(words), log=log)


if __name__ == "__main__":
    main()
