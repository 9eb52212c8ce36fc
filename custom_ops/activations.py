"""The activations of `bias_act` with their default slope and gain, shared by the PyTorch reference
and the CUDA path (NVlabs' `torch_utils/ops/bias_act.py` `activation_funcs`, github.com/NVlabs/stylegan3).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

__all__ = ["ACTIVATIONS", "Activation"]


@dataclass(frozen=True)
class Activation:
    func: Callable  # (x, alpha) -> y
    def_alpha: float
    def_gain: float
    cuda_idx: int  # activation id understood by the CUDA kernel


ACTIVATIONS: dict[str, Activation] = {
    "linear": Activation(lambda x, a: x, 0.0, 1.0, 1),
    "relu": Activation(lambda x, a: F.relu(x), 0.0, math.sqrt(2), 2),
    "lrelu": Activation(lambda x, a: F.leaky_relu(x, a), 0.2, math.sqrt(2), 3),
    "tanh": Activation(lambda x, a: torch.tanh(x), 0.0, 1.0, 4),
    "sigmoid": Activation(lambda x, a: torch.sigmoid(x), 0.0, 1.0, 5),
    "elu": Activation(lambda x, a: F.elu(x), 0.0, 1.0, 6),
    "selu": Activation(lambda x, a: F.selu(x), 0.0, 1.0, 7),
    "softplus": Activation(lambda x, a: F.softplus(x), 0.0, 1.0, 8),
    "swish": Activation(lambda x, a: torch.sigmoid(x) * x, 0.0, math.sqrt(2), 9),
}
