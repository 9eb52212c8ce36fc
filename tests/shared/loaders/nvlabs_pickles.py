"""Test helper: write network pickles with the structure of official NVlabs snapshots.

Follows `torch_utils/persistence.py` (format version 6) and the snapshot code of
`training/training_loop.py` in NVlabs/stylegan2-ada-pytorch and NVlabs/stylegan3: the file is
`pickle.dump(dict(G=..., D=..., G_ema=..., augment_pipe=..., training_set_kwargs=dict(...)))`;
every NVlabs layer class is persistent, so each such module (top-level network and submodule
alike) reduces to `torch_utils.persistence._reconstruct_persistent_obj(meta)` with
`meta = dict(type='class', version=6, module_src=<module source>, class_name=<bare class name>,
state=<instance __dict__ incl. _init_args/_init_kwargs>)`; `torch.nn` built-ins inside a network
(EG3D's `Sequential`/`Softplus`) pickle the ordinary way. Networks are deep-copied in eval mode
with gradients off, as the official snapshot code does. Constructor kwargs are the plain dict
that `**kwargs` makes, with nested dicts as `dnnlib.util.EasyDict` (train.py builds
`mapping_kwargs` etc. as EasyDicts). Tensors pickle through torch's own reducers
(`torch._utils._rebuild_tensor_v2`, `_rebuild_parameter`, `torch.storage._load_from_bytes`).

The official global names are produced by a pickler that renames our stand-in objects when it
writes them, so no fake `dnnlib`/`torch_utils` module is ever placed in `sys.modules`; the same
mechanism writes numpy's rebuild helpers in the numpy 1.x (`numpy.core.multiarray`) or 2.x
(`numpy._core.multiarray`) spelling, whichever numpy is installed. Not a test module.
"""
from __future__ import annotations

import copy
import dataclasses
import os
import pickle
import pickletools
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

try:
    from numpy._core import multiarray as _np_multiarray
    from numpy._core import numeric as _np_numeric
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core import multiarray as _np_multiarray  # type: ignore[no-redef]
    from numpy.core import numeric as _np_numeric  # type: ignore[no-redef]

PERSISTENCE_VERSION = 6
DEFAULT_MODULE = "training.networks"
NumpySpelling = Literal["numpy.core", "numpy._core"]


class EasyDict(dict):
    """Our stand-in for `dnnlib.util.EasyDict` (a dict with attribute access); pickled under
    that name."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value

    def __delattr__(self, name: str) -> None:
        del self[name]


def _reconstruct_persistent_obj(meta: dict[str, Any]) -> Any:
    """Stand-in whose only use is its pickled name `torch_utils.persistence._reconstruct_persistent_obj`."""
    raise RuntimeError("tests.shared.loaders.nvlabs_pickles writes NVlabs pickles; it cannot read them")


def easydicts(value: Any) -> Any:
    """Nested dicts -> EasyDict, recursively (lists and tuples are walked too)."""
    if isinstance(value, dict):
        return EasyDict({k: easydicts(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return type(value)(easydicts(v) for v in value)
    return value


def _kwargs_as_pickled(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """What `copy.deepcopy(kwargs)` holds in the persistence decorator: a plain top-level dict
    (made by `**kwargs`) whose nested dicts are still the caller's EasyDicts."""
    return {k: easydicts(v) for k, v in kwargs.items()}


_PLAIN_LEAVES = (type(None), bool, int, float, complex, str, bytes, np.generic, np.ndarray,
                 torch.Tensor, torch.dtype, torch.nn.Module)


def _is_nvlabs_attribute(value: Any) -> bool:
    """Attributes an official network could hold: plain data, arrays, tensors, modules."""
    if isinstance(value, (list, tuple, set, frozenset)):
        return all(_is_nvlabs_attribute(v) for v in value)
    if isinstance(value, dict):
        return all(_is_nvlabs_attribute(v) for v in value.values())
    return isinstance(value, _PLAIN_LEAVES) and not dataclasses.is_dataclass(value)


def _is_torch_builtin(module: torch.nn.Module) -> bool:
    return type(module).__module__.startswith("torch.nn.")


class _NVlabsPickler(pickle._Pickler):  # pure-Python pickler: lets us choose global names
    def __init__(self, file: Any, *, protocol: int, numpy_spelling: NumpySpelling,
                 persistent: Mapping[int, tuple[str, str]], plain_names: Mapping[type, str],
                 sources: Mapping[str, str]) -> None:
        super().__init__(file, protocol=protocol)
        self._persistent = persistent  # id(module) -> (module path, bare class name)
        self._sources = sources
        self._renames: dict[int, tuple[str, str]] = {
            id(_reconstruct_persistent_obj): ("torch_utils.persistence", "_reconstruct_persistent_obj"),
            id(EasyDict): ("dnnlib.util", "EasyDict"),
            id(_np_multiarray.scalar): (f"{numpy_spelling}.multiarray", "scalar"),
            id(_np_multiarray._reconstruct): (f"{numpy_spelling}.multiarray", "_reconstruct"),
            id(_np_numeric._frombuffer): (f"{numpy_spelling}.numeric", "_frombuffer"),
        }
        for cls, qualname in plain_names.items():
            self._renames[id(cls)] = tuple(qualname.rsplit(".", 1))  # type: ignore[assignment]

    def save_global(self, obj: Any, name: str | None = None) -> None:
        target = self._renames.get(id(obj))
        if target is None:
            super().save_global(obj, name)
            return
        module_name, qualname = target
        if self.proto >= 4:
            self.save(module_name)
            self.save(qualname)
            self.write(pickle.STACK_GLOBAL)
        else:
            self.write(pickle.GLOBAL + module_name.encode() + b"\n" + qualname.encode() + b"\n")
        self.memoize(obj)

    # The base class dispatches plain functions straight to its own save_global.
    dispatch = {**pickle._Pickler.dispatch, types.FunctionType: save_global}

    def reducer_override(self, obj: Any) -> Any:
        if not isinstance(obj, torch.nn.Module) or id(obj) not in self._persistent:
            return NotImplemented
        module_path, class_name = self._persistent[id(obj)]
        state = {k: v for k, v in obj.__getstate__().items()
                 if k.startswith("_") or k == "training" or _is_nvlabs_attribute(v)}
        state["_init_args"] = tuple(state.get("_init_args", ()))
        state["_init_kwargs"] = _kwargs_as_pickled(state.get("_init_kwargs", {}))
        meta = dict(type="class", version=PERSISTENCE_VERSION, module_src=self._sources[module_path],
                    class_name=class_name, state=state)
        return (_reconstruct_persistent_obj, (meta,))


def _split_class_name(class_name: str) -> tuple[str, str]:
    module_path, _, bare = class_name.rpartition(".")
    return module_path or DEFAULT_MODULE, bare


def _default_source(module_path: str) -> str:
    return (f'"""Stand-in for the source of {module_path.replace(".", "/")}.py, written by '
            'tests/nvlabs_pickles.py; a safe reader never executes it."""\n')


def write_nvlabs_pickle(
    path: str | os.PathLike[str],
    networks: Mapping[str, tuple[str, Mapping[str, Any], torch.nn.Module]],
    extra: Mapping[str, Any] | None = None,
    *,
    protocol: int = 4,
    numpy_spelling: NumpySpelling = "numpy.core",
    module_src: str | None = None,
    plain_modules: Mapping[type, str] | None = None,
) -> Path:
    """Write `networks` as an official-structure NVlabs snapshot pickle.

    Args:
        path: output file.
        networks: {'G' | 'D' | 'G_ema' | 'augment_pipe': (class_name, init_kwargs, module)}.
            class_name may be dotted ('training.networks_stylegan2.Generator'): the file stores
            the bare name, as NVlabs does, and the module path only names the stand-in source.
            Submodules are persistent too (bare class name of their Python class, init kwargs
            from an `_init_kwargs` attribute if they have one, else {}), except `torch.nn`
            built-ins and the classes in `plain_modules`. Attributes that are not plain data,
            arrays, tensors or modules (functions, dataclass configs) are left out of the state.
        extra: more top-level entries (override the defaults: augment_pipe=None and a plain-dict
            training_set_kwargs); pickled as given.
        protocol: pickle protocol (3 = Python 3.7, the default of most published snapshots; 4 =
            Python 3.8+).
        numpy_spelling: 'numpy.core' (files written with numpy 1.x) or 'numpy._core' (numpy 2.x).
        module_src: text stored as every class's `module_src` (default: a harmless docstring).
        plain_modules: {class: 'module.Name'} for non-persistent custom modules (EG3D's
            `training.volumetric_rendering.renderer.ImportanceRenderer`), pickled plainly under
            that global name.
    Returns: the path written.
    """
    plain_names = dict(plain_modules or {})
    snapshot: dict[str, Any] = {}
    persistent: dict[int, tuple[str, str]] = {}
    sources: dict[str, str] = {}
    official_order = ("G", "D", "G_ema", "augment_pipe")
    keys = [k for k in official_order if k in networks] + [k for k in networks if k not in official_order]
    for key in keys:
        class_name, init_kwargs, module = networks[key]
        module_path, bare = _split_class_name(class_name)
        net = copy.deepcopy(module).eval().requires_grad_(False)
        net._init_args = ()
        net._init_kwargs = dict(init_kwargs)
        for sub in net.modules():
            if sub is not net and (_is_torch_builtin(sub) or type(sub) in plain_names):
                continue
            persistent.setdefault(id(sub), (module_path, bare if sub is net else type(sub).__name__))
        default_src = _default_source(module_path)
        sources.setdefault(module_path, default_src if module_src is None else module_src)
        snapshot[key] = net
    snapshot.setdefault("augment_pipe", None)
    snapshot["training_set_kwargs"] = dict(
        class_name="training.dataset.ImageFolderDataset", path="datasets/ffhq-1024x1024.zip",
        use_labels=False, max_size=70000, xflip=True, resolution=1024, random_seed=0)
    snapshot.update(extra or {})
    out = Path(path)
    with open(out, "wb") as f:
        _NVlabsPickler(f, protocol=protocol, numpy_spelling=numpy_spelling, persistent=persistent,
                       plain_names=plain_names, sources=sources).dump(snapshot)
    return out


def pickle_globals(data: bytes) -> set[str]:
    """Every 'module.name' a pickle stream refers to (GLOBAL and STACK_GLOBAL), without loading it."""
    found: set[str] = set()
    memo: dict[int, Any] = {}
    pushed: list[Any] = []  # values pushed by the ops seen so far (None for non-strings)
    for op, arg, _ in pickletools.genops(data):
        if op.name == "GLOBAL":
            found.add(arg.replace(" ", "."))
            pushed.append(None)
        elif op.name == "STACK_GLOBAL":
            found.add(f"{pushed[-2]}.{pushed[-1]}")
            pushed.append(None)
        elif op.name in ("SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE"):
            pushed.append(arg)
        elif op.name == "MEMOIZE":
            memo[len(memo)] = pushed[-1] if pushed else None
        elif op.name in ("BINPUT", "LONG_BINPUT", "PUT"):
            memo[arg] = pushed[-1] if pushed else None
        elif op.name in ("BINGET", "LONG_BINGET", "GET"):
            pushed.append(memo.get(arg))
        elif op.name != "FRAME":
            pushed.append(None)
    return found
