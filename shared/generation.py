"""Seeds to images: the hub's "generate" action as a pure function over a generator.

Follows `gen_images.py` of NVlabs/stylegan3 (github.com/NVlabs/stylegan3, commit c233a91):
one latent per seed, a class one-hot for conditional models, truncation toward `w_avg`, and
for StyleGAN3 an input transform (translate, rotate) applied as the inverse of
`make_transform`. Unlike the official script, z comes from
`torch.randn([1, z_dim], generator=torch.Generator().manual_seed(seed))`, so a seed gives the
same image here on any device, but not the same image as NVlabs' numpy-seeded script.

The shared, cached generator is never left modified: StyleGAN3's input transform is set
under a lock and restored when the call ends (`input_transform`).
"""
from __future__ import annotations

import math
import random
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass

import torch

__all__ = ["GenerationResult", "InputError", "NOISE_MODES", "MAX_SEED", "generate_images", "input_transform",
           "parse_seeds", "class_one_hot"]

NOISE_MODES = ("const", "random", "none")
MAX_SEED = 2 ** 32 - 1
Progress = Callable[[float, str], object]

# One lock for every StyleGAN3 input-transform change: models are shared between users.
_TRANSFORM_LOCK = threading.RLock()


class InputError(ValueError):
    """A value the user typed cannot be used; the message says what to do instead."""


@dataclass(frozen=True, eq=False)
class GenerationResult:
    """What `generate_images` made, on the CPU."""
    images: torch.Tensor        # [N, 3, H, W] float32 in [-1, 1]
    ws: torch.Tensor            # [N, num_ws, w_dim] float32
    seeds: tuple[int, ...]      # one per image, in order
    seconds: float              # wall time of mapping + synthesis (model loading excluded)


# ---- seeds ---------------------------------------------------------------------------------------
_SEEDS_HELP = "Write seeds like 0, 0-7 or 1,5,9, or 'random'"
_RANDOM = re.compile(r"^random(?:\s*[:x×*]\s*(\d+))?$")


def parse_seeds(text: str, *, max_count: int = 64, rng: random.Random | None = None) -> list[int]:
    """Read a seeds field: "0", "0-7" (inclusive), "1,5,9", mixes like "1, 4-6", or "random".

    "random" draws one seed in [0, 2**32 - 1] and "random:N" draws N; the caller shows them.
    Duplicates are dropped, order is kept.

    Args:
        text: what the user typed.
        max_count: most seeds allowed in one call.
        rng: source for "random" (a fresh OS-seeded `random.Random` when None).
    Returns:
        list of ints in [0, MAX_SEED].
    Raises:
        InputError: the text is empty, malformed, out of range, or asks for too many seeds.
    """
    s = re.sub(r"\s*-\s*", "-", str(text).strip().lower())
    if not s:
        raise InputError(f"The seeds field is empty. {_SEEDS_HELP}.")
    m = _RANDOM.match(s)
    if m:
        count = int(m.group(1) or 1)
        if not 1 <= count <= max_count:
            raise InputError(f"Ask for between 1 and {max_count} random seeds, not {count}.")
        rng = rng or random.Random()
        return [rng.randint(0, MAX_SEED) for _ in range(count)]
    seeds: list[int] = []
    for token in filter(None, re.split(r"[,;\s]+", s)):
        lo, sep, hi = token.partition("-")
        if not lo.isdigit() or (sep and not hi.isdigit()):
            raise InputError(f"Could not read {token!r} as a seed. {_SEEDS_HELP}.")
        a, b = int(lo), int(hi) if sep else int(lo)
        if b < a:
            raise InputError(f"The range {a}-{b} runs backwards; write it as {b}-{a}.")
        if b > MAX_SEED:
            raise InputError(f"Seeds go from 0 to {MAX_SEED}; {b} is too large.")
        if len(seeds) + (b - a + 1) > max_count:
            raise InputError(f"That asks for more than {max_count} seeds; at most {max_count} fit in one run.")
        seeds.extend(range(a, b + 1))
    if not seeds:
        raise InputError(f"No seeds found in {text!r}. {_SEEDS_HELP}.")
    return list(dict.fromkeys(seeds))


# ---- conditioning ----------------------------------------------------------------------------------
def class_one_hot(G: torch.nn.Module, class_idx: int | None, *, device: torch.device) -> torch.Tensor | None:
    """Class label -> one-hot c [1, c_dim] for a conditional G, None for an unconditional one.

    Raises:
        InputError: a label is missing for a conditional model, given for an unconditional
            one, or out of range.
    """
    c_dim = int(getattr(G, "c_dim", 0) or 0)
    if c_dim == 0:
        if class_idx is not None:
            raise InputError("This model is unconditional; leave the class label empty.")
        return None
    if class_idx is None:
        raise InputError(f"This model is class-conditional; choose a class label from 0 to {c_dim - 1}.")
    if not 0 <= int(class_idx) < c_dim:
        raise InputError(f"Class label {class_idx} is out of range; choose one from 0 to {c_dim - 1}.")
    c = torch.zeros([1, c_dim], device=device)
    c[0, int(class_idx)] = 1
    return c


@contextmanager
def input_transform(G: torch.nn.Module, translate: tuple[float, float], rotate: float) -> Iterator[None]:
    """Run a block with StyleGAN3's input transform set to (translate, rotate degrees).

    Holds a process-wide lock for the whole block (so concurrent users of one cached model
    never see each other's transform) and puts the model's own transform back afterwards.
    Every StyleGAN3 synthesis that must not see a foreign transform runs inside this.
    """
    from shared.archs.stylegan3 import set_input_transform  # StyleGAN3 only; imported on use

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
def _check_arguments(G, seeds, truncation_psi, truncation_cutoff, translate, rotate, noise_mode) -> bool:
    """Validate user-facing arguments; returns True when G is a StyleGAN3 generator."""
    if not seeds:
        raise InputError(f"No seeds given. {_SEEDS_HELP}.")
    bad = [s for s in seeds if not 0 <= int(s) <= MAX_SEED]
    if bad:
        raise InputError(f"Seeds go from 0 to {MAX_SEED}; {bad[0]} is outside that.")
    if not math.isfinite(float(truncation_psi)):
        raise InputError("Truncation psi must be a finite number such as 0.7 or 1.")
    if truncation_cutoff is not None and not 1 <= int(truncation_cutoff) <= G.num_ws:
        raise InputError(f"Truncation cutoff must be a number of layers from 1 to {G.num_ws}, not {truncation_cutoff}.")
    if noise_mode not in NOISE_MODES:
        raise InputError(f"Noise mode must be one of {', '.join(NOISE_MODES)}; got {noise_mode!r}.")
    is_sg3 = getattr(G, "arch", None) == "stylegan3"
    moved = any(float(v) != 0 for v in translate) or float(rotate) != 0
    if moved and not is_sg3:
        raise InputError("Translate and rotate only apply to StyleGAN3 models; set them to 0 for this model.")
    if not all(math.isfinite(float(v)) for v in (*translate, rotate)):
        raise InputError("Translate and rotate must be finite numbers.")
    return is_sg3


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
    is_sg3 = _check_arguments(G, seeds, truncation_psi, truncation_cutoff, translate, rotate, noise_mode)
    device = next(G.parameters()).device
    c = class_one_hot(G, class_idx, device=device)
    cutoff = None if truncation_cutoff is None else int(truncation_cutoff)
    images, all_ws = [], []
    start = time.perf_counter()
    with (input_transform(G, translate, rotate) if is_sg3 else nullcontext()):
        for i, seed in enumerate(seeds):
            if progress is not None:
                progress(i / len(seeds), f"seed {seed} ({i + 1}/{len(seeds)})")
            z = torch.randn([1, G.z_dim], generator=torch.Generator().manual_seed(seed)).to(device)
            ws = G.mapping(z, c, truncation_psi=float(truncation_psi), truncation_cutoff=cutoff)
            if is_sg3:
                img = G.synthesis(ws, noise_mode=noise_mode)
            else:
                noise_gen = torch.Generator(device=device).manual_seed(seed) if noise_mode == "random" else None
                img = G.synthesis(ws, noise_mode=noise_mode, generator=noise_gen)
            images.append(img.to("cpu", torch.float32).clamp_(-1, 1))
            all_ws.append(ws.to("cpu", torch.float32))
    seconds = time.perf_counter() - start
    if progress is not None:
        progress(1.0, f"{len(seeds)} image(s) done")
    return GenerationResult(images=torch.cat(images), ws=torch.cat(all_ws), seeds=tuple(seeds), seconds=seconds)
