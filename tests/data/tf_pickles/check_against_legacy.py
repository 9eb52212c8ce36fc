"""Second oracle for the StyleGAN2 TF pickle: NVlabs/stylegan2-ada-pytorch's `legacy.py`
(@ d72cc7d041b42ec8e806021a205ed9349f87c6a4), which converts TF pickles to its PyTorch networks.

    .venv/bin/python tests/data/tf_pickles/check_against_legacy.py --ada /path/to/stylegan2-ada-pytorch

Run from the repository root with the hub's environment (torch); the official checkout is put on
sys.path of this process only. `fused_modconv` and `impl`, run-time options of our oracle run (see
make_tf_vectors.py), are dropped from the static kwargs first: legacy.py refuses kwargs it does not
know. Prints the max differences: legacy vs the TF vectors, ours vs legacy, and tensor by tensor
between our TF->NVlabs renaming (`shared.loaders.tf_pickle.tf_stylegan2_to_nvlabs`) and legacy's.
Observed (2026-12-07): legacy vs TF ws 1.7e-6, img 5.7e-6; ours vs legacy img 5.7e-6, ws 0; tensors 0.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
ADA_COMMIT = "d72cc7d041b42ec8e806021a205ed9349f87c6a4"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ada", type=Path, required=True, help=f"NVlabs/stylegan2-ada-pytorch checkout @ {ADA_COMMIT}")
    args = ap.parse_args()
    sys.path.insert(0, str(args.ada))
    import importlib
    legacy = importlib.import_module("legacy")        # official code, this process only
    importlib.import_module("training.networks")      # the official package, imported before ours is reachable
    sys.path.remove(str(args.ada))
    sys.path.insert(0, str(HERE.parents[2]))
    from shared.loaders import load_generator
    from shared.loaders.tf_pickle import read_tf_pickle, tf_stylegan2_to_nvlabs

    pkl = HERE / "tf_stylegan2_r32.pkl"
    with open(pkl, "rb") as f:
        _, _, tf_gs = legacy._LegacyUnpickler(f).load()
    for k in ("fused_modconv", "impl"):
        tf_gs.static_kwargs.pop(k, None)
    G_legacy = legacy.convert_tf_generator(tf_gs).eval()
    v = np.load(HERE / "tf_stylegan2_r32.npz")
    z, a_ws = torch.from_numpy(v["z"]), torch.from_numpy(v["a_ws"])
    G = load_generator(pkl)
    with torch.no_grad():
        ws_l = G_legacy.mapping(z, None)
        img_l = G_legacy.synthesis(a_ws, noise_mode="const", force_fp32=True)
        print("legacy vs TF: ws", float((ws_l - a_ws).abs().max()), "img",
              float((img_l - torch.from_numpy(v["c_img"])).abs().max()))
        print("ours vs legacy: ws", float((G.mapping(z, None) - ws_l).abs().max()), "img",
              float((G.synthesis(a_ws, noise_mode="const") - img_l).abs().max()))
    mine = tf_stylegan2_to_nvlabs(read_tf_pickle(pkl)[2])
    theirs = G_legacy.state_dict()
    print("tensors: max diff", max(float((mine[k] - theirs[k]).abs().max()) for k in mine),
          "| ours only", sorted(set(mine) - set(theirs)), "| legacy only", sorted(set(theirs) - set(mine)))


if __name__ == "__main__":
    main()
