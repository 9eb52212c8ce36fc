"""Oracle for two official layouts the hub used to refuse: StyleCLIP's SingleMapper and e4e's cars
encoder. Runs the official PyTorch classes once, on random weights from a written recipe, and
writes small vectors (inputs, outputs, the recipe; no weights, no official code) for our tests.

Official code (checkouts the caller provides; put on sys.path of this process only):
    orpatashnik/StyleCLIP       @ f87a47f7fc39e19a1f6c88293875692b303bf168  mapper/latent_mappers.py (SingleMapper)
    omertov/encoder4editing     @ 99ea50578695d2e8a1cf7259d8ee89b23eea942b  models/encoders/psp_encoders.py
                                                                           (Encoder4Editing, stylegan_size 512)

    .venv/bin/python tests/data/official_torch/make_vectors.py --case single_mapper --repo /path/to/StyleCLIP
    .venv/bin/python tests/data/official_torch/make_vectors.py --case e4e_cars --repo /path/to/encoder4editing

Import work-arounds (no numeric effect), as for the ../shared/parity vectors: both repos' `op/` modules
compile CUDA at import through `torch.utils.cpp_extension.load`, replaced by an inert placeholder;
StyleCLIP's `fused_leaky_relu` calls `input.cuda()`, made the identity, so its CPU branch runs.

Weights (`entries` in the JSON, in state_dict order): np.random.RandomState(seed).standard_normal(shape)
as float32, times `scale`, plus `offset` (abs first where `abs`). Rules: conv/linear weights
g/sqrt(fan_in) (EqualLinear: g / lr_mul, its official init), biases 0.1 g (EqualLinear: 0.1 g / lr_mul),
BatchNorm weight 1 + 0.1 g, bias 0.1 g, running_mean 0.1 g, running_var 1 + 0.1 |g|, PReLU 0.25 + 0.1 g.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import types
from pathlib import Path

import numpy as np
import torch

COMMITS = {"single_mapper": ("orpatashnik/StyleCLIP", "f87a47f7fc39e19a1f6c88293875692b303bf168"),
           "e4e_cars": ("omertov/encoder4editing", "99ea50578695d2e8a1cf7259d8ee89b23eea942b")}
BASE_SEED = {"single_mapper": 31000, "e4e_cars": 32000}


def _inert_imports(repo: Path) -> None:
    import torch.utils.cpp_extension as cpp
    cpp.load = lambda *a, **k: types.SimpleNamespace()     # the CUDA ops are never called on this path
    torch.Tensor.cuda = lambda self, *a, **k: self          # StyleCLIP's fused_leaky_relu calls input.cuda()
    sys.path.insert(0, str(repo))


def _entry(i: int, key: str, t: torch.Tensor, module: torch.nn.Module | None, seed: int) -> dict:
    name = key.rsplit(".", 1)[-1]
    mtype = type(module).__name__ if module is not None else ""
    lr_mul = float(getattr(module, "lr_mul", 1.0))
    scale, offset, use_abs, rule = 0.1, 0.0, False, "0.1*g"
    if mtype.startswith("BatchNorm"):
        scale, offset, use_abs, rule = {
            "weight": (0.1, 1.0, False, "bn.weight: 1 + 0.1*g"), "bias": (0.1, 0.0, False, "bn.bias: 0.1*g"),
            "running_mean": (0.1, 0.0, False, "running_mean: 0.1*g"),
            "running_var": (0.1, 1.0, True, "running_var: 1 + 0.1*|g|")}.get(name, (0.0, 0.0, False, "zero"))
    elif mtype == "PReLU":
        scale, offset, rule = 0.1, 0.25, "prelu: 0.25 + 0.1*g"
    elif mtype == "EqualLinear":
        scale, rule = (1 / lr_mul, "EqualLinear weight: g/lr_mul") if name == "weight" else \
            (0.1 / lr_mul, "EqualLinear bias: 0.1*g/lr_mul")
    elif name == "weight" and t.ndim >= 2:
        scale, rule = 1 / math.sqrt(t[0].numel()), "weight(ndim>=2): g/sqrt(fan_in)"
    return {"index": i, "key": key, "shape": list(t.shape), "dtype": str(t.dtype).replace("torch.", ""),
            "seed": seed + i, "scale": scale, "offset": offset, "abs": use_abs, "rule": rule, "module_type": mtype}


def _apply_recipe(model: torch.nn.Module, base_seed: int) -> list[dict]:
    modules = dict(model.named_modules())
    entries = []
    with torch.no_grad():
        for i, (key, t) in enumerate(model.state_dict().items()):
            e = _entry(i, key, t, modules.get(key.rsplit(".", 1)[0]), base_seed)
            entries.append(e)
            if not t.is_floating_point():
                continue
            g = np.random.RandomState(e["seed"]).standard_normal(e["shape"]).astype(np.float32)
            if e["abs"]:
                g = np.abs(g)
            t.copy_(torch.from_numpy(g * np.float32(e["scale"]) + np.float32(e["offset"])))
    return entries


def _single_mapper(out: Path) -> dict:
    from argparse import Namespace
    from mapper.latent_mappers import SingleMapper
    opts = Namespace(mapper_type="SingleMapper", no_coarse_mapper=False, no_medium_mapper=False,
                     no_fine_mapper=False)
    model = SingleMapper(opts).eval()
    entries = _apply_recipe(model, BASE_SEED["single_mapper"])
    x = torch.from_numpy(np.random.RandomState(5).standard_normal((2, 18, 512)).astype(np.float32))
    with torch.no_grad():
        codes = model(x)
    np.savez(out / "styleclip_single_mapper.npz", x=x.numpy(), codes=codes.numpy())
    return {"constructor": {"class": "SingleMapper", "opts": vars(opts)}, "entries": entries,
            "cases": {"codes": "SingleMapper(opts)(x), x [2, 18, 512] = RandomState(5).standard_normal"},
            "max_abs": float(codes.abs().max()), "file": "mapper/latent_mappers.py"}


def _e4e_cars(out: Path) -> dict:
    from argparse import Namespace
    from models.encoders.psp_encoders import Encoder4Editing
    opts = Namespace(stylegan_size=512, dataset_type="cars_encode", encoder_type="Encoder4Editing")
    model = Encoder4Editing(50, "ir_se", opts).eval()
    entries = _apply_recipe(model, BASE_SEED["e4e_cars"])
    x = torch.from_numpy(np.random.RandomState(6).uniform(-1, 1, (1, 3, 192, 256)).astype(np.float32))
    with torch.no_grad():
        codes = model(x)
    np.savez(out / "e4e_cars_encoder.npz", codes=codes.numpy())      # x is rebuilt from its seed (590 kB)
    return {"constructor": {"class": "Encoder4Editing", "num_layers": 50, "mode": "ir_se", "opts": vars(opts)},
            "entries": entries, "max_abs": float(codes.abs().max()), "file": "models/encoders/psp_encoders.py",
            "x_sha256": __import__("hashlib").sha256(x.numpy().tobytes()).hexdigest(),
            "cases": {"codes": "Encoder4Editing(50, 'ir_se', opts)(x) (ProgressiveStage.Inference), "
                               "x [1, 3, 192, 256] = RandomState(6).uniform(-1, 1): the CarsEncodeTransforms size"}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--case", choices=sorted(COMMITS), required=True)
    ap.add_argument("--repo", type=Path, required=True, help="checkout of the official repository at the pinned commit")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent)
    args = ap.parse_args()
    _inert_imports(args.repo)
    torch.set_num_threads(1)
    meta = (_single_mapper if args.case == "single_mapper" else _e4e_cars)(args.out)
    repo, commit = COMMITS[args.case]
    meta = {"origin": {"repo": repo, "commit": commit, "file": meta.pop("file")}, "torch": torch.__version__,
            "numpy": np.__version__, "tolerance": "codes: 1e-5 * max(1, max|expected|)", **meta}
    name = "styleclip_single_mapper" if args.case == "single_mapper" else "e4e_cars_encoder"
    (args.out / f"{name}.json").write_text(json.dumps(meta, indent=0) + "\n")
    print(name, "max|codes|", meta["max_abs"], "entries", len(meta["entries"]))


if __name__ == "__main__":
    main()
