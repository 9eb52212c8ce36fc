"""Build time: training, evaluation and bundle building (NVlabs keep theirs in `training/` too).

Imports `shared`; nothing in `shared`, `spaces` or `app` imports it (`.importlinter` enforces it).
"""
