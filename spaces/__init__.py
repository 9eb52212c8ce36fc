"""The hub's Gradio tabs: one package per application family (layout and event wiring only).

This package shares its import name with Hugging Face's `spaces` package (ZeroGPU), which
Gradio itself imports as `spaces` and, on a Space, calls (`spaces.gradio_auto_wrap`). Because
the repository root comes first on `sys.path`, `import spaces` finds this package. So that
both keep working, the Hugging Face package is loaded under the private name `_hf_spaces` and
its public API is re-exported here; where it is not installed, `GPU` and
`gradio_auto_wrap` are no-ops (as they are outside ZeroGPU anyway).
"""
from __future__ import annotations

import importlib.util
import logging
import os
import sys
from pathlib import Path

log = logging.getLogger(__name__)
_HERE = Path(__file__).resolve().parent


def _load_hf_spaces():
    for entry in sys.path:
        pkg = Path(entry or ".").resolve() / "spaces"
        init = pkg / "__init__.py"
        if pkg == _HERE or not init.is_file():
            continue
        spec = importlib.util.spec_from_file_location("_hf_spaces", init, submodule_search_locations=[str(pkg)])
        module = importlib.util.module_from_spec(spec)
        sys.modules["_hf_spaces"] = module
        try:
            spec.loader.exec_module(module)
        except (ImportError, OSError, RuntimeError, AttributeError) as e:
            sys.modules.pop("_hf_spaces", None)
            _log_not_loaded(_failure_reason(e))
            return None
        return module
    return None


def _gradio_half_imported() -> bool:
    gr = sys.modules.get("gradio")
    return gr is not None and not hasattr(gr, "Blocks")


def _failure_reason(error: BaseException) -> str:
    """Why Hugging Face's package did not load, as a clause (its own ImportError carries no text)."""
    if _gradio_half_imported():
        # The package refuses to load while gradio is importing (gradio imports `spaces` itself).
        return "gradio was imported before `spaces`, and the package refuses to load inside gradio's own import; " \
               "import `spaces` first, as app.py does"
    return str(error) or f"{type(error).__name__} without a message"


def _log_not_loaded(reason: str) -> None:
    # On ZeroGPU this matters (GPU work would run without a GPU); elsewhere the decorators are no-ops anyway.
    level = logging.WARNING if os.environ.get("SPACES_ZERO_GPU") else logging.INFO
    log.log(level, "Hugging Face's `spaces` package was not loaded (%s); ZeroGPU decorators are no-ops", reason)


_hf = sys.modules.get("_hf_spaces") or _load_hf_spaces()

if _hf is not None:
    GPU = _hf.GPU
    gradio_auto_wrap = _hf.gradio_auto_wrap
    disable_gradio_auto_wrap = _hf.disable_gradio_auto_wrap
    enable_gradio_auto_wrap = _hf.enable_gradio_auto_wrap
else:
    def GPU(fn=None, **_kwargs):  # noqa: N802 - the public name of Hugging Face's decorator
        """No-op stand-in for `spaces.GPU` / `spaces.GPU(duration=...)`."""
        return fn if callable(fn) else (lambda f: f)

    def gradio_auto_wrap(fn):
        return fn

    def disable_gradio_auto_wrap():
        return None

    def enable_gradio_auto_wrap():
        return None

__all__ = ["GPU", "disable_gradio_auto_wrap", "enable_gradio_auto_wrap", "gradio_auto_wrap"]
