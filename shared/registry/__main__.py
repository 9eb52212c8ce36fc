"""Command line for the model registry.

    python -m shared.registry list [--task T] [--family F]
    python -m shared.registry download ID
    python -m shared.registry verify ID [--accept]
    python -m shared.registry path ID

Common options: --cache-dir DIR (default HUB_CACHE_DIR / huggingface_hub's cache), --endpoint URL
(default HF_ENDPOINT), --offline. Exit status 0 on success, 1 with one sentence on stderr otherwise.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from shared import hub, registry
from shared.registry import ModelCard


def _state(card: ModelCard, cache: Path | None) -> str:
    if card.builtin is not None:
        return "built-in"
    try:
        path = hub.cached_path(card, cache_dir=cache)
    except hub.LocalFileMissing:
        return "override missing"
    if path is not None:
        return "cached"
    return "not cached" if card.hub_sources else "local file needed"


def _list(args: argparse.Namespace) -> int:
    rows = [("ID", "FAMILY", "RES", "STATE", "SOURCE", "LICENCE")]
    for card in registry.cards():
        if (args.task and args.task not in card.tasks) or (args.family and card.family != args.family):
            continue
        rows.append((card.id, card.family, str(card.resolution or "-"), _state(card, args.cache_dir),
                     str(card.sources[0]), card.license + (" [UNTRAINED]" if card.untrained else "")))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row[:5], widths)) + "  " + row[5])
    return 0


def _print_progress(fraction: float, desc: str) -> None:
    print(f"\r[{fraction * 100:5.1f}%] {desc[:90]:<90}", end="", file=sys.stderr, flush=True)


def _download(args: argparse.Namespace) -> int:
    card = registry.get(args.id)
    if card.builtin is not None:
        print(f"{card.id} is built in code; nothing to download.")
        return 0
    path = hub.fetch(card, progress=_print_progress, cache_dir=args.cache_dir, endpoint=args.endpoint,
                     offline=True if args.offline else None)
    print(file=sys.stderr)
    print(path)
    print(f"{card.id}: {hub.verification(card, cache_dir=args.cache_dir)}; licence: {card.license}")
    return 0


def _verify(args: argparse.Namespace) -> int:
    card = registry.get(args.id)
    if args.accept:
        digest = hub.accept_current_hash(card, cache_dir=args.cache_dir)
        print(f"{card.id}: recorded sha256 {digest} as trusted")
        return 0
    status = hub.verification(card, cache_dir=args.cache_dir)
    print(f"{card.id}: {status}")
    path = hub.cached_path(card, cache_dir=args.cache_dir)
    if path is not None:
        commit = path.parent.name if "snapshots" in path.parts else None
        print(f"  file:   {path}\n  size:   {path.stat().st_size}\n  sha256: {hub.file_sha256(path)}")
        if commit:
            print(f"  commit: {commit}  (pin with revision=\"{commit}\")")
    return 0 if status in ("verified", "built-in") or status.startswith("unverified") else 1


def _path(args: argparse.Namespace) -> int:
    card = registry.get(args.id)
    path = hub.cached_path(card, cache_dir=args.cache_dir)
    if path is None:
        what = "is built in code and has no file" if card.builtin else "is not cached"
        print(f"{card.id} {what}.", file=sys.stderr)
        return 1
    print(path)
    return 0


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--cache-dir", type=Path, default=None, help="Hub cache (default: HUB_CACHE_DIR)")
    common.add_argument("--endpoint", default=None, help="Hub endpoint (default: HF_ENDPOINT)")
    common.add_argument("--offline", action="store_true", help="never touch the network")
    parser = argparse.ArgumentParser(prog="python -m shared.registry", description="StyleGAN Hub model registry.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("list", parents=[common], help="every record with its licence, source and cached state")
    p.add_argument("--task", default=None)
    p.add_argument("--family", default=None)
    p.set_defaults(run=_list)
    p = sub.add_parser("download", parents=[common], help="fetch and verify a model's weights")
    p.add_argument("id")
    p.set_defaults(run=_download)
    p = sub.add_parser("verify", parents=[common], help="hash the cached file and compare with the record")
    p.add_argument("id")
    p.add_argument("--accept", action="store_true", help="trust the cached file's current hash")
    p.set_defaults(run=_verify)
    p = sub.add_parser("path", parents=[common], help="print the cached file's path")
    p.add_argument("id")
    p.set_defaults(run=_path)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return args.run(args)
    except KeyError as e:
        print(e.args[0], file=sys.stderr)
        return 1
    except hub.HubError as e:
        print(file=sys.stderr)
        print(str(e), file=sys.stderr)
        return 1
    except BrokenPipeError:  # `... list | head`
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
