"""The rendering 3d tab (`build_tab` in `tab.py`)."""
from spaces.rendering_3d.tab import build_tab

__all__ = ["build_tab"]
