"""The reposing tab (`build_tab` in `tab.py`)."""
from spaces.reposing.tab import build_tab

__all__ = ["build_tab"]
