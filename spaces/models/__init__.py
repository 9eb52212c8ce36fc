"""The models tab (`build_tab` in `tab.py`)."""
from spaces.models.tab import build_tab

__all__ = ["build_tab"]
