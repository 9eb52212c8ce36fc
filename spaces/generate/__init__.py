"""The generate tab (`build_tab` in `tab.py`)."""
from spaces.generate.tab import build_tab

__all__ = ["build_tab"]
