"""Test-wide settings: no network, no analytics, deterministic thread count."""
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

ROOT = Path(__file__).resolve().parents[1]

PARITY_DIR = Path(os.environ.get("HUB_PARITY_DIR", ROOT.parent / "shared" / "parity"))
