"""Safe reader for NVlabs persistence pickles (StyleGAN2-ADA, StyleGAN3, StyleNeRF, EG3D `.pkl`).

NVlabs' `torch_utils/persistence.py` (format version 6, identical in NVlabs/stylegan2-ada-pytorch
and NVlabs/stylegan3) pickles every network class as a call
`torch_utils.persistence._reconstruct_persistent_obj(meta)` with
`meta = dict(type='class', version=6, module_src=<source of the defining module>,
class_name=<bare class name>, state=<the instance __dict__>)`; the official loader `exec`s
`module_src`. This module never does: a restricted `pickle.Unpickler` resolves only an allow-list
of data-rebuilding globals (torch tensor/parameter/storage rebuilders, numpy scalar/array
rebuilders in their numpy 1.x and 2.x spellings, `collections.OrderedDict`, `dnnlib` EasyDict as
a plain dict) and maps the persistence entry point onto `PersistentObject`, a record of the class
name, constructor kwargs and state tree. Tensor storages arrive as `torch.save` bytes
(`torch.storage._load_from_bytes`) and are read with `torch.load(weights_only=True)`. Every other
global raises `UnsafePickleError` naming it, before anything runs. Plain `torch.nn` modules inside
a network (EG3D's `Sequential`) and EG3D's few undecorated classes become inert
`TorchModuleRecord`s: only their state is kept, none of their code is called. StyleNeRF's
OmegaConf constructor kwargs become inert records turned into plain data (`_omegaconf.py`). Building our own
modules from a `PersistentObject` is the architecture modules' job
(`from_nvlabs(init_kwargs, tensors)`).
"""
from __future__ import annotations

import hashlib
import io
import os
import pickle
import re
import struct
import sys
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch
from torch import Tensor

from shared.errors import CheckpointError, UnsafePickleError
from shared.loaders._omegaconf import OMEGACONF_GLOBALS, OmegaRecord
from shared.loaders._omegaconf import to_plain as _omegaconf_to_plain

try:  # numpy >= 2 keeps the rebuild helpers under numpy._core; 1.x under numpy.core.
    from numpy._core import multiarray as _np_multiarray
    from numpy._core import numeric as _np_numeric
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core import multiarray as _np_multiarray  # type: ignore[no-redef]
    from numpy.core import numeric as _np_numeric  # type: ignore[no-redef]

__all__ = ["NVlabsUnpickler", "PersistentObject", "TorchModuleRecord", "read_nvlabs_pickle"]

# Undecorated submodules of NVlabs/eg3d's TriPlaneGenerator (checked at 7cf1fd1); their state
# is plain data, so they become inert `TorchModuleRecord`s exactly like `torch.nn` containers.
_INERT_NVLABS_MODULES = frozenset({
    "training.triplane.OSGDecoder",
    "training.volumetric_rendering.renderer.ImportanceRenderer",
    "training.volumetric_rendering.ray_sampler.RaySampler",
    "training.volumetric_rendering.ray_marcher.MipRayMarcher2",
})

_WEIGHTS_ONLY_GLOBAL = re.compile(r"GLOBAL\s+([A-Za-z_][\w.]*)")


class _ContentError(CheckpointError):
    """Internal: the pickle is well-formed but not a usable network snapshot (message is a clause)."""


def _refuse(qualname: str) -> UnsafePickleError:
    err = UnsafePickleError(
        f"The pickle refers to the Python global '{qualname}', which an NVlabs network pickle "
        "never needs, so it was refused and nothing in the file was run.")
    err.global_name = qualname  # type: ignore[attr-defined]
    return err


# ---------------------------------------------------------------------------------------------
# Records


@dataclass(frozen=True, eq=False)
class PersistentObject:
    """One `torch_utils.persistence` object, reconstructed as data (no NVlabs code involved).

    Attributes:
        class_name: the bare class name stored by NVlabs (e.g. 'Generator', 'SynthesisLayer');
            NVlabs pickles do not record the module path.
        version: persistence format version (6 for every released NVlabs repo).
        init_args: positional constructor arguments, converted to plain Python data.
        init_kwargs: constructor keyword arguments as plain dicts (EasyDict -> dict, numpy
            scalars -> Python numbers, numpy arrays -> lists), nested dicts included.
        state: the raw instance `__dict__` (nn.Module internals, `_init_args`/`_init_kwargs`,
            hyperparameter attributes); EasyDicts are plain dicts, everything else as pickled.
        module_src_len, module_src_sha256: length and digest of the embedded source, kept only
            to identify a source revision; the text itself is dropped unread.
    """

    class_name: str
    version: int | None
    init_args: tuple[Any, ...]
    init_kwargs: dict[str, Any]
    state: dict[str, Any]
    module_src_len: int
    module_src_sha256: str

    def tensors(self) -> dict[str, Tensor]:
        """Flatten parameters and persistent buffers like `nn.Module.state_dict()` would.

        Returns: {dotted name: detached CPU tensor} in state_dict order; None entries skipped.
        """
        out: dict[str, Tensor] = {}
        _collect_tensors(self.state, "", out)
        return out

    def attributes(self) -> dict[str, Any]:
        """Public, non-tensor hyperparameter attributes of this object (e.g. 'w_dim'), as plain data."""
        return {k: _to_plain(v) for k, v in self.state.items()
                if not k.startswith("_") and k != "training" and not isinstance(v, Tensor)}

    def named_modules(self) -> Iterator[tuple[str, PersistentObject | TorchModuleRecord]]:
        """Yield ('', self) and every submodule record with its dotted path, like `nn.Module`."""
        yield from _walk_modules(self, "")


class TorchModuleRecord:
    """A plain (non-persistent) module inside an NVlabs network, e.g. EG3D's
    `torch.nn.Sequential` or `ImportanceRenderer`, kept as (class_name, state) without running
    any of its code. Instances are made only by the unpickler (NEWOBJ + BUILD)."""

    class_name: str = ""
    state: dict[str, Any]

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, dict):
            raise _ContentError(f"the module {self.class_name} carries a state of type "
                                f"{type(state).__name__} instead of a dict")
        self.state = _replace_easydicts(state)

    def tensors(self) -> dict[str, Tensor]:
        """Same as `PersistentObject.tensors`."""
        out: dict[str, Tensor] = {}
        _collect_tensors(getattr(self, "state", {}), "", out)
        return out

    def __repr__(self) -> str:
        return f"TorchModuleRecord({self.class_name})"


class _EasyDictStandIn(dict):
    """What `dnnlib.EasyDict` unpickles into; converted to a plain dict right after loading."""

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, dict):
            self.update(state)


def _module_state(sub: Any, path: str) -> dict[str, Any]:
    if isinstance(sub, (PersistentObject, TorchModuleRecord)):
        return getattr(sub, "state", {})
    if isinstance(sub, dict):
        return sub
    raise _ContentError(f"the submodule '{path}' is a {type(sub).__name__}, not a module state")


def _collect_tensors(state: Mapping[str, Any], prefix: str, out: dict[str, Tensor]) -> None:
    skip = state.get("_non_persistent_buffers_set") or ()
    entries = list((state.get("_parameters") or {}).items())
    entries += [(k, v) for k, v in (state.get("_buffers") or {}).items() if k not in skip]
    for name, value in entries:
        if value is None:
            continue
        if not isinstance(value, Tensor):
            raise _ContentError(f"'{prefix}{name}' is a {type(value).__name__}, not a tensor")
        out[prefix + name] = value.detach()
    for name, sub in (state.get("_modules") or {}).items():
        if sub is not None:
            _collect_tensors(_module_state(sub, prefix + name), f"{prefix}{name}.", out)


def _walk_modules(record: Any, path: str) -> Iterator[tuple[str, Any]]:
    yield path, record
    for name, sub in (_module_state(record, path).get("_modules") or {}).items():
        if isinstance(sub, (PersistentObject, TorchModuleRecord)):
            yield from _walk_modules(sub, f"{path}.{name}" if path else name)


# ---------------------------------------------------------------------------------------------
# Plain-data conversion


def _to_plain(x: Any) -> Any:
    """EasyDict/OrderedDict -> dict, numpy scalar -> Python number, ndarray -> list, recursively."""
    if isinstance(x, OmegaRecord):  # StyleNeRF's OmegaConf kwargs (shared/loaders/_omegaconf.py)
        return _to_plain(_omegaconf_to_plain(x))
    if isinstance(x, dict):
        return {k: _to_plain(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_to_plain(v) for v in x]
    if isinstance(x, tuple):
        return tuple(_to_plain(v) for v in x)
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    return x


def _replace_easydicts(x: Any) -> Any:
    """Turn EasyDict stand-ins into plain dicts, leaving every other container type as it is."""
    if isinstance(x, _EasyDictStandIn):
        return {k: _replace_easydicts(v) for k, v in x.items()}
    if isinstance(x, dict):  # dict and OrderedDict keep their type (module internals)
        for k, v in x.items():
            if isinstance(v, (dict, list, tuple)):
                x[k] = _replace_easydicts(v)
        return x
    if isinstance(x, list):
        return [_replace_easydicts(v) for v in x]
    if isinstance(x, tuple) and any(isinstance(v, (dict, list, tuple)) for v in x):
        return tuple(_replace_easydicts(v) for v in x)
    return x


# ---------------------------------------------------------------------------------------------
# Our stand-ins for the allowed globals


def _reconstruct_persistent_obj(meta: Any) -> PersistentObject:
    """Replacement for `torch_utils.persistence._reconstruct_persistent_obj`: records, never runs."""
    if not isinstance(meta, dict):
        raise _ContentError(f"a persistent object's metadata is a {type(meta).__name__}, not a dict")
    if meta.get("type") != "class":
        raise _ContentError(f"a persistent object has type {meta.get('type')!r} instead of 'class'")
    class_name, state, src = meta.get("class_name"), meta.get("state"), meta.get("module_src")
    if not isinstance(class_name, str) or not isinstance(state, dict):
        raise _ContentError("a persistent object lacks its class name or state")
    src_bytes = src.encode("utf-8", "surrogatepass") if isinstance(src, str) else b""
    state = _replace_easydicts(state)
    init_args = state.get("_init_args") or ()
    init_kwargs = state.get("_init_kwargs") or {}
    if not isinstance(init_args, (tuple, list)) or not isinstance(init_kwargs, dict):
        raise _ContentError(f"the constructor arguments of {class_name} are not a tuple and a dict")
    version = meta.get("version")
    return PersistentObject(
        class_name=class_name, version=version if isinstance(version, int) else None,
        init_args=tuple(_to_plain(a) for a in init_args), init_kwargs=_to_plain(init_kwargs),
        state=state, module_src_len=len(src) if isinstance(src, str) else 0,
        module_src_sha256=hashlib.sha256(src_bytes).hexdigest())


def _load_from_bytes(b: Any) -> Any:
    """Replacement for `torch.storage._load_from_bytes`, restricted to `weights_only=True`."""
    if not isinstance(b, (bytes, bytearray)):
        raise _ContentError("a tensor storage is not stored as bytes")
    try:
        storage = torch.load(io.BytesIO(bytes(b)), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if "Weights only load failed" in str(e):
            found = _WEIGHTS_ONLY_GLOBAL.search(str(e))
            raise _refuse(found.group(1) if found else "<unnamed global in a tensor storage>") from None
        raise _ContentError("a tensor storage inside it is damaged") from None
    except (RuntimeError, EOFError, ValueError, KeyError, struct.error):
        raise _ContentError("a tensor storage inside it is damaged") from None
    if not isinstance(storage, (torch.storage.TypedStorage, torch.UntypedStorage)):
        raise _ContentError(f"a tensor storage holds a {type(storage).__name__} instead")
    return storage


def _check_storage(storage: Any) -> None:
    if not isinstance(storage, (torch.storage.TypedStorage, torch.UntypedStorage)):
        raise _ContentError(f"a tensor is built on a {type(storage).__name__} instead of a storage")


def _metadata(metadata: Any) -> dict[str, bool] | None:
    return metadata if isinstance(metadata, dict) and metadata else None


def _rebuild_tensor_v2(storage: Any, storage_offset: int, size: tuple[int, ...],
                       stride: tuple[int, ...], requires_grad: bool, backward_hooks: Any,
                       metadata: Any = None) -> Tensor:
    """Like torch's, but gradients are off and pickled backward hooks are dropped."""
    _check_storage(storage)
    return torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride, False,
                                           OrderedDict(), _metadata(metadata))


def _rebuild_tensor_v3(storage: Any, storage_offset: int, size: tuple[int, ...],
                       stride: tuple[int, ...], requires_grad: bool, backward_hooks: Any,
                       dtype: Any, metadata: Any = None) -> Tensor:
    """Like torch's (used for uint16/32/64 tensors), without gradients or hooks."""
    if not isinstance(storage, torch.UntypedStorage) or not isinstance(dtype, torch.dtype):
        raise _ContentError("a tensor is built from something other than a storage and dtype")
    t = torch.empty((0,), dtype=dtype)
    t.set_(storage, storage_offset, size, stride)
    if _metadata(metadata):
        torch._utils.set_tensor_metadata(t, metadata)
    return t


def _rebuild_parameter(data: Any, requires_grad: bool, backward_hooks: Any) -> Tensor:
    """Parameters come back as plain tensors (no gradients, no hooks)."""
    if not isinstance(data, Tensor):
        raise _ContentError(f"a parameter wraps a {type(data).__name__} instead of a tensor")
    return data.detach()


def _rebuild_parameter_with_state(data: Any, requires_grad: bool, backward_hooks: Any,
                                  state: Any) -> Tensor:
    """As `_rebuild_parameter`; Python attributes pickled on the parameter are dropped."""
    return _rebuild_parameter(data, requires_grad, backward_hooks)


def _latin1_encode(text: Any, encoding: str = "latin1") -> bytes:
    """`_codecs.encode` as protocol-2 pickles use it for bytes; only the latin-1 codec."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise _ContentError("it encodes bytes with an unexpected codec")
    return text.encode("latin-1")


def _fixed_globals() -> dict[tuple[str, str], Any]:
    table: dict[tuple[str, str], Any] = {
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
        ("torch._utils", "_rebuild_tensor_v3"): _rebuild_tensor_v3,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
        ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter_with_state,
        ("torch.storage", "_load_from_bytes"): _load_from_bytes,
        ("torch_utils.persistence", "_reconstruct_persistent_obj"): _reconstruct_persistent_obj,
        ("dnnlib", "EasyDict"): _EasyDictStandIn,
        ("dnnlib.util", "EasyDict"): _EasyDictStandIn,
        ("collections", "OrderedDict"): OrderedDict,
        ("builtins", "set"): set, ("builtins", "frozenset"): frozenset,
        ("__builtin__", "set"): set, ("__builtin__", "frozenset"): frozenset,
        ("_codecs", "encode"): _latin1_encode,
        ("torch", "Size"): torch.Size,
        ("numpy", "dtype"): np.dtype,
        ("numpy", "ndarray"): np.ndarray,
    }
    for core in ("numpy.core", "numpy._core"):  # numpy 1.x and 2.x spellings, same functions
        table[(f"{core}.multiarray", "scalar")] = _np_multiarray.scalar
        table[(f"{core}.multiarray", "_reconstruct")] = _np_multiarray._reconstruct
        table[(f"{core}.numeric", "_frombuffer")] = _np_numeric._frombuffer
    return table


_FIXED_GLOBALS = _fixed_globals()


def _torch_attribute(name: str) -> Any:
    """`torch.float32`-style dtypes and `torch.FloatStorage`-style storage classes, or None."""
    value = getattr(torch, name, None) if name.isidentifier() else None
    if isinstance(value, torch.dtype):
        return value
    storage_types = (torch.storage.TypedStorage, torch.UntypedStorage)
    if name.endswith("Storage") and isinstance(value, type) and issubclass(value, storage_types):
        return value
    return None


def _is_torch_module_class(module: str, name: str) -> bool:
    if not module.startswith("torch.nn.modules.") or not name.isidentifier():
        return False
    value = getattr(sys.modules.get(module), name, None)  # never imports anything new
    return isinstance(value, type) and issubclass(value, torch.nn.Module)


class NVlabsUnpickler(pickle.Unpickler):
    """`pickle.Unpickler` that resolves only data-rebuilding globals (see module docstring).

    Any other global raises `UnsafePickleError` naming `module.name` before it is touched.
    Persistent ids (`PERSID`) are refused as well.
    """

    def __init__(self, file: BinaryIO) -> None:
        super().__init__(file)
        self._module_records: dict[str, type[TorchModuleRecord]] = {}

    def find_class(self, module: str, name: str) -> Any:
        qualname = f"{module}.{name}"
        if (module, name) in _FIXED_GLOBALS:
            return _FIXED_GLOBALS[(module, name)]
        if (module, name) in OMEGACONF_GLOBALS:  # inert records of StyleNeRF's OmegaConf kwargs
            return OMEGACONF_GLOBALS[(module, name)]
        if module == "torch" and (value := _torch_attribute(name)) is not None:
            return value
        if qualname in _INERT_NVLABS_MODULES or _is_torch_module_class(module, name):
            return self._record_class(qualname)
        raise _refuse(qualname)

    def persistent_load(self, pid: Any) -> Any:
        raise _ContentError("it uses pickle persistent ids, which NVlabs pickles never do")

    def _record_class(self, qualname: str) -> type[TorchModuleRecord]:
        if qualname not in self._module_records:
            short = qualname.rsplit(".", 1)[-1]
            self._module_records[qualname] = type(short, (TorchModuleRecord,), {"class_name": qualname})
        return self._module_records[qualname]


# ---------------------------------------------------------------------------------------------
# Entry point


def _label(file: str | os.PathLike[str] | BinaryIO) -> str:
    if isinstance(file, (str, os.PathLike)):
        return f"'{Path(file).name}'"
    name = getattr(file, "name", None)
    return f"'{Path(name).name}'" if isinstance(name, str) and name else "The file"


def _check_head(head: bytes, label: str) -> None:
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not head:
        raise CheckpointError(f"{label} is empty (most likely an interrupted download); download it again.")
    if text[:1] == b"<":
        raise CheckpointError(f"{label} is an HTML page, not a network pickle; download the file "
                              "itself (on the Hub, the 'resolve' link rather than the 'blob' page).")
    if text.startswith(b"version https://git-lfs"):
        raise CheckpointError(f"{label} is a Git LFS pointer, not the network pickle it points to; "
                              "download the file through the Hub instead of cloning without LFS.")
    if head.startswith(b"PK\x03\x04"):
        raise CheckpointError(f"{label} is a zip archive (such as a torch.save checkpoint), not an "
                              "NVlabs network pickle.")


def _unpickle(f: BinaryIO, label: str) -> Any:
    damaged = f"{label} is not a valid NVlabs network pickle"
    try:
        return _replace_easydicts(NVlabsUnpickler(f).load())
    except UnsafePickleError as e:
        name = getattr(e, "global_name", "an unknown global")
        err = UnsafePickleError(f"{label} was refused: it refers to the Python global '{name}', "
                                "which an NVlabs network pickle never needs, and nothing in it was run.")
        err.global_name = name  # type: ignore[attr-defined]
        raise err from None
    except _ContentError as e:
        raise CheckpointError(f"{damaged}: {e}.") from None
    except EOFError:
        raise CheckpointError(f"{label} ends too early (it is truncated, most likely by an "
                              "interrupted download); download it again.") from None
    except pickle.UnpicklingError as e:
        if "truncated" in str(e):
            raise CheckpointError(f"{label} ends too early (it is truncated, most likely by an "
                                  "interrupted download); download it again.") from None
        raise CheckpointError(f"{label} is not a pickle file (or is badly damaged), so it cannot "
                              "be an NVlabs network snapshot.") from None
    except (ValueError, TypeError, AttributeError, KeyError, IndexError, RuntimeError,
            OverflowError, struct.error, RecursionError) as e:
        raise CheckpointError(f"{damaged}: it is damaged or was not written by NVlabs' training "
                              f"code ({type(e).__name__}).") from None


def read_nvlabs_pickle(file: str | os.PathLike[str] | BinaryIO) -> dict[str, Any]:
    """Read an NVlabs network snapshot without executing anything stored in it.

    Args:
        file: path of a `.pkl`, or a binary file object (read from its current start).
    Returns:
        The pickled top-level dict, typically {'G', 'D', 'G_ema', 'augment_pipe',
        'training_set_kwargs'}: networks are `PersistentObject`s (tensors on the CPU in their
        stored dtype), EasyDicts are plain dicts, other values as pickled.
    Raises:
        UnsafePickleError: the pickle refers to a global outside the allow-list (named in the
            message); nothing was executed.
        CheckpointError: empty, truncated, HTML page, not a pickle, damaged, or not a dict.
    """
    label = _label(file)
    if isinstance(file, (str, os.PathLike)):
        with open(file, "rb") as f:
            return _read_stream(f, label)
    if not getattr(file, "seekable", lambda: False)():
        return _read_stream(io.BytesIO(file.read()), label)
    return _read_stream(file, label)


def _read_stream(f: BinaryIO, label: str) -> dict[str, Any]:
    start = f.tell()
    _check_head(f.read(64), label)
    f.seek(start)
    obj = _unpickle(f, label)
    if not isinstance(obj, dict):
        raise CheckpointError(f"{label} is a pickle of a {type(obj).__name__}, not an NVlabs network "
                              "snapshot (a dict with 'G_ema').")
    return obj
