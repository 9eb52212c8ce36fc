"""Errors a user can cause by handing the hub a checkpoint it cannot read.

Each carries one sentence that says what is wrong and what to do, shown as-is in the UI.
"""
from __future__ import annotations


class CheckpointError(ValueError):
    """A checkpoint file could not be read as a supported model (message is user-facing)."""


class UnsafePickleError(CheckpointError):
    """A pickle referenced a global outside the allow-list; nothing was executed."""
