"""Build the demo-world bundle (shared/demo/bundle/) in one command, resumably.

Stages, in order; each trains or fits with the project's own code, checkpoints into
`<runs>/<stage>/`, and is skipped when its bundle file already exists (`--force STAGE` redoes
it). Interrupt at any time and run the same command again to continue.

  predictor   attribute/part predictor (training/demo/predictor.py)
  clip        small open_clip CLIP on render/caption pairs (training/demo/clip.py)
  generator   StyleGAN2 on renders, then float16 G_ema with w_avg re-estimated from 20,000 latents.
              cpu/smoke: stage 1 distils the renderer (training/demo/distill.py, z = the factors in
              Gaussian coordinates), stage 2 sharpens it adversarially with the distillation loss
              kept (training/demo/train_gan.py --stage sharpen); gpu: the pure adversarial recipe
  encoder     e4e with a reduced backbone (training/demo/train_encoder.py)
  directions  per-factor W directions labelled by the predictor (shared/demo/directions.py)
  flow        the StyleFlow prior conditioned on the predictor's reading (training/demo/train_flow.py)
  channels    StyleSpace attribute channels (training/demo/attribute_channels.py), written beside the
              bundle as shared/demo/stylespace_channels.json
  relevance   StyleCLIP's global-direction relevance matrix of the generator with the demo CLIP
              (training/styleclip/global_directions.py), beside the bundle in shared/demo/styleclip/
  mappers     the two StyleCLIP latent mappers, glasses and blonde hair (training/styleclip/train_mapper.py),
              each measured by the predictor into its JSON sidecar
  evaluate    the generator report (training/demo/evaluate.py), grids under docs/
  manifest    manifest.json: versions, seeds, training lengths, metrics, sha256 of every file

Time budgets per stage come from a preset. `cpu` gives the generator 3 hours of distillation on a
2-core CPU (the shipped run: 180 kimg in 2.9 h) and no sharpening (a probe lowered the held-out PSNR;
`--seconds sharpen=1800` turns it on); `gpu` is the pure adversarial recipe on one lent
GPU, where data come from a pool rendered on every CPU (training/demo/pool.py).

    python -m training.demo.build [--preset cpu|gpu] [--device cpu|cuda] [--force STAGE ...] [--only STAGE ...]
"""
from __future__ import annotations

import argparse
import json
import platform
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from shared import hub, load_generator, registry
from shared.demo.bundle import BUNDLE_DIR
from shared.demo.clip import load_demo_clip
from shared.demo.factor_latents import Z_DIM
from shared.demo.predictor import PredictorConfig, load_predictor
from shared.loaders.native import save_native
from shared.portraits import render, sample_factors
from shared.styleclip.clip import load_clip
from shared.styleclip.global_directions import RelevanceSettings, relevance_file
from shared.styleclip.mapper import MapperConfig
from training.demo.attribute_channels import find_attribute_channels
from training.demo.clip import ClipTrainConfig, evaluate_zero_shot, export_bundle, new_model, train_clip
from training.demo.directions import build_direction_set, save_directions
from training.demo.evaluate import TV_TARGET, W1_TARGET, evaluate_generator, print_report, save_grids
from training.demo.pool import load_pool, render_pool
from training.demo.predictor import (PredictorTrainConfig, evaluate_predictor, finetune_on_pool, save_predictor,
                                     train_predictor)
from training.demo.train_encoder import (EncoderTrainConfig, encoder_psnr, load_demo_encoder, save_demo_encoder,
                                         train_encoder)
from training.demo.train_flow import FlowTrainConfig, build_demo_flow
from training.demo.distill import DistillConfig, distill, heldout_psnr
from training.demo.fidelity import fidelity_report, print_fidelity, save_side_by_side
from training.demo.train_gan import GanTrainConfig, train_gan
from training.styleclip.global_directions import build_relevance_file
from training.styleclip.train_mapper import TrainSettings, measure_into_sidecar, train_and_save

BUNDLE = BUNDLE_DIR
DOCS = Path(__file__).resolve().parents[2] / "docs"
STAGES = ("predictor", "clip", "generator", "encoder", "directions", "flow", "channels", "relevance", "mappers",
          "evaluate", "manifest")
FILES = {"predictor": "predictor.safetensors", "clip": "clip.safetensors", "generator": "generator.safetensors",
         "encoder": "encoder.safetensors", "directions": "directions.safetensors", "flow": "flow.safetensors",
         "evaluate": "evaluation.json", "manifest": "manifest.json"}
GENERATOR_ID, CLIP_ID = "demo-portraits-stylegan2-64", "demo-portraits-clip"


@dataclass(frozen=True)
class MapperRecipe:
    """One shipped StyleCLIP mapper: its prompt and the training settings of the shipped file."""
    name: str
    prompt: str
    levels: tuple[str, ...]
    layers: int
    lambda_l2: float
    steps: int = 1200
    batch: int = 8
    lr: float = 0.5


MAPPERS = (MapperRecipe("glasses", "a person wearing glasses", ("coarse", "medium"), 2, 4.0),
           MapperRecipe("blonde_hair", "a person with blonde hair", ("coarse", "medium", "fine"), 1, 2.0))
SEED = 0
#: seconds of training per stage
PRESETS = {
    "cpu": {"predictor": 40 * 60, "clip": 30 * 60, "generator": 180 * 60, "sharpen": 0, "encoder": 20 * 60},
    "gpu": {"predictor": 150, "clip": 420, "generator": 400, "encoder": 150},
    "smoke": {"predictor": 3, "clip": 3, "generator": 3, "sharpen": 3, "encoder": 3},   # tests: seconds each
}
#: how each preset makes the generator: distillation (+ sharpening) or the pure adversarial game
GENERATOR_RECIPES = {"cpu": "distill", "smoke": "distill", "gpu": "adversarial"}
#: sizes of the stages that run a fixed amount of work (smoke: a pipeline check, not usable artifacts)
SIZES = {
    "cpu": {"flow_steps": 4000, "flow_samples": 8000, "flow_holdout": 800, "flow_select_n": 48, "channels_n": 8,
            "relevance_limit": None, "mapper_steps": None, "mapper_sources": 50},
    "smoke": {"flow_steps": 2, "flow_samples": 96, "flow_holdout": 16, "flow_select_n": 4, "channels_n": 1, "relevance_limit": 16,
              "mapper_steps": 2, "mapper_sources": 4},
}
SIZES["gpu"] = SIZES["cpu"]
MAX_BUNDLE_BYTES = 40_000_000  # the demo bundle budget (3D and reposing demo models share it)


@dataclass(frozen=True)
class Job:
    """Where a build reads and writes, and how long and how thoroughly each stage works."""
    runs: Path                      # checkpoints, one folder per stage
    out: Path = BUNDLE              # the bundle folder
    docs: Path = DOCS               # where the evaluation's grids go
    extras: Path = BUNDLE.parent    # derived tables beside the bundle (attribute channels, relevance matrix)
    device: str = "cpu"
    seconds: dict = field(default_factory=dict)   # training seconds per stage
    sizes: dict = field(default_factory=lambda: dict(SIZES["cpu"]))   # work of the fixed-size stages
    eval_n: int = 2000              # generator evaluation; CLIP zero-shot uses half, directions 3x
    generator_recipe: str = "distill"   # "distill" (stage 1 + optional sharpening) or "adversarial"
    encoder_init: str = ""          # start the encoder from this saved demo encoder (e.g. the previous bundle's)
    pool_n: int = 120_000           # GPU path: pre-rendered portraits

    def budget(self, stage: str) -> float:
        return float(self.seconds.get(stage, 0))


def _log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def _pool(job: Job):
    """The GPU path's pre-rendered pool (rendered once, kept in the runs folder); None on the CPU."""
    if job.device == "cpu":
        return None
    path = job.runs / "pool.pt"
    if not path.exists():
        p = render_pool(job.pool_n, SEED, progress=_log)
        torch.save({"img": p.img, "parts": p.parts, "factors": p.factors, "seed": p.seed}, path)
    return load_pool(path)


def stage_predictor(job: Job) -> None:
    out = job.out / FILES["predictor"]
    if job.device == "cpu":   # ~1 step/s of 64 images on 2 cores
        cfg = PredictorTrainConfig(steps=max(2, int(job.budget("predictor"))), part_balance=0.5, seed=SEED,
                                   warmup=min(100, max(1, int(job.budget("predictor")) // 10)),
                                   model=PredictorConfig(refine_channels=24))
        model = train_predictor(cfg, job.runs / "predictor", progress=_log)
        training = {"config": json.loads(json.dumps(cfg.__dict__, default=str)), "device": "cpu"}
    else:
        first = job.runs / "predictor" / "stage1.safetensors"
        if not first.exists():
            cfg = PredictorTrainConfig(steps=300, part_balance=0.5, seed=SEED, model=PredictorConfig(refine_channels=24))
            save_predictor(train_predictor(cfg, job.runs / "predictor", progress=_log), first, dtype=torch.float32)
        model = finetune_on_pool(load_predictor(first), _pool(job), seconds=job.budget("predictor"),
                                 device=job.device, progress=_log).cpu()
        training = {"stage1_steps": 300, "finetune_seconds": job.budget("predictor"), "device": job.device}
    save_predictor(model, out, extra={"training": training})
    out.with_suffix(".json").write_text(json.dumps({"file": out.name, "params": model.num_params(),
                                                    "training": training}, indent=2, default=str) + "\n")
    info = json.loads(out.with_suffix(".json").read_text())
    info["metrics"] = evaluate_predictor(load_predictor(out), n=job.eval_n)
    out.with_suffix(".json").write_text(json.dumps(info, indent=2, default=str) + "\n")


def stage_clip(job: Job) -> None:
    cpu = job.device == "cpu"
    cfg = ClipTrainConfig(seed=SEED, steps=1000 if cpu else 5000, batch=128 if cpu else 256)
    train_clip(cfg, job.runs / "clip", device=job.device, workers=0 if cpu else 8, seconds=job.budget("clip"))
    ckpt = torch.load(job.runs / "clip" / "checkpoint.pt", weights_only=True)
    model = new_model(cfg, ckpt["model"]["token_embedding.ids"])
    model.load_state_dict(ckpt["model"])
    out = job.out / FILES["clip"]
    export_bundle(model, cfg, out, elapsed_s=float(ckpt["elapsed"]), steps=int(ckpt["step"]))
    res = evaluate_zero_shot(*load_demo_clip(out), n=max(100, job.eval_n // 2))
    export_bundle(model, cfg, out, elapsed_s=float(ckpt["elapsed"]), metrics=res, steps=int(ckpt["step"]))


def finalize_generator(src: Path, out: Path, *, n: int = 20_000, seed: int = 1) -> dict:
    """G_ema from a training export -> the bundle's float16 file, with w_avg re-estimated from n
    latents (the truncation centre). Returns what the manifest records."""
    G = load_generator(src)
    with torch.no_grad():
        z = torch.randn([n, G.z_dim], generator=torch.Generator().manual_seed(seed))
        G.w_avg.copy_(torch.cat([G.mapping(c)[:, 0] for c in z.split(1000)]).mean(0))
    save_native(G, out, source="StyleGAN Hub demo world: python -m training.demo.build (training/demo/train_gan.py)",
                dtype=torch.float16)
    return {"w_avg_latents": n, "w_avg_seed": seed}


def _adversarial_generator(job: Job) -> tuple[Path, dict]:
    cfg = GanTrainConfig(seed=SEED, batch=16 if job.device == "cpu" else 64)
    export = job.runs / "generator" / "g_ema.safetensors"
    train_gan(cfg, job.runs / "generator", kimg=1e9, seconds=job.budget("generator"), device=job.device,
              pool=_pool(job), export=export, progress=_log)
    st = torch.load(job.runs / "generator" / "checkpoint.pt", weights_only=False, map_location="cpu")  # our own
    return export, {"recipe": "adversarial", "config": st["config"], "steps": st["step"], "kimg": st["nimg"] / 1000,
                    "device": job.device, "seconds_this_run": job.budget("generator")}


def _distilled_generator(job: Job) -> tuple[Path, dict]:
    """Stage 1 (distillation) for the 'generator' budget, then stage 2 (sharpening) for 'sharpen'."""
    d_run, s_run = job.runs / "generator" / "distill", job.runs / "generator" / "sharpen"
    stage1 = d_run / "g_ema.safetensors"
    dcfg = DistillConfig(seed=SEED)
    distill(dcfg, d_run, kimg=dcfg.schedule_kimg, seconds=job.budget("generator"), export=stage1, progress=_log)
    st = torch.load(d_run / "checkpoint.pt", weights_only=False, map_location="cpu")  # our own file
    info = {"recipe": "distill", "distill": {"config": st["config"], "steps": st["step"], "kimg": st["nimg"] / 1000,
                                             "hours": st["seconds"] / 3600, "log": st["log"]}}
    if not job.budget("sharpen"):
        return stage1, info
    export = s_run / "g_ema.safetensors"
    cfg = GanTrainConfig(seed=SEED, batch=16, init=str(stage1), lr=0.001, distill=1.0, noise_mode="const",
                         d_warmup=200)
    train_gan(cfg, s_run, kimg=1e9, seconds=job.budget("sharpen"), device=job.device, export=export, progress=_log)
    st = torch.load(s_run / "checkpoint.pt", weights_only=False, map_location="cpu")  # our own file
    info["sharpen"] = {"config": st["config"], "steps": st["step"], "kimg": st["nimg"] / 1000,
                       "seconds_this_run": job.budget("sharpen"), "log": st["log"],
                       "heldout_psnr": heldout_psnr(load_generator(export))}
    return export, info


def stage_generator(job: Job) -> None:
    export, info = (_adversarial_generator(job) if job.generator_recipe == "adversarial"
                    else _distilled_generator(job))
    out = job.out / FILES["generator"]
    record = finalize_generator(export, out)
    out.with_suffix(".json").write_text(json.dumps({"training": {**info, **record}}, indent=2) + "\n")


def stage_encoder(job: Job) -> None:
    G = load_generator(job.out / FILES["generator"])
    cfg = EncoderTrainConfig(seed=SEED, batch=16 if job.device == "cpu" else 64, init=job.encoder_init)
    ckpt = train_encoder(G, cfg, job.runs / "encoder", seconds=job.budget("encoder"), device=job.device,
                         pool=_pool(job), progress=_log)
    out = job.out / FILES["encoder"]
    save_demo_encoder(ckpt, out, dtype=torch.float16)
    st = torch.load(job.runs / "encoder" / "checkpoint.pt", weights_only=False, map_location="cpu")  # our own
    out.with_suffix(".json").write_text(json.dumps({"training": {
        "config": st["config"], "steps": st["step"], "device": job.device,
        "seconds_this_run": job.budget("encoder")}}, indent=2) + "\n")


def stage_directions(job: Job) -> None:
    ds = build_direction_set(load_generator(job.out / FILES["generator"]), load_predictor(job.out / FILES["predictor"]),
                             n=3 * job.eval_n, calibration_n=max(20, job.eval_n // 20))
    save_directions(ds, job.out / FILES["directions"])


def _models(job: Job):
    G = load_generator(job.out / FILES["generator"]).eval().requires_grad_(False).to(job.device)
    return G, load_predictor(job.out / FILES["predictor"])


def _clip(job: Job):
    clip = load_clip(registry.get(CLIP_ID), job.out / FILES["clip"])
    clip.model.to(job.device)
    return clip


def _run_dir(job: Job, stage: str) -> Path:
    """Checkpoint folder of a stage trained on the bundle's generator, per generator file: a run made
    for an earlier generator is never resumed for a new one."""
    return job.runs / stage / hub.file_sha256(job.out / FILES["generator"])[:12]


def stage_flow(job: Job) -> None:
    G, predictor = _models(job)
    z = job.sizes
    cfg = FlowTrainConfig(steps=z["flow_steps"], samples=z["flow_samples"], holdout=z["flow_holdout"])
    build_demo_flow(G.cpu(), predictor, cfg, _run_dir(job, "flow"), job.out / FILES["flow"], device=job.device,
                    threads=torch.get_num_threads(), log=_log, select_n=z["flow_select_n"],
                    command=f"python -m training.demo.build --only flow (steps {cfg.steps}, samples {cfg.samples})")


def stage_channels(job: Job) -> None:
    G, predictor = _models(job)
    table = find_attribute_channels(G.cpu(), predictor, n=job.sizes["channels_n"], progress=_log)
    out = _outputs(job, "channels")[0]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(table, indent=1) + "\n")


def stage_relevance(job: Job) -> None:
    G, _ = _models(job)
    extra = {"generator_sha256": hub.file_sha256(job.out / FILES["generator"]),
             "clip_sha256": hub.file_sha256(job.out / FILES["clip"]),
             "device": job.device, "threads": torch.get_num_threads(), "command": "python -m training.demo.build"}
    t0 = time.time()
    build_relevance_file(G, _clip(job), GENERATOR_ID, RelevanceSettings(), job.extras / "styleclip", half=True,
                         extra=extra, limit=job.sizes["relevance_limit"],
                         progress=lambda f, d: _log(f"relevance: {d} ({time.time() - t0:.0f} s)"))


def stage_mappers(job: Job) -> None:
    G, predictor = _models(job)
    clip = _clip(job)
    outs = _outputs(job, "mappers")
    for recipe, out in zip(MAPPERS, outs):   # an interrupted stage resumes from each mapper's run folder
        steps = job.sizes["mapper_steps"] or recipe.steps
        settings = TrainSettings(prompt=recipe.prompt, steps=steps, batch=recipe.batch, lr=recipe.lr,
                                 lambda_l2=recipe.lambda_l2, seed=SEED)
        config = MapperConfig(w_dim=G.w_dim, layers=recipe.layers, levels=recipe.levels)
        train_and_save(G, clip, settings, config, out, run_dir=_run_dir(job, "mappers") / recipe.name,
                       generator_id=GENERATOR_ID, clip_id=CLIP_ID, device=job.device, dtype=torch.float16,
                       sidecar=True, command=f"python -m training.demo.build --only mappers ({recipe})",
                       on_step=lambda step, rec, r=recipe: step % 100 == 0 and _log(f"mapper {r.name}: step {step}, "
                                                                                    f"clip {rec['clip']:.4f}"))
    G = G.cpu()
    for out in outs:
        measure_into_sidecar(G, out, predictor, n=job.sizes["mapper_sources"],
                             command="python -m training.demo.build --only mappers")


def _outputs(job: Job, stage: str) -> list[Path]:
    """The files a stage writes (it is skipped when they all exist)."""
    if stage == "mappers":
        return [job.out / f"mapper_{r.name}.safetensors" for r in MAPPERS]
    if stage == "channels":
        return [job.extras / "stylespace_channels.json"]
    if stage == "relevance":
        return [relevance_file(GENERATOR_ID, CLIP_ID, RelevanceSettings(), job.extras / "styleclip")]
    return [job.out / FILES[stage]]


def stage_evaluate(job: Job) -> None:
    G = load_generator(job.out / FILES["generator"])
    report = evaluate_generator(G, load_predictor(job.out / FILES["predictor"]), n=job.eval_n,
                                mixing_n=max(20, job.eval_n // 10), progress=_log)
    report.update(encoder_metrics(G, n=max(20, job.eval_n // 4), bundle=job.out))
    print_report(report)
    factor_coordinates = int(G.z_dim) == Z_DIM
    if factor_coordinates:   # held-out fidelity against the renderer (distilled generators)
        report["fidelity"] = fidelity_report(G, load_predictor(job.out / FILES["predictor"]),
                                             n=max(20, job.eval_n // 4))
        print_fidelity(report["fidelity"])
    (job.out / FILES["evaluate"]).write_text(json.dumps(report, indent=1) + "\n")
    paths = save_grids(G, job.docs)
    if factor_coordinates:
        paths.append(save_side_by_side(G, job.docs / "demo_side_by_side.png"))
    for p in paths:
        _log(f"wrote {p}")


ENCODER_EVAL_SEED = 7_100_004


@torch.no_grad()
def encoder_metrics(G, n: int = 500, bundle: Path = BUNDLE) -> dict:
    """PSNR of the demo encoder's reconstructions on n held-out generator samples and n renders."""
    enc = load_demo_encoder(bundle / FILES["encoder"])
    z = torch.randn([n, G.z_dim], generator=torch.Generator().manual_seed(ENCODER_EVAL_SEED))
    samples = torch.cat([G(c, noise_mode="const") for c in z.split(100)])
    renders = render(sample_factors(n, ENCODER_EVAL_SEED), 64).img.clone()
    ps, pr = encoder_psnr(G, enc, samples), encoder_psnr(G, enc, renders)
    return {"encoder": {"n": n, "seed": ENCODER_EVAL_SEED, "psnr_samples_db": float(ps.mean()),
                        "psnr_renders_db": float(pr.mean()), "target_db": 24.0}}


def _git_commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
                              cwd=BUNDLE).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def _header(path: Path) -> dict:
    from safetensors import safe_open
    with safe_open(str(path), "pt") as f:
        return dict(f.metadata() or {})


def _training(bundle: Path) -> dict:
    """Each artifact's training record, from its JSON sidecar (`<name>.json`, key "training")."""
    out = {}
    for side in sorted(bundle.glob("*.json")):
        if side.name in (FILES["manifest"], FILES["evaluate"]):
            continue
        rec = json.loads(side.read_text())
        if "training" in rec:
            out[side.stem] = rec["training"]
    return out


def write_manifest(bundle: Path = BUNDLE) -> dict:
    """manifest.json over every file in the bundle (except itself)."""
    import open_clip
    files = {}
    for p in sorted(bundle.iterdir()):
        if p.name == FILES["manifest"] or p.name.startswith("."):
            continue
        files[p.name] = {"bytes": p.stat().st_size, "sha256": hub.file_sha256(p)}
    total = sum(f["bytes"] for f in files.values())
    manifest = {
        "bundle": "StyleGAN Hub demo world",
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "open_clip": open_clip.__version__, "code_commit": _git_commit()},
        "seed": SEED,
        "files": files, "total_bytes": total, "limit_bytes": MAX_BUNDLE_BYTES,
        "training": _training(bundle),
        "metrics": _metrics(bundle),
    }
    (bundle / FILES["manifest"]).write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def _metrics(bundle: Path) -> dict:
    out = {}
    ev = bundle / FILES["evaluate"]
    if ev.exists():
        r = json.loads(ev.read_text())
        out["generator"] = {"max_tv": r["max_tv"], "tv_ok": r["tv_ok"], "frechet": r["frechet"],
                            "plausible_parts": r["plausible_parts"], "n": r["n"],
                            "tv": {k: v["tv"] for k, v in r["factors"].items() if v["kind"] == "categorical"},
                            "w1_of_range": {k: v["w1_of_range"] for k, v in r["factors"].items()
                                            if v["kind"] == "continuous"}}
        out["generator"].update(tv_target=TV_TARGET, w1_target=W1_TARGET,
                                max_w1_of_range=max(out["generator"]["w1_of_range"].values()))
        if "fidelity" in r:
            fd = r["fidelity"]
            out["generator"]["fidelity"] = {
                "n": fd["n"], "psnr_db": fd["psnr_db"], "parts_miou": fd["parts_miou"], "feature_fd": fd["feature_fd"],
                "min_categorical_agreement": min(fd["categorical_agreement"].values()),
                "min_continuous_r2": min(fd["continuous_r2"].values()), "targets": fd["targets"]}
        if "encoder" in r:
            out["encoder"] = r["encoder"]
    pj = bundle / "predictor.json"
    if pj.exists() and "metrics" in json.loads(pj.read_text()):
        m = json.loads(pj.read_text())["metrics"]
        out["predictor"] = {"n": m["n"], "miou": m["miou"], "min_accuracy": min(m["accuracy"].values()),
                            "min_r2": min(m["r2"].values())}
    cj = bundle / "clip.json"
    if cj.exists():
        out["clip_zero_shot"] = {k: v["accuracy"] for k, v in json.loads(cj.read_text()).get("zero_shot", {}).items()}
    return out


RUNNERS = {"predictor": stage_predictor, "clip": stage_clip, "generator": stage_generator, "encoder": stage_encoder,
           "directions": stage_directions, "flow": stage_flow, "channels": stage_channels, "relevance": stage_relevance,
           "mappers": stage_mappers, "evaluate": stage_evaluate}


def build(job: Job, *, force: tuple[str, ...] = (), only: tuple[str, ...] | None = None) -> dict:
    """Run the stages in order (skipping those whose file exists, unless forced); returns the manifest."""
    job.runs.mkdir(parents=True, exist_ok=True)
    job.out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    manifest: dict = {}
    for stage in STAGES:
        if only is not None and stage not in only:
            continue
        if stage == "manifest":
            manifest = write_manifest(job.out)
            _log(f"manifest: {len(manifest['files'])} files, {manifest['total_bytes'] / 1e6:.1f} MB (limit "
                 f"{MAX_BUNDLE_BYTES / 1e6:.1f} MB)")
            continue
        outs = _outputs(job, stage)
        if all(p.exists() for p in outs) and stage not in force:
            _log(f"{stage}: {', '.join(p.name for p in outs)} exist(s), skipped (--force {stage} redoes it)")
            continue
        _log(f"{stage}: starting ({job.budget(stage) / 60:.1f} min of training)")
        RUNNERS[stage](job)
        _log(f"{stage}: done, {(time.time() - t0) / 60:.1f} min so far")
    return manifest


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m training.demo.build", description=__doc__.split("\n")[0])
    ap.add_argument("--preset", choices=sorted(PRESETS), default="cpu")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--runs", type=Path, default=Path("runs/bundle"), help="checkpoints (resume from here)")
    ap.add_argument("--out", type=Path, default=BUNDLE, help="the bundle folder")
    ap.add_argument("--docs", type=Path, default=DOCS, help="where the grids go")
    ap.add_argument("--extras", type=Path, default=BUNDLE.parent,
                    help="where the attribute-channel table and the relevance matrix go")
    ap.add_argument("--eval-n", type=int, default=2000)
    ap.add_argument("--force", nargs="*", default=[], choices=STAGES, help="redo these stages")
    ap.add_argument("--only", nargs="*", default=None, choices=STAGES, help="run only these stages")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--encoder-init", default="", help="start the encoder from this saved demo encoder "
                    "(its backbone transfers to a new generator; the recorded config names it)")
    ap.add_argument("--seconds", nargs="*", default=[], metavar="STAGE=SECONDS",
                    help="override a stage's training time from the preset (e.g. sharpen=0 skips sharpening)")
    args = ap.parse_args(argv)
    seconds = dict(PRESETS[args.preset])
    for item in args.seconds:
        stage, _, value = item.partition("=")
        if stage not in seconds or not value.replace(".", "", 1).isdigit():
            ap.error(f"--seconds takes STAGE=SECONDS with STAGE one of {', '.join(sorted(seconds))}, got {item!r}")
        seconds[stage] = float(value)
    torch.set_num_threads(args.threads)
    job = Job(runs=args.runs, out=args.out, docs=args.docs, extras=args.extras, device=args.device,
              seconds=seconds, sizes=dict(SIZES[args.preset]), eval_n=args.eval_n,
              generator_recipe=GENERATOR_RECIPES[args.preset], encoder_init=args.encoder_init)
    build(job, force=tuple(args.force), only=None if args.only is None else tuple(args.only))


if __name__ == "__main__":
    main()
