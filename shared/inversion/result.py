"""What every inversion method returns, and how a long-running one reports progress and stops.

One result type for all methods (optimisation in W / W+ after Abdal et al. 2019 and NVlabs'
stylegan2-ada-pytorch `projector.py`, W+ and noise after Abdal et al. 2020, pSp / e4e / ReStyle
encoders, hybrid encoder + optimisation, PTI after Roich et al. 2021), so a UI can lay the
methods side by side. Cancellation is cooperative: the UI passes `should_stop` (polled between
steps) or raises `InversionCancelled` from its progress callback; either way the method raises
`InversionCancelled` whose `partial` holds what was computed so far.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

__all__ = ["InversionCancelled", "InversionResult", "InversionStep", "Progress", "ShouldStop", "Monitor"]

Progress = Callable[[float, str], None]  # progress(fraction in [0, 1], message); may raise to cancel
ShouldStop = Callable[[], bool]           # polled between steps; True cancels


@dataclass(frozen=True, eq=False)
class InversionStep:
    """One intermediate output (a ReStyle iteration): latent and its image, on the CPU."""
    index: int            # 0-based iteration
    ws: torch.Tensor      # [1, num_ws, w_dim] float32
    image: torch.Tensor   # [1, 3, H, W] float32 in about [-1, 1] (generator resolution)


@dataclass(frozen=True, eq=False)
class InversionResult:
    """The outcome of one inversion method on one image (tensors detached, on the CPU).

    method:  'w', 'w+', 'w+n' (W+ then noise), 'psp', 'e4e', 'restyle_psp', 'restyle_e4e',
             'hybrid_<encoder>', 'pti'.
    ws:      [1, num_ws, w_dim] float32, the latent to hand to the editing tabs.
    image:   [1, 3, H, W] float32, the reconstruction G.synthesis(ws) (with `noises` if given;
             for PTI: by the tuned generator), clamped to [-1, 1].
    losses:  one dict per optimisation step (keys such as 'loss', 'perceptual', 'mse',
             'noise_reg', 'lr'; values are floats); encoders log one dict per forward pass.
    seconds: wall time of the method (model loading excluded).
    noises:  the optimised StyleGAN2 noise maps, each [1, 1, r, r] in `G.noises.noise_i` order,
             or None when the generator's own constant noise was used.
    steps:   ReStyle's per-iteration outputs (empty for the other methods).
    extra:   method-specific facts: 'perceptual' (which perceptual loss was used), 'init_ws',
             'generator' (PTI's tuned copy; stays on the generator's device), 'stopped_early', ...
    """
    method: str
    ws: torch.Tensor
    image: torch.Tensor
    losses: list[dict[str, float]]
    seconds: float
    noises: tuple[torch.Tensor, ...] | None = None
    steps: tuple[InversionStep, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)


class InversionCancelled(Exception):
    """The user cancelled a running inversion. `partial` is the result so far (None if none yet)."""

    def __init__(self, message: str = "Inversion cancelled.", partial: InversionResult | None = None):
        super().__init__(message)
        self.partial = partial


class Monitor:
    """Progress reporting and cancellation for one method call (internal to the package).

    `tick(done, total, message)` polls `should_stop`, reports the fraction `(offset + scale *
    done / total)` and lets a callback's own `InversionCancelled` through unchanged. `offset`
    and `scale` place a sub-task (PTI's pivot search) inside its parent's progress bar.
    """

    def __init__(self, progress: Progress | None, should_stop: ShouldStop | None, *,
                 offset: float = 0.0, scale: float = 1.0):
        self.progress, self.should_stop = progress, should_stop
        self.offset, self.scale = offset, scale
        self.start = time.perf_counter()

    def sub(self, offset: float, scale: float) -> "Monitor":
        """A monitor for a sub-task covering [offset, offset + scale] of this one's range."""
        child = Monitor(self.progress, self.should_stop, offset=self.offset + self.scale * offset,
                        scale=self.scale * scale)
        child.start = self.start
        return child

    def tick(self, done: int, total: int, message: str) -> None:
        if self.should_stop is not None and self.should_stop():
            raise InversionCancelled(f"Inversion cancelled after {done} of {total} steps.")
        if self.progress is not None:
            self.progress(min(1.0, self.offset + self.scale * done / max(total, 1)), message)

    def elapsed(self) -> float:
        return time.perf_counter() - self.start
