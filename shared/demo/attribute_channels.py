"""The demo generator's StyleSpace attribute channels (Wu et al., "StyleSpace Analysis", CVPR 2021,
Sec. 5): reading the shipped table `shared/demo/stylespace_channels.json`, which the Local editing
tab shows as named sliders (found with the demo predictor by `training.demo.attribute_channels`).
"""
from __future__ import annotations

import json
from pathlib import Path

__all__ = ["DEFAULT_PATH", "load_attribute_channels"]

DEFAULT_PATH = Path(__file__).resolve().parent / "stylespace_channels.json"


def load_attribute_channels(path: Path | str = DEFAULT_PATH) -> dict | None:
    """The shipped table, or None when it is missing."""
    p = Path(path)
    return json.loads(p.read_text()) if p.is_file() else None
