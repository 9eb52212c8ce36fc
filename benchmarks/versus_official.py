"""Our StyleGAN2 against the official NVlabs code, side by side in one process (issue 22, item 1).
Not a test.

    python -m benchmarks.versus_official --official DIR [--res 64 256 1024] [--batch 1 4] [--repeats 5]
                                         [--threads 2] [--device cpu|cuda] [--fp16] [--json FILE]

DIR is a checkout of NVlabs/stylegan3 at c233a919 (`git clone https://github.com/NVlabs/stylegan3 DIR
&& git -C DIR checkout c233a919`), fetched by whoever runs this and never committed. Its
`training.networks_stylegan2.Generator` and ours are built with the same config (config-f: channel
base 32768, max 512, 8 mapping layers; fused modulated convolution at inference as its
`fused_modconv_default='inference_only'`), ours with seeded random weights copied into theirs under
the official names (`shared.loaders.nvlabs_stylegan2.rosinality_to_nvlabs`), so both compute the same
function: the first check is that their images agree (max |difference| printed). Then both run
`synthesis(ws, noise_mode='const')` on the same ws, alternating official / ours `--repeats` times
after a warm-up, and the best time of each is kept. The ratio is official time / our time (above 1:
ours is faster). On the CPU both use reference ops (the official code picks them off-GPU; ours with
`HUB_OPS=ref`); on CUDA the official code builds its own kernels and ours uses `custom_ops`.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import sys
import time
import types
from pathlib import Path

import torch

PINNED = "c233a919"
CONFIG_F = {"channel_base": 32768, "channel_max": 512, "mapping_layers": 8}


def _official_class(official: Path):
    if not (official / "training" / "networks_stylegan2.py").is_file():
        raise SystemExit(f"{official} is not a checkout of NVlabs/stylegan3 (no training/networks_stylegan2.py); "
                         f"clone it and check out {PINNED}.")
    sys.path.insert(0, str(official))
    if importlib.util.find_spec("pkg_resources") is None:
        # the official conv2d_gradfix imports pkg_resources.parse_version, which setuptools >= 81
        # dropped: the same function from `packaging` (an import shim; no numeric effect)
        from packaging.version import parse
        sys.modules["pkg_resources"] = types.SimpleNamespace(parse_version=parse)
    from training.networks_stylegan2 import Generator  # the official module, from DIR
    return Generator


def _pair(Official, res: int, device: str, fp16: bool):
    from shared.archs.stylegan2 import StyleGAN2Config, StyleGAN2Generator
    from shared.loaders.nvlabs_stylegan2 import rosinality_to_nvlabs

    num_fp16 = 4 if fp16 else 0
    clamp = 256 if fp16 else None
    cfg = StyleGAN2Config.nvlabs(z_dim=512, w_dim=512, img_resolution=res, channel_base=CONFIG_F["channel_base"],
                                 channel_max=CONFIG_F["channel_max"], mapping_layers=CONFIG_F["mapping_layers"],
                                 conv_clamp=clamp)
    ours = StyleGAN2Generator(cfg).init_random_(torch.Generator().manual_seed(0)).eval().requires_grad_(False)
    theirs = Official(z_dim=512, c_dim=0, w_dim=512, img_resolution=res, img_channels=3,
                      mapping_kwargs={"num_layers": CONFIG_F["mapping_layers"]},
                      channel_base=CONFIG_F["channel_base"], channel_max=CONFIG_F["channel_max"],
                      num_fp16_res=num_fp16, conv_clamp=clamp, fused_modconv_default="inference_only")
    theirs.load_state_dict(rosinality_to_nvlabs(ours), strict=True)
    return ours.to(device), theirs.eval().requires_grad_(False).to(device)


def _time(fn, sync) -> float:
    t0 = time.perf_counter()
    fn()
    sync()
    return time.perf_counter() - t0


def run_case(Official, res: int, batch: int, device: str, fp16: bool, repeats: int) -> dict:
    ours, theirs = _pair(Official, res, device, fp16)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    z = torch.randn([batch, 512], generator=torch.Generator().manual_seed(1)).to(device)
    with torch.no_grad():
        ws = ours.mapping(z)
        img_t = theirs.synthesis(ws, noise_mode="const", force_fp32=not fp16)
        img_o = ours.synthesis(ws, noise_mode="const", fp16=fp16)
        diff = float((img_t.float() - img_o.float()).abs().max())
        t_off, t_our = [], []
        for _ in range(repeats):
            t_off.append(_time(lambda: theirs.synthesis(ws, noise_mode="const", force_fp32=not fp16), sync))
            t_our.append(_time(lambda: ours.synthesis(ws, noise_mode="const", fp16=fp16), sync))
    best_off, best_our = min(t_off), min(t_our)
    return {"res": res, "batch": batch, "device": device, "dtype": "fp16" if fp16 else "fp32",
            "official_ms_per_img": 1000 * best_off / batch, "ours_ms_per_img": 1000 * best_our / batch,
            "ratio": best_off / best_our, "max_abs_diff": diff}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--official", type=Path, required=True, help=f"a checkout of NVlabs/stylegan3 at {PINNED}")
    ap.add_argument("--res", type=int, nargs="+", default=[64, 256, 1024])
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 4])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--fp16", action="store_true", help="CUDA: the official fp16 on the top 4 resolutions")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    if args.device == "cpu":
        os.environ.setdefault("HUB_OPS", "ref")
    torch.set_num_threads(args.threads)
    Official = _official_class(args.official.resolve())
    from custom_ops import status
    rows = []
    print(f"StyleGAN2 config-f, random weights, {args.device}, {args.threads} threads, best of {args.repeats}")
    print(f"{'res':>5s} {'batch':>5s} {'official ms/img':>16s} {'ours ms/img':>12s} {'ratio':>6s} {'max|diff|':>10s}")
    for res in args.res:
        for batch in args.batch:
            r = run_case(Official, res, batch, args.device, args.fp16, args.repeats)
            rows.append(r)
            print(f"{res:5d} {batch:5d} {r['official_ms_per_img']:16.1f} {r['ours_ms_per_img']:12.1f} "
                  f"{r['ratio']:6.2f} {r['max_abs_diff']:10.2e}", flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"machine": platform.processor() or platform.machine(),
                                         "torch": torch.__version__, "official_commit": PINNED,
                                         "ops": status(), "rows": rows}, indent=1, default=str))


if __name__ == "__main__":
    main()
