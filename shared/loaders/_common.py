"""What the checkpoint loaders share: telling a file's format from its first bytes, reading
`torch.save` files without running code, and giving a module a checkpoint's weights strictly
(same keys, same shapes, or one sentence saying what differs).

`torch.load(..., weights_only=True)` is PyTorch's restricted unpickler (pytorch/pytorch,
`torch/_weights_only_unpickler.py`): plain containers, numbers, strings and tensors only. Every
failure becomes one `CheckpointError` sentence saying what to do.
"""
from __future__ import annotations

import io
import json
import os
import pickle
import struct
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import BinaryIO

import torch

from shared.errors import CheckpointError

__all__ = ["assign_strict", "check_state_dict", "file_format", "load_strict", "read_head", "read_headed_safetensors",
           "sniff_format", "torch_load_weights"]


def read_head(src: str | os.PathLike | BinaryIO) -> tuple[bytes, int]:
    """(first 64 bytes, size in bytes) of a path or a seekable binary file (its position is kept)."""
    if isinstance(src, (str, os.PathLike)):
        p = Path(src)
        if not p.exists():
            raise CheckpointError(f"No file at {p}; check the path.")
        if p.is_dir():
            raise CheckpointError(f"{p} is a folder; point to the checkpoint file inside it.")
        with open(p, "rb") as f:
            return f.read(64), p.stat().st_size
    pos = src.tell()
    head = src.read(64)
    src.seek(0, io.SEEK_END)
    size = src.tell() - pos
    src.seek(pos)
    return head, size


def sniff_format(head: bytes, size: int) -> str:
    """'zip' (torch.save), 'legacy-torch', 'pickle', 'safetensors', 'html', 'empty' or 'unknown'."""
    if size == 0:
        return "empty"
    stripped = head.lstrip()
    if stripped[:1] == b"<" or stripped[:9].lower() == b"<!doctype":
        return "html"
    if head[:4] == b"PK\x03\x04":
        return "zip"
    if len(head) >= 9 and head[8:9] == b"{":
        return "safetensors"
    if head[:1] == b"\x80" and len(head) > 1 and 2 <= head[1] <= 5:
        # torch.save's legacy format pickles a magic number (LONG1, 10 bytes) first.
        return "legacy-torch" if head[2:4] == b"\x8a\x0a" else "pickle"
    return "unknown"


def file_format(src: str | os.PathLike | BinaryIO) -> str:
    """`sniff_format` of a path or seekable binary file."""
    return sniff_format(*read_head(src))


def torch_load_weights(src: str | os.PathLike | BinaryIO, kind: str) -> object:
    """`torch.load(src, map_location='cpu', weights_only=True)` of a 'zip' or 'legacy-torch' file.

    Raises:
        CheckpointError: the file is truncated or corrupted, or holds Python objects beyond plain
            weights (the `pickle.UnpicklingError` is kept as the cause).
    """
    try:
        if kind == "zip" and isinstance(src, (str, os.PathLike)) and not zipfile.is_zipfile(src):
            raise CheckpointError(f"{Path(src).name} is truncated or corrupted (an incomplete download?); "
                                  "download it again.")
        return torch.load(src, map_location="cpu", weights_only=True)
    except CheckpointError:
        raise
    except pickle.UnpicklingError as e:
        raise CheckpointError(f"The checkpoint holds Python objects outside plain weights, which we refuse to "
                              f"unpickle for safety ({_first_line(e)[:160]}).") from e
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError,
            KeyError, IndexError, struct.error, ValueError, AssertionError) as e:  # damaged streams (fuzzed)
        raise CheckpointError(f"The checkpoint is truncated or corrupted ({_first_line(e)[:120]}); "
                              "download it again.") from e


def read_headed_safetensors(path: Path, key: str, *, what: str, make: str,
                            format_version: int) -> tuple[dict[str, torch.Tensor], dict]:
    """The tensors and the JSON header (metadata `key`) of a safetensors file this hub wrote.

    `what` names the model in errors ("rig", "mapper"), `make` is the command that writes such a
    file; a header newer than `format_version` is refused.

    Raises:
        CheckpointError: unreadable file, no header, malformed or newer header (one sentence)."""
    from safetensors import SafetensorError, safe_open
    try:
        with safe_open(str(path), "pt") as fh:
            raw = (fh.metadata() or {}).get(key)
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    except (SafetensorError, OSError) as e:
        raise CheckpointError(f"{path.name} is not a readable safetensors file ({e}).") from e
    if raw is None:
        raise CheckpointError(f"{path.name} is a safetensors file without a {what} header ({key}); it is not a "
                              f"{what} written by this hub (`{make}`).")
    try:
        header = json.loads(raw)
        version = int(header.get("format_version", 0))
    except (json.JSONDecodeError, AttributeError, TypeError, ValueError) as e:
        raise CheckpointError(f"{path.name}: the {what} header is malformed ({e}).") from e
    if version > format_version:
        raise CheckpointError(f"{path.name} was written by a newer version ({what} format {version}).")
    return tensors, header


def _first_line(e: BaseException) -> str:
    return (str(e).splitlines() or [type(e).__name__])[0]


def check_state_dict(own: Mapping[str, torch.Tensor], sd: Mapping[str, torch.Tensor], arch: str) -> None:
    """Check that `sd` holds exactly the keys of `own` (a module's state dict) with the same shapes.

    Raises:
        CheckpointError: naming up to three missing / unexpected keys, or the first mis-shaped tensor.
    """
    missing = sorted(set(own) - set(sd))
    extra = sorted(set(sd) - set(own))
    if missing or extra:
        raise CheckpointError(f"Checkpoint keys do not match the {arch} architecture "
                              f"(missing {missing[:3]}{'...' if len(missing) > 3 else ''}, "
                              f"unexpected {extra[:3]}{'...' if len(extra) > 3 else ''}).")
    bad = [k for k in own if tuple(own[k].shape) != tuple(sd[k].shape)]
    if bad:
        k = bad[0]
        raise CheckpointError(f"Tensor {k!r} has shape {list(sd[k].shape)} in the checkpoint but "
                              f"{list(own[k].shape)} in the {arch} architecture.")


def load_strict(module: torch.nn.Module, sd: Mapping[str, torch.Tensor]) -> None:
    """Copy tensors into `module`, failing with one sentence on missing, extra or mis-shaped keys."""
    own = module.state_dict()
    check_state_dict(own, sd, type(module).__name__)
    with torch.no_grad():
        for k, v in own.items():
            v.copy_(sd[k].to(v.dtype))


def assign_strict(module: torch.nn.Module, sd: Mapping[str, torch.Tensor], arch: str) -> torch.nn.Module:
    """Give `module` (typically built on the meta device) the checkpoint's tensors themselves,
    floats as float32, after `check_state_dict`; returns it in eval mode without gradients."""
    check_state_dict(module.state_dict(), sd, arch)
    tensors = {k: (v.detach().to(torch.float32) if v.is_floating_point() else v.detach()).contiguous()
               for k, v in sd.items()}
    module.load_state_dict(tensors, strict=True, assign=True)
    return module.eval().requires_grad_(False)
