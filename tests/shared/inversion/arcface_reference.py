"""The official ArcFace IR-SE backbone's module tree (TreB1eN/InsightFace_Pytorch, as pSp/e4e use it for
their identity loss), written out for tests independently of `shared.inversion.identity`, and a seeded
random state for it."""
from __future__ import annotations

import torch
from torch import nn

from shared.archs.encoders import IR_BLOCKS, BottleneckIR


class OfficialBackbone(nn.Module):
    """The module tree of TreB1eN's / pSp's `Backbone(112, num_layers, mode='ir_se')`, written out
    here independently of `ArcFaceIdentity` (units: `BottleneckIR`, whose parity the encoder tests
    check against the official `bottleneck_IR_SE`)."""

    def __init__(self, widths=(64, 128, 256, 512), blocks=IR_BLOCKS[50]):
        super().__init__()
        self.input_layer = nn.Sequential(nn.Conv2d(3, widths[0], (3, 3), 1, 1, bias=False), nn.BatchNorm2d(widths[0]),
                                         nn.PReLU(widths[0]))
        self.output_layer = nn.Sequential(nn.BatchNorm2d(widths[3]), nn.Dropout(0.6), nn.Flatten(),
                                          nn.Linear(widths[3] * 7 * 7, 512), nn.BatchNorm1d(512, affine=True))
        units, prev = [], widths[0]
        for depth, n in zip(widths, blocks):
            units += [BottleneckIR(prev, depth, 2, True)] + [BottleneckIR(depth, depth, 1, True) for _ in range(n - 1)]
            prev = depth
        self.body = nn.Sequential(*units)

    def forward(self, x):
        x = self.output_layer(self.body(self.input_layer(x)))
        return x / torch.norm(x, 2, 1, True)


def randomised_state(module: nn.Module, seed: int) -> dict[str, torch.Tensor]:
    """PyTorch's default init drawn under `seed`, plus random BatchNorm statistics and affines."""
    g = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        for m in module.modules():
            if hasattr(m, "reset_parameters"):
                m.reset_parameters()
    out = {}
    for k, v in module.state_dict().items():
        if k.endswith("num_batches_tracked"):
            out[k] = torch.tensor(7)
        elif k.endswith("running_var"):
            out[k] = torch.rand(v.shape, generator=g) + 0.5
        elif k.endswith("running_mean") or (v.ndim == 1 and k.endswith("bias")):
            out[k] = 0.1 * torch.randn(v.shape, generator=g)
        elif v.ndim == 1 and k.endswith("weight") and ".2.weight" not in k:  # BN scales (not PReLU slopes)
            out[k] = 1 + 0.1 * torch.randn(v.shape, generator=g)
        else:
            out[k] = v.detach().clone()
    return out
