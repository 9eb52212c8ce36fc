"""Latents of a StyleGAN2/StyleGAN3 generator: seeds to z, z to W+ codes, and the rows of a W+ code.

Seeds and mapping follow `gen_images.py` of NVlabs/stylegan3 (github.com/NVlabs/stylegan3,
commit c233a91): one latent per seed, a class one-hot for conditional models, truncation toward
`w_avg`. Unlike the official script, z comes from
`torch.randn([1, z_dim], generator=torch.Generator().manual_seed(seed))`, so a seed gives the
same latent here on any device, but not the same one as NVlabs' numpy-seeded script.

Layer ranges ('coarse', 'middle', 'fine') are the bands of Karras et al., "A Style-Based
Generator Architecture for Generative Adversarial Networks" (CVPR 2019, Sec. 3.1 and Fig. 3),
computed per model from the resolution each ws row controls (`row_resolutions`, `layer_ranges`).
"""
from __future__ import annotations

import math
import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from shared.errors import InputError

__all__ = ["MAX_SEED", "SEEDS_HELP", "RANGE_NAMES", "LayerRange", "parse_seeds", "check_seeds", "z_from_seed",
           "z_from_seeds", "class_one_hot", "check_truncation", "map_z", "ws_from_seeds", "as_cpu_float", "check_ws",
           "stylegan_arch", "row_resolutions", "layer_ranges", "resolve_rows"]

MAX_SEED = 2 ** 32 - 1
SEEDS_HELP = "Write seeds like 0, 0-7 or 1,5,9, or 'random'"
RANGE_NAMES = ("coarse", "middle", "fine")
COARSE_MAX_PX = 8        # paper: coarse = 4-8 px
FINE_MIN_PX = 64         # paper: fine = 64 px and up (middle = 16-32 px)
_RANDOM = re.compile(r"^random(?:\s*[:x×*]\s*(\d+))?$")
_DIGITS = re.compile(r"[0-9]+")  # ASCII only: str.isdigit() also passes '²', which int() refuses
_ROWS_TOKEN = re.compile(r"^(\d+)(?:-(\d+))?$")


# ---- seeds ---------------------------------------------------------------------------------------
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
        raise InputError(f"The seeds field is empty. {SEEDS_HELP}.")
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
        if not _DIGITS.fullmatch(lo) or (sep and not _DIGITS.fullmatch(hi)):
            raise InputError(f"Could not read {token!r} as a seed. {SEEDS_HELP}.")
        a, b = int(lo), int(hi) if sep else int(lo)
        if b < a:
            raise InputError(f"The range {a}-{b} runs backwards; write it as {b}-{a}.")
        if b > MAX_SEED:
            raise InputError(f"Seeds go from 0 to {MAX_SEED}; {b} is too large.")
        if len(seeds) + (b - a + 1) > max_count:
            raise InputError(f"That asks for more than {max_count} seeds; at most {max_count} fit in one run.")
        seeds.extend(range(a, b + 1))
    if not seeds:
        raise InputError(f"No seeds found in {text!r}. {SEEDS_HELP}.")
    return list(dict.fromkeys(seeds))


def check_seeds(seeds: Sequence[int]) -> list[int]:
    """Seeds as ints, after checking there is at least one and each is in [0, MAX_SEED].

    Raises:
        InputError: no seeds, or a seed out of range.
    """
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise InputError(f"No seeds given. {SEEDS_HELP}.")
    bad = [s for s in seeds if not 0 <= s <= MAX_SEED]
    if bad:
        raise InputError(f"Seeds go from 0 to {MAX_SEED}; {bad[0]} is outside that.")
    return seeds


def z_from_seed(seed: int, z_dim: int) -> torch.Tensor:
    """z [1, z_dim] float32 on the CPU for one seed: the hub's one definition of seed -> z."""
    return torch.randn([1, int(z_dim)], generator=torch.Generator().manual_seed(int(seed)))


def z_from_seeds(G: torch.nn.Module, seeds: Sequence[int]) -> torch.Tensor:
    """z [N, z_dim] float32 on the CPU for seeds, one `z_from_seed` each, in order."""
    return torch.cat([z_from_seed(s, G.z_dim) for s in check_seeds(seeds)])


# ---- mapping -------------------------------------------------------------------------------------
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


def check_truncation(G: torch.nn.Module, psi: float, cutoff: int | None) -> tuple[float, int | None]:
    """(psi, cutoff) as the mapping network takes them, after checking them against G.

    Raises:
        InputError: psi is not finite, or cutoff is not a number of ws rows from 1 to num_ws.
    """
    if not math.isfinite(float(psi)):
        raise InputError("Truncation psi must be a finite number such as 0.7 or 1.")
    if cutoff is not None and not 1 <= int(cutoff) <= G.num_ws:
        raise InputError(f"Truncation cutoff must be a number of layers from 1 to {G.num_ws}, not {cutoff}.")
    return float(psi), None if cutoff is None else int(cutoff)


def map_z(G: torch.nn.Module, z: torch.Tensor, psi: float = 1.0, *, truncation_cutoff: int | None = None,
          class_idx: int | None = None) -> torch.Tensor:
    """z [N, z_dim] -> ws [N, num_ws, w_dim] on the CPU, float32 (truncated toward `w_avg` by psi)."""
    psi, cutoff = check_truncation(G, psi, truncation_cutoff)
    device = next(G.parameters()).device
    c = class_one_hot(G, class_idx, device=device)
    if c is not None:
        c = c.expand(z.shape[0], -1)
    with torch.inference_mode():
        ws = G.mapping(z.to(device, torch.float32), c, truncation_psi=psi, truncation_cutoff=cutoff)
    return ws.to("cpu", torch.float32)


def ws_from_seeds(G: torch.nn.Module, seeds: Sequence[int], psi: float = 1.0, *,
                  truncation_cutoff: int | None = None, class_idx: int | None = None) -> torch.Tensor:
    """W+ codes for seeds: ws [N, num_ws, w_dim] (CPU float32), equal to `generate_images(...).ws`."""
    return map_z(G, z_from_seeds(G, seeds), psi, truncation_cutoff=truncation_cutoff, class_idx=class_idx)


# ---- W+ codes ------------------------------------------------------------------------------------
def as_cpu_float(x: torch.Tensor | np.ndarray) -> torch.Tensor:
    """A float32 CPU tensor; numpy input (e.g. the latent store's read-only arrays) is copied."""
    if isinstance(x, np.ndarray):
        return torch.from_numpy(np.array(x, dtype=np.float32))
    return torch.as_tensor(x).detach().to("cpu", torch.float32)


def check_ws(G: torch.nn.Module, ws: torch.Tensor | np.ndarray, what: str) -> torch.Tensor:
    """Accept [num_ws, w_dim] or [N, num_ws, w_dim]; return float32 CPU [N, num_ws, w_dim].

    Raises:
        InputError: the shape does not fit G (naming the latent as `what`), or a value is not finite.
    """
    ws = as_cpu_float(ws)
    if ws.ndim == 2:
        ws = ws.unsqueeze(0)
    want = (int(G.num_ws), int(G.w_dim))
    if ws.ndim != 3 or tuple(ws.shape[1:]) != want or ws.shape[0] == 0:
        raise InputError(f"The {what} latent has shape {list(ws.shape)}, but this model needs W+ codes of shape "
                         f"[N, {want[0]}, {want[1]}]; it was probably made with another model.")
    if not torch.isfinite(ws).all():
        raise InputError(f"The {what} latent contains NaN or infinite values.")
    return ws


# ---- rows and layer ranges -----------------------------------------------------------------------
@dataclass(frozen=True)
class LayerRange:
    """A named group of ws rows and the (effective) resolutions they control."""
    name: str                       # 'coarse', 'middle' or 'fine'
    rows: tuple[int, ...]           # ws rows, ascending
    resolutions: tuple[int, ...]    # distinct resolutions [px] the rows control, ascending

    @property
    def label(self) -> str:
        """For display, e.g. 'coarse: rows 0-2 (4-8 px)'."""
        rows = f"{self.rows[0]}" if len(self.rows) == 1 else f"{self.rows[0]}-{self.rows[-1]}"
        lo, hi = self.resolutions[0], self.resolutions[-1]
        px = f"{lo} px" if lo == hi else f"{lo}-{hi} px"
        return f"{self.name}: rows {rows} ({px})"


def stylegan_arch(G: torch.nn.Module) -> str:
    """'stylegan1', 'stylegan2' or 'stylegan3': the families whose ws rows these functions understand.

    Raises:
        InputError: G is another kind of generator.
    """
    arch = getattr(G, "arch", None)
    if arch not in ("stylegan1", "stylegan2", "stylegan3"):
        raise InputError(f"Style mixing works with StyleGAN, StyleGAN2 and StyleGAN3 models; this model is "
                         f"{arch or 'unknown'}.")
    return arch


def row_resolutions(G: torch.nn.Module) -> tuple[int, ...]:
    """The resolution [px] each ws row controls, one per row.

    StyleGAN2: row 0 modulates the 4 px convolution, rows 2k-1 and 2k (k >= 1) the two
    convolutions at 4 * 2**k px (row 2k-1 also feeds the toRGB of the previous resolution), and
    the last row only the final toRGB, at the output resolution. So rows read 4, 8, 8, 16, 16, ...

    StyleGAN3: there are no fixed resolutions; each layer is band-limited to a cutoff f_c
    (cycles per image) that grows geometrically (paper Sec. 3.2). A row's resolution is the
    Nyquist size of its layer, 2 * f_c, rounded to the nearest power of two in log scale
    (row 0 feeds the Fourier input, whose bandwidth is the first cutoff; row i >= 1 feeds layer
    `synthesis.layer_names[i - 1]`, output cutoff).

    Raises:
        InputError: the model is not a StyleGAN2 or StyleGAN3 generator.
    """
    arch = stylegan_arch(G)
    if arch == "stylegan1":   # rows 2k and 2k+1 drive the two layers at 4 * 2**k px (v1 has no toRGB styles)
        return tuple(2 ** (2 + i // 2) for i in range(int(G.num_ws)))
    if arch == "stylegan2":
        res = int(G.img_resolution)
        return tuple(min(2 ** (2 + math.ceil(i / 2)), res) for i in range(int(G.num_ws)))
    syn = G.synthesis
    cutoffs = [float(syn.input.bandwidth)] + [float(getattr(syn, n).spec.out_cutoff) for n in syn.layer_names]
    return tuple(int(2 ** math.floor(math.log2(2 * f) + 0.5 + 1e-9)) for f in cutoffs[:int(G.num_ws)])


def layer_ranges(G: torch.nn.Module) -> dict[str, LayerRange]:
    """The named layer ranges of a model: 'coarse', 'middle' and 'fine'.

    Rule (the StyleGAN paper's bands, on `row_resolutions`): fine = rows at >= 64 px, or at
    the output resolution for models smaller than 64 px; coarse = the other rows at <= 8 px;
    middle = the rest (16-32 px). A band with no rows (only in models of 16 px or less) is left
    out. For StyleGAN2 at 1024 px this gives rows 0-2 / 3-6 / 7-17; for StyleGAN3-T at 1024 px,
    rows 0-3 / 4-6 / 7-15.

    Returns:
        {name: LayerRange} in coarse, middle, fine order.
    Raises:
        InputError: the model is not a StyleGAN2 or StyleGAN3 generator.
    """
    res = row_resolutions(G)
    fine_min = min(FINE_MIN_PX, int(G.img_resolution))
    band = ["fine" if r >= fine_min else "coarse" if r <= COARSE_MAX_PX else "middle" for r in res]
    out = {}
    for name in RANGE_NAMES:
        rows = tuple(i for i, b in enumerate(band) if b == name)
        if rows:
            out[name] = LayerRange(name, rows, tuple(sorted({res[i] for i in rows})))
    return out


def resolve_rows(G: torch.nn.Module, rows: str | LayerRange | Iterable[int | str]) -> tuple[int, ...]:
    """Turn a rows choice into sorted, distinct ws row indices.

    Args:
        G: the generator the rows belong to.
        rows: a range name ('coarse'), several joined by '+' or ',' ('coarse+middle'), a rows
            spec ('0-3, 8'), a LayerRange, or an iterable of ints and/or range names.
    Raises:
        InputError: an unknown name, a row outside 0..num_ws-1, or nothing chosen.
    """
    num_ws = int(G.num_ws)
    if isinstance(rows, LayerRange):
        items: list = list(rows.rows)
    elif isinstance(rows, str):
        items = [t for t in re.split(r"[+,;\s]+", rows.strip().lower()) if t]
    else:
        items = list(rows)
    ranges = layer_ranges(G)
    chosen: set[int] = set()
    for item in items:
        if isinstance(item, (int, np.integer)) and not isinstance(item, bool):
            values = [int(item)]
        elif isinstance(item, str) and item.strip().lower() in ranges:
            values = list(ranges[item.strip().lower()].rows)
        elif isinstance(item, str) and _ROWS_TOKEN.match(item.strip()):
            m = _ROWS_TOKEN.match(item.strip())
            lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
            if hi < lo:
                raise InputError(f"The row range {lo}-{hi} runs backwards; write it as {hi}-{lo}.")
            values = list(range(lo, hi + 1))
        else:
            names = ", ".join(ranges)
            raise InputError(f"Unknown layer range {item!r}; use {names} or row numbers from 0 to {num_ws - 1}.")
        bad = [v for v in values if not 0 <= v < num_ws]
        if bad:
            raise InputError(f"Row {bad[0]} does not exist; this model has rows 0 to {num_ws - 1}.")
        chosen.update(values)
    if not chosen:
        raise InputError(f"Choose at least one layer range ({', '.join(ranges)}) or row to mix.")
    return tuple(sorted(chosen))
