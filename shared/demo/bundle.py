"""The demo world's shipped bundle (shared/demo/bundle/): file paths, the manifest, its checks,
and the metrics summary the Models tab shows. The bundle is built by `python -m training.demo.build`.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from PIL import Image

from shared.demo.directions import DirectionSet, load_directions
from shared.hub import file_sha256
from shared.images import to_uint8_hwc
from shared.portraits import captions, render_seeds

__all__ = ["BUNDLE_DIR", "EXAMPLE_SEEDS", "bundle_file", "example_portraits", "load_demo_directions", "load_manifest",
           "metrics_markdown", "verify_bundle"]

BUNDLE_DIR = Path(__file__).resolve().parent / "bundle"


def bundle_file(name: str) -> Path:
    """Path of a bundle file ("generator.safetensors", ...); FileNotFoundError says how to build it."""
    p = BUNDLE_DIR / name
    if not p.is_file():
        raise FileNotFoundError(f"The demo bundle has no {name} at {p}; "
                                "rebuild it with `python -m training.demo.build`.")
    return p


def load_manifest() -> dict:
    return json.loads(bundle_file("manifest.json").read_text())


def verify_bundle() -> list[str]:
    """Problems with the bundle files against the manifest (size, sha256, missing), as sentences."""
    problems = []
    for name, rec in load_manifest()["files"].items():
        p = BUNDLE_DIR / name
        if not p.is_file():
            problems.append(f"{name} is missing")
        elif p.stat().st_size != rec["bytes"] or file_sha256(p) != rec["sha256"]:
            problems.append(f"{name} differs from the manifest (size or sha256)")
    return problems


def metrics_markdown() -> str:
    """The bundle's measured quality, for the Models tab (empty string when there is no manifest)."""
    try:
        m = load_manifest()
    except (FileNotFoundError, json.JSONDecodeError):
        return ""
    met = m.get("metrics", {})
    lines = ["### Demo world: measured quality",
             f"Trained by this project on procedural portraits; {m['total_bytes'] / 1e6:.1f} MB in the repository "
             "(`shared/demo/bundle/`, rebuilt by `python -m training.demo.build`). The predictor is the judge "
             "(`python -m training.demo.evaluate`).", "",
             "| Network | Measure | Value | Target |", "|---|---|---|---|"]
    g = met.get("generator")
    if g:
        f = g["frechet"]
        lines += [f"| generator | largest per-factor TV vs renders ({g['n']} each) | {g['max_tv']:.3f} | "
                  f"≤ {g.get('tv_target', 0.15):.2f} |"]
        if "max_w1_of_range" in g:
            lines.append(f"| generator | largest continuous W1 (share of the range) | {g['max_w1_of_range']:.3f} | "
                         f"≤ {g['w1_target']:.2f} |")
        fid = g.get("fidelity")
        if fid:
            t = fid["targets"]
            lines += [f"| generator | G(z) vs the render of the same factors ({fid['n']} z): PSNR / part mIoU | "
                      f"{fid['psnr_db']:.1f} dB / {fid['parts_miou']:.2f} | ≥ {t['psnr_db']:.0f} dB / "
                      f"{t['parts_miou']:.2f} |",
                      f"| generator | same factors read back: min class agreement / min R² | "
                      f"{fid['min_categorical_agreement']:.2f} / {fid['min_continuous_r2']:.2f} | "
                      f"{t['categorical_agreement']:.2f} / {t['continuous_r2']:.1f} |"]
        lines += [f"| generator | Fréchet distance in predictor features | {f['generator']:.1f} (untrained "
                  f"{f['untrained_generator']:.0f}, shuffled renders {f['shuffled_renders']:.0f}, renders vs renders "
                  f"{f['renders_vs_renders']:.1f}) | far below the baselines |",
                  f"| generator | plausible part maps | {100 * g['plausible_parts']['generator']:.0f} % (renders "
                  f"{100 * g['plausible_parts']['renders']:.0f} %) | ≥ 95 % |"]
    e = met.get("encoder")
    if e:
        lines.append(f"| e4e encoder | reconstruction PSNR, held-out samples / renders | "
                     f"{e['psnr_samples_db']:.1f} / {e['psnr_renders_db']:.1f} dB | ≥ {e['target_db']:.0f} dB |")
    p = met.get("predictor")
    if p:
        lines.append(f"| predictor | min accuracy / min R² / part mIoU ({p['n']} renders) | "
                     f"{p['min_accuracy']:.3f} / {p['min_r2']:.3f} / {p['miou']:.3f} | 0.95 / 0.9 / 0.8 |")
    c = met.get("clip_zero_shot")
    if c:
        lines.append("| CLIP | zero-shot accuracy | " + ", ".join(f"{k} {v:.2f}" for k, v in c.items()
                                                          if k != "glasses_any")
                     + " | glasses, smile ≥ 0.9; hair colour ≥ 0.8 |")
    return "\n".join(lines)


EXAMPLE_SEEDS = (3, 7, 11, 19)


def example_portraits(seeds=EXAMPLE_SEEDS, size: int = 256) -> list[tuple[str, str]]:
    """Demo-world renders for the tabs' examples, as (PNG path, caption from the known factors).

    Written once into the system's temporary folder (stylegan-hub-examples/); the same seed always
    gives the same picture, so existing files are reused."""
    out_dir = Path(tempfile.gettempdir()) / "stylegan-hub-examples"
    out_dir.mkdir(parents=True, exist_ok=True)
    r = render_seeds(list(seeds), size)
    caps = captions(r.factors)
    out = []
    for i, seed in enumerate(seeds):
        p = out_dir / f"portrait_seed{seed}_{size}px.png"
        if not p.is_file():
            tmp = p.with_name(p.name + f".{os.getpid()}.tmp")
            Image.fromarray(to_uint8_hwc(r.img[i:i + 1])[0]).save(tmp, format="PNG")
            os.replace(tmp, p)
        out.append((str(p), f"seed {seed}: {caps[i]}"))
    return out


def load_demo_directions() -> DirectionSet:
    """The shipped per-factor W directions."""
    return load_directions(bundle_file("directions.safetensors"))
