"""The exceptions a user can cause, in one place; each carries one sentence for the UI.

The tabs turn these into `gr.Error` with the same text (`spaces/handlers.py`), which
`gradio_client` raises as `AppError`: the message says what is wrong and what to do instead.
Download failures have their own family next to the code that raises them (`shared.hub.HubError`).
"""
from __future__ import annotations

__all__ = ["AlignmentError", "CheckpointError", "InputError", "LandmarkModelMissing", "UnsafePickleError"]


class InputError(ValueError):
    """A value the user typed or chose cannot be used; the message says what to do instead."""


class CheckpointError(ValueError):
    """A checkpoint file could not be read as a supported model (message is user-facing)."""


class UnsafePickleError(CheckpointError):
    """A pickle referenced a global outside the allow-list; nothing was executed."""


class AlignmentError(ValueError):
    """A photo cannot be aligned or read; the message is one sentence for the user."""


class LandmarkModelMissing(AlignmentError):
    """dlib or the 68-point landmark model is not installed on this machine."""
