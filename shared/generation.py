"""Seeds to images: the hub's "generate" action as a pure function over a generator.

Follows `gen_images.py` of NVlabs/stylegan3 (github.com/NVlabs/stylegan3, commit c233a91):
one latent per seed, a class one-hot for conditional models, truncation toward `w_avg`, and
for StyleGAN3 an input transform (translate, rotate) applied as the inverse of
`make_transform`. Seeds become z and ws as `shared.latents` defines (a `torch.Generator`
seeded with each seed, so a seed gives the same image here on any device, but not the same
image as NVlabs' numpy-seeded script).

The shared, cached generator is never left modified: StyleGAN3's input transform is set
under a lock and restored when the call ends (`input_transform`).
"""
from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass

import torch

from shared.archs.stylegan3 import set_input_transform
from shared.errors import InputError
from shared.latents import check_seeds, check_truncation, class_one_hot, z_from_seed

__all__ = ["GenerationResult", "NOISE_MODES", "check_noise_mode", "generate_images", "input_transform", "synthesize"]

NOISE_MODES = ("const", "random", "none")
Progress = Callable[[float, str], object]

# One lock for every StyleGAN3 input-transform change: models are shared between users.
_TRANSFORM_LOCK = threading.RLock()


@dataclass(frozen=True, eq=False)
class GenerationResult:
    """What `generate_images` made, on the CPU."""
    images: torch.Tensor        # [N, 3, H, W] float32 in [-1, 1]
    ws: torch.Tensor            # [N, num_ws, w_dim] float32
    seeds: tuple[int, ...]      # one per image, in order
    seconds: float              # wall time of mapping + synthesis (model loading excluded)


# ---- StyleGAN3 input transform -----------------------------------------------------------------
@contextmanager
def input_transform(G: torch.nn.Module, translate: tuple[float, float], rotate: float) -> Iterator[None]:
    """Run a block with StyleGAN3's input transform set to (translate, rotate degrees).

    Holds a process-wide lock for the whole block (so concurrent users of one cached model
    never see each other's transform) and puts the model's own transform back afterwards.
    Every StyleGAN3 synthesis that must not see a foreign transform runs inside this.
    """
    with _TRANSFORM_LOCK:
        saved = [(buf, buf.detach().clone()) for name, buf in G.named_buffers()
                 if name.rsplit(".", 1)[-1] == "transform"]
        set_input_transform(G, (float(translate[0]), float(translate[1])), float(rotate))
        try:
            yield
        finally:
            with torch.no_grad():
                for buf, value in saved:
                    buf.copy_(value)


# ---- generation ----------------------------------------------------------------------------------
def check_noise_mode(noise_mode: str) -> str:
    """The noise mode, after checking it is one of `NOISE_MODES`."""
    if noise_mode not in NOISE_MODES:
        raise InputError(f"Noise mode must be one of {', '.join(NOISE_MODES)}; got {noise_mode!r}.")
    return noise_mode


def synthesize(G: torch.nn.Module, ws: torch.Tensor, *, noise_mode: str, noise_seed: int) -> torch.Tensor:
    """G.synthesis on ws [N, num_ws, w_dim] (on G's device); 'random' noise is drawn from a
    `torch.Generator` on that device seeded with `noise_seed` (StyleGAN3 has no noise inputs)."""
    if getattr(G, "arch", None) == "stylegan3":
        return G.synthesis(ws, noise_mode=noise_mode)
    gen = torch.Generator(device=ws.device).manual_seed(int(noise_seed)) if noise_mode == "random" else None
    return G.synthesis(ws, noise_mode=noise_mode, generator=gen)


def _check_arguments(G, seeds, truncation_psi, truncation_cutoff, translate, rotate, noise_mode
                     ) -> tuple[bool, float, int | None]:
    """Validate user-facing arguments; returns (G is StyleGAN3, psi, cutoff)."""
    check_seeds(seeds)
    psi, cutoff = check_truncation(G, truncation_psi, truncation_cutoff)
    check_noise_mode(noise_mode)
    is_sg3 = getattr(G, "arch", None) == "stylegan3"
    moved = any(float(v) != 0 for v in translate) or float(rotate) != 0
    if moved and not is_sg3:
        raise InputError("Translate and rotate only apply to StyleGAN3 models; set them to 0 for this model.")
    if not all(math.isfinite(float(v)) for v in (*translate, rotate)):
        raise InputError("Translate and rotate must be finite numbers.")
    return is_sg3, psi, cutoff


@torch.inference_mode()
def generate_images(G: torch.nn.Module, seeds: list[int], *, truncation_psi: float = 1.0,
                    truncation_cutoff: int | None = None, class_idx: int | None = None,
                    translate: tuple[float, float] = (0.0, 0.0), rotate: float = 0.0,
                    noise_mode: str = "const", progress: Progress | None = None) -> GenerationResult:
    """Generate one image per seed.

    Args:
        G: a hub generator (`mapping`, `synthesis`, `z_dim`, `c_dim`, `num_ws`, `arch`); shared
            and read-only: it is not modified (StyleGAN3's transform is restored).
        seeds: ints in [0, 2**32 - 1]; z = randn([1, z_dim]) from `torch.Generator` seeded with each.
        truncation_psi: 1 = no truncation, 0 = the average image.
        truncation_cutoff: truncate only the first this-many ws layers; None = all.
        class_idx: class label for conditional models; must be None for unconditional ones.
        translate: StyleGAN3 input translation (x, y); must be (0, 0) otherwise.
        rotate: StyleGAN3 input rotation in degrees; must be 0 otherwise.
        noise_mode: 'const' (stored noise), 'random' (seeded by each seed, so repeatable) or 'none'.
        progress: called as progress(fraction, text) before each seed.
    Returns:
        GenerationResult with images [N, 3, H, W] in [-1, 1] and ws [N, num_ws, w_dim], on the CPU.
    Raises:
        InputError: for any argument a user can get wrong (message is one sentence).
    """
    seeds = [int(s) for s in seeds]
    is_sg3, psi, cutoff = _check_arguments(G, seeds, truncation_psi, truncation_cutoff, translate, rotate, noise_mode)
    device = next(G.parameters()).device
    c = class_one_hot(G, class_idx, device=device)
    images, all_ws = [], []
    start = time.perf_counter()
    with (input_transform(G, translate, rotate) if is_sg3 else nullcontext()):
        for i, seed in enumerate(seeds):
            if progress is not None:
                progress(i / len(seeds), f"seed {seed} ({i + 1}/{len(seeds)})")
            z = z_from_seed(seed, G.z_dim).to(device)
            ws = G.mapping(z, c, truncation_psi=psi, truncation_cutoff=cutoff)
            img = synthesize(G, ws, noise_mode=noise_mode, noise_seed=seed)
            images.append(img.to("cpu", torch.float32).clamp_(-1, 1))
            all_ws.append(ws.to("cpu", torch.float32))
    seconds = time.perf_counter() - start
    if progress is not None:
        progress(1.0, f"{len(seeds)} image(s) done")
    return GenerationResult(images=torch.cat(images), ws=torch.cat(all_ws), seeds=tuple(seeds), seconds=seconds)
