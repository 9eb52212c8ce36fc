"""Oracle for the TensorFlow StyleGAN pickles: runs the official NVlabs TF code once, in a scratch
environment, and writes small official-layout pickles plus their outputs for our parity tests.

Official code (read from checkouts the caller provides; never copied into this repository):
    NVlabs/stylegan  @ 1e0d5c781384ef12b50ef20a62fee5d78b38e88f  training/networks_stylegan.py, dnnlib/
    NVlabs/stylegan2 @ bf0fe0baba9fc7039eae0cac575c1778be1ce3e3  training/networks_stylegan2.py, dnnlib/
                                                                 (dnnlib/tflib/ops with impl='ref')

Environment (scratch venv, not the hub's):
    python3 -m venv /tmp/tfenv && /tmp/tfenv/bin/pip install tensorflow-cpu "numpy<2"
    /tmp/tfenv/bin/python tests/data/tf_pickles/make_tf_vectors.py \
        --stylegan /path/to/stylegan --stylegan2 /path/to/stylegan2 --out tests/data/tf_pickles

TensorFlow 2.x runs the TF1 code through `tensorflow.compat.v1` with v2 behaviour (eager execution,
v2 tensor shapes) disabled; `import tensorflow` inside the official code is pointed at that module,
and `tensorflow.contrib` (imported, never used on this path) is an empty module. TF's CPU kernels
of conv2d, depthwise_conv2d and conv2d_transpose take NHWC only, so the official NCHW calls go
through NHWC transposes (`_nhwc_on_cpu`). TF has no CPU kernel for grouped transposed
convolutions, so StyleGAN2 runs its official `fused_modconv=False` path (modulation and
demodulation applied to the activations instead of the weights; the published pickles default to
the fused path, which computes the same function). Nothing of the
official numerics is changed; StyleGAN2's custom ops are called with impl='ref' (pure TF).
StyleGAN v1 is built with `use_noise=1` instead of its default `True`: the official code puts
`use_noise` into the noise variables' shape ([1, use_noise, r, r]), which TF 2 refuses as a bool.

For each network the script builds the official (G, D, Gs) at a small size, gives every variable
random values (weights keep their official N(0, 1/lrmul) init; biases, noise strengths, style
biases, dlatent_avg and the noise inputs get seeded random values so that every term matters), and
writes:
    NAME.pkl  the (G, D, Gs) tuple pickled by the official `Network.__getstate__`, exactly the
              layout of the published pickles, except that `build_module_src` (the official source,
              CC BY-NC) is replaced by a one-line placeholder: our reader never looks at it.
    NAME.npz  inputs and official outputs (float32):
              z [N, Z]; a_ws = mapping(z) [N, L, W]; b_ws = truncation of a_ws (psi, cutoff below);
              b_img = Gs.run(z, psi, cutoff, randomize_noise=False) [N, 3, R, R];
              c_img = synthesis(a_ws, randomize_noise=False) (fixed noise = the noise variables);
              d_ws, d_img = style mixing as the official figure (rows `mix_rows` of src into dst).
    NAME.json constructor kwargs, cases, pinned commits, TF version, consistency diffs.
"""
from __future__ import annotations

import argparse
import functools
import hashlib
import json
import pickle
import sys
import types
from pathlib import Path

import numpy as np

STYLEGAN_COMMIT = "1e0d5c781384ef12b50ef20a62fee5d78b38e88f"
STYLEGAN2_COMMIT = "bf0fe0baba9fc7039eae0cac575c1778be1ce3e3"
PLACEHOLDER_SRC = "# official network source removed from this test pickle (NVlabs, CC BY-NC 4.0)\n"

CASES = {
    # name: (repo, build func, static kwargs, psi, cutoff, mixing rows)
    "tf_stylegan1_r128": ("stylegan", "training.networks_stylegan.G_style", dict(
        latent_size=32, dlatent_size=32, mapping_fmaps=32, resolution=128, num_channels=3, label_size=0,
        fmap_base=256, fmap_max=32, structure="auto", use_noise=1), 0.7, 8, (4, 8)),
    "tf_stylegan2_r32": ("stylegan2", "training.networks_stylegan2.G_main", dict(
        latent_size=32, dlatent_size=32, mapping_fmaps=32, resolution=32, num_channels=3, label_size=0,
        fmap_base=256, fmap_max=32, architecture="skip", fused_modconv=False), 0.5, 4, (2, 6)),
}
D_FUNCS = {"stylegan": "training.networks_stylegan.D_basic", "stylegan2": "training.networks_stylegan2.D_stylegan2"}


def _import_official(root: Path, repo: str):
    """Import dnnlib.tflib and the network module from the official checkout under tf.compat.v1."""
    import tensorflow as real_tf
    tf = real_tf.compat.v1
    tf.disable_v2_behavior()
    sys.modules["tensorflow"] = tf
    sys.modules["tensorflow.contrib"] = types.ModuleType("tensorflow.contrib")
    tf.contrib = sys.modules["tensorflow.contrib"]
    _nhwc_on_cpu(tf)
    sys.path.insert(0, str(root))   # the scratch process only: the official packages are not on our path
    import dnnlib.tflib as tflib
    module = __import__(f"training.networks_{'stylegan' if repo == 'stylegan' else 'stylegan2'}",
                        fromlist=["x"])
    if repo == "stylegan2":   # the reference ops: pure TF, no CUDA plugin
        for name in ("fused_bias_act", "upsample_2d", "downsample_2d", "upsample_conv_2d", "conv_downsample_2d"):
            if hasattr(module, name):
                setattr(module, name, functools.partial(getattr(module, name), impl="ref"))
    return tf, tflib, module, real_tf.__version__


def _nhwc_on_cpu(tf) -> None:
    """TF's CPU kernels for conv2d, depthwise_conv2d and conv2d_transpose take NHWC only; run the
    official code's NCHW calls through NHWC (transpose in, same op, transpose out: same arithmetic)."""
    to_nhwc, to_nchw = (lambda t: tf.transpose(t, [0, 2, 3, 1])), (lambda t: tf.transpose(t, [0, 3, 1, 2]))

    def nhwc_strides(s):
        return [s[0], s[2], s[3], s[1]] if s is not None and len(s) == 4 else s

    conv2d, depthwise, transpose = tf.nn.conv2d, tf.nn.depthwise_conv2d, tf.nn.conv2d_transpose

    def conv2d_nchw(input, filter=None, strides=None, padding=None, data_format="NHWC", **kw):
        if data_format != "NCHW":
            return conv2d(input, filter, strides=strides, padding=padding, data_format=data_format, **kw)
        return to_nchw(conv2d(to_nhwc(input), filter, strides=nhwc_strides(strides), padding=padding,
                              data_format="NHWC", **kw))

    def depthwise_nchw(input, filter, strides, padding, rate=None, name=None, data_format=None, dilations=None):
        if data_format != "NCHW":
            return depthwise(input, filter, strides, padding, rate=rate, name=name, data_format=data_format,
                             dilations=dilations)
        return to_nchw(depthwise(to_nhwc(input), filter, nhwc_strides(strides), padding, rate=rate, name=name,
                                 data_format="NHWC", dilations=dilations))

    def transpose_nchw(value, filter, output_shape, strides, padding="SAME", data_format="NHWC", name=None):
        if data_format != "NCHW":
            return transpose(value, filter, output_shape, strides, padding=padding, data_format=data_format, name=name)
        n, c, h, w = output_shape
        return to_nchw(transpose(to_nhwc(value), filter, [n, h, w, c], nhwc_strides(strides), padding=padding,
                                 data_format="NHWC", name=name))

    tf.nn.conv2d, tf.nn.depthwise_conv2d, tf.nn.conv2d_transpose = conv2d_nchw, depthwise_nchw, transpose_nchw


def _randomise(tflib, net, rng: np.random.RandomState) -> None:
    values = {}
    for name, var in net.vars.items():
        shape = tuple(int(d) for d in var.shape)
        cur = tflib.run(var)
        leaf = name.rsplit("/", 1)[-1]
        if name.endswith("lod"):
            values[var] = np.float32(0)
        elif leaf in ("bias", "mod_bias"):
            values[var] = np.asarray(0.2 * rng.randn(*shape), dtype=np.float32)
        elif leaf in ("noise_strength",) or name.endswith("Noise/weight"):
            values[var] = np.asarray(0.3 * rng.randn(*shape), dtype=np.float32)
        elif leaf == "dlatent_avg":
            values[var] = np.asarray(0.5 * rng.randn(*shape), dtype=np.float32)
        elif leaf.startswith("noise") or leaf == "const":
            values[var] = np.asarray(rng.randn(*shape), dtype=np.float32)
        else:
            values[var] = cur + (0.05 * rng.randn(*shape) * (np.abs(cur).mean() + 1e-3)).astype(np.float32)
    tflib.set_vars(values)


def _make(name: str, roots: dict[str, Path], out: Path) -> dict:
    repo, func, kwargs, psi, cutoff, mix_rows = CASES[name]
    root = roots[repo]
    tf, tflib, module, tf_version = _import_official(root, repo)
    tflib.init_tf({"rnd.np_random_seed": 1000, "rnd.tf_random_seed": 1000,
                  "allow_soft_placement": True})   # run() pins /gpu:0; place it on the CPU
    extra = {"impl": "ref"} if repo == "stylegan2" else {}
    G = tflib.Network("G", func_name=func, **kwargs, **extra)
    D = tflib.Network("D", func_name=D_FUNCS[repo], num_channels=3, resolution=kwargs["resolution"], label_size=0,
                      fmap_base=kwargs["fmap_base"], fmap_max=kwargs["fmap_max"], **extra)
    Gs = G.clone("Gs")
    rng = np.random.RandomState(123)
    for net in (G, D, Gs):
        _randomise(tflib, net, rng)
    rng = np.random.RandomState(7)
    n = 2
    z = rng.randn(n, kwargs["latent_size"]).astype(np.float32)
    mapping, synthesis = Gs.components.mapping, Gs.components.synthesis
    a_ws = mapping.run(z, None)
    avg = Gs.get_var("dlatent_avg")
    coefs = np.where(np.arange(a_ws.shape[1])[None, :, None] < cutoff, np.float32(psi), np.float32(1))
    b_ws = (avg + (a_ws - avg) * coefs).astype(np.float32)           # tflib.lerp(avg, ws, coefs)
    b_img = Gs.run(z, None, truncation_psi=psi, truncation_cutoff=cutoff, randomize_noise=False)
    b_img_via_ws = synthesis.run(b_ws, randomize_noise=False)
    c_img = synthesis.run(a_ws, randomize_noise=False)
    c_img_psi1 = Gs.run(z, None, truncation_psi=1, randomize_noise=False)
    d_ws = a_ws[[1, 0]].copy()                                         # dst = the other sample
    d_ws[:, mix_rows[0]:mix_rows[1]] = a_ws[:, mix_rows[0]:mix_rows[1]]
    d_img = synthesis.run(d_ws, randomize_noise=False)
    # what a fresh process gets back from the pickle through the official loader
    for net in (G, D, Gs, *G.components.values(), *D.components.values(), *Gs.components.values()):
        net._build_module_src = PLACEHOLDER_SRC
    pkl = out / f"{name}.pkl"
    with open(pkl, "wb") as f:
        pickle.dump((G, D, Gs), f, protocol=pickle.HIGHEST_PROTOCOL)
    np.savez(out / f"{name}.npz", z=z, a_ws=a_ws, b_ws=b_ws, b_img=b_img, c_img=c_img, d_ws=d_ws, d_img=d_img)
    net_src = root / "training" / f"networks_{'stylegan' if repo == 'stylegan' else 'stylegan2'}.py"
    meta = {
        "origin": {"repo": f"NVlabs/{repo}", "commit": STYLEGAN_COMMIT if repo == "stylegan" else STYLEGAN2_COMMIT,
                   "file": str(net_src.relative_to(root)), "func": func,
                   "file_sha256": hashlib.sha256(net_src.read_bytes()).hexdigest()},
        "tensorflow": tf_version, "numpy": np.__version__, "python": sys.version.split()[0],
        "static_kwargs": {**kwargs, **extra}, "truncation": {"psi": psi, "cutoff": cutoff},
        "mix_rows": list(mix_rows),
        "cases": {
            "a_ws": "Gs.components.mapping.run(z, None)",
            "b_ws": "dlatent_avg + (a_ws - dlatent_avg) * (psi on rows < cutoff, else 1)  (= G_style/G_main truncation)",
            "b_img": "Gs.run(z, None, truncation_psi=psi, truncation_cutoff=cutoff, randomize_noise=False)",
            "c_img": "Gs.components.synthesis.run(a_ws, randomize_noise=False)",
            "d_ws": "a_ws[[1, 0]] with rows mix_rows taken from a_ws (generate_figures.py style mixing)",
            "d_img": "Gs.components.synthesis.run(d_ws, randomize_noise=False)",
        },
        "consistency": {
            "b_img_vs_synthesis_of_b_ws": float(np.abs(b_img - b_img_via_ws).max()),
            "c_img_vs_Gs_run_psi1": float(np.abs(c_img - c_img_psi1).max()),
        },
        "max_abs": {k: float(np.abs(v).max()) for k, v in
                    dict(a_ws=a_ws, b_img=b_img, c_img=c_img, d_img=d_img).items()},
        "pickle": {"file": pkl.name, "sha256": hashlib.sha256(pkl.read_bytes()).hexdigest(),
                   "build_module_src": "replaced by a placeholder line (see module docstring)"},
        "randomisation": "weights: official init + 5% noise; bias/mod_bias 0.2 g; noise strengths 0.3 g; "
                         "dlatent_avg 0.5 g; const and noise inputs g; lod 0 (g: np.random.RandomState(123))",
        "tolerance": "images 1e-4 * max(1, max|expected|); latents 1e-5",
    }
    (out / f"{name}.json").write_text(json.dumps(meta, indent=1) + "\n")
    return meta


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--stylegan", type=Path, required=True, help=f"NVlabs/stylegan checkout @ {STYLEGAN_COMMIT}")
    ap.add_argument("--stylegan2", type=Path, required=True, help=f"NVlabs/stylegan2 checkout @ {STYLEGAN2_COMMIT}")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent)
    ap.add_argument("--case", choices=sorted(CASES), required=True,
                    help="one case per process (the two repos' dnnlib packages differ)")
    args = ap.parse_args()
    meta = _make(args.case, {"stylegan": args.stylegan, "stylegan2": args.stylegan2}, args.out)
    print(json.dumps({args.case: meta["consistency"]}))


if __name__ == "__main__":
    main()
