"""Convert any generator checkpoint the hub reads into the hub's own format (or the official ones).

    python -m shared.convert IN OUT [--to native|rosinality|nvlabs-names]

`native` (default): `.safetensors` + JSON config in the header (shared/loaders/native.py).
`rosinality`: `{'g_ema', 'latent_avg'}` torch file (StyleGAN2 only), as rosinality's
convert_weight.py writes. `nvlabs-names`: `.safetensors` state dict under the official NVlabs
names (StyleGAN2 only). After writing, OUT is loaded again and its images for fixed latents
are compared with IN's; the command fails when they differ by more than 1e-5.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

from shared.errors import CheckpointError
from shared.loaders import load_generator
from shared.loaders.native import save_native
from shared.loaders.nvlabs_stylegan2 import rosinality_to_nvlabs

__all__ = ["convert", "max_output_difference"]


@torch.no_grad()
def max_output_difference(G1: torch.nn.Module, G2: torch.nn.Module, *, n: int = 2, seed: int = 0) -> float:
    """Largest |G1(z) - G2(z)| over `n` seeded latents (constant noise, no truncation)."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn([n, G1.z_dim], generator=g)
    c = torch.zeros([n, G1.c_dim])
    if G1.c_dim:
        c[:, 0] = 1
    return float((G1(z, c, noise_mode="const") - G2(z, c, noise_mode="const")).abs().max())


def convert(src: str | Path, dst: str | Path, to: str = "native") -> float:
    """Convert `src` into `dst`; returns the max output difference after reloading `dst`."""
    G = load_generator(src)
    dst = Path(dst)
    if to == "native":
        save_native(G, dst, source=Path(src).name)
    elif to in ("rosinality", "nvlabs-names"):
        if G.arch != "stylegan2":
            raise CheckpointError(f"--to {to} is only defined for StyleGAN2 (this is {G.arch}); use --to native.")
        if not G.config.normalize_z:
            raise CheckpointError(f"--to {to} cannot hold a generator whose z is not normalised (the demo world's "
                                  "factor-coordinate z): the official code always normalises z; use --to native.")
        if to == "rosinality":
            torch.save({"g_ema": G.state_dict(), "latent_avg": G.w_avg.clone()}, dst)
        else:
            save_file({k: v.contiguous() for k, v in rosinality_to_nvlabs(G).items()}, str(dst))
    else:
        raise ValueError(f"unknown target format {to!r}")
    return max_output_difference(G, load_generator(dst))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m shared.convert", description=__doc__.split("\n\n")[0])
    ap.add_argument("src")
    ap.add_argument("dst")
    ap.add_argument("--to", choices=["native", "rosinality", "nvlabs-names"], default="native")
    args = ap.parse_args(argv)
    try:
        diff = convert(args.src, args.dst, args.to)
    except CheckpointError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    ok = diff <= 1e-5
    print(f"wrote {args.dst} ({args.to}); max output difference after reload: {diff:.3g} "
          f"({'ok' if ok else 'MISMATCH'})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
