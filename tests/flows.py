"""Seeded random StyleFlow networks for tests (the official StyleFlow CNF of shared.archs.styleflow)."""
from __future__ import annotations

import torch

from shared.archs.styleflow import StyleFlow


def randomised(flow: StyleFlow, seed: int, scale: float = 0.3) -> StyleFlow:
    """Every parameter drawn from a seeded generator (no global RNG), end time 1."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in flow.parameters():
            p.copy_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))
        flow.chain[1].sqrt_end_time.fill_(1.0)
    return flow
