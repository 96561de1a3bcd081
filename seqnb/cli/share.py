"""``seqnb report`` and ``seqnb export``: a sweep, a selection or a filter of the ledger as one HTML file, or as files."""

from __future__ import annotations

import argparse
import os
from typing import Any

from .arguments import add_run_filters, count, existing_ledger

__all__ = ["add_share_commands", "cmd_export", "cmd_report"]


def _filters(p: argparse.ArgumentParser) -> None:
    g = add_run_filters(p)
    g.add_argument("--since", help="runs created since, e.g. 2026-12-01 or '2026-12-01 14:00'")
    g.add_argument("--until", help="runs created before, e.g. 2026-12-02")
    g.add_argument("--text", help="runs whose prompt contains this")
    g.add_argument("--ids", help="comma-separated run ids")
    g.add_argument("--picked", action="store_true", help="only the runs you picked (run.pick(), or the Studio)")
    g.add_argument("--marks-by", help="whose marks count: a user name, or '*' for everyone's latest")


def add_share_commands(sub: Any) -> None:
    """Add ``report`` and ``export`` to the ``seqnb`` command's subparsers."""
    p = sub.add_parser("report", help="write one self-contained HTML file of runs: matrix, table, series, spend")
    p.add_argument("path", help="the HTML file to write, e.g. sweep-report.html")
    _filters(p)
    p.add_argument(
        "--full", nargs="?", const="beside", choices=["embed", "beside"], default="none",
        help="full-size images too: beside (default with --full; a folder next to the file) or embed (inside it)",
    )  # fmt: skip
    p.add_argument("--thumb", type=count, default=256, help="thumbnail size in pixels (default 256)")
    p.add_argument("--title", help="the page's title")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("export", help="write the runs' full-size PNGs (with their provenance) and a CSV of their rows")
    p.add_argument("directory", help="folder to write into (made if missing)")
    _filters(p)
    p.set_defaults(func=cmd_export)


def _chosen(args: argparse.Namespace) -> dict[str, Any]:
    filters = {k: getattr(args, k) for k in ("sweep", "since", "until", "status", "model", "text") if getattr(args, k)}
    if args.ids:
        filters["ids"] = [i.strip() for i in args.ids.split(",") if i.strip()]
    return {**filters, "picked": args.picked, "marks_by": args.marks_by}


def cmd_report(args: argparse.Namespace) -> int:
    """Write the report and say where it is and how big."""
    from ..images.limit import human_size
    from ..images.share import report_ledger

    ledger = existing_ledger(args.ledger, "--ledger")
    try:
        target = report_ledger(ledger, args.path, title=args.title, thumb=args.thumb, full=args.full, **_chosen(args))
    finally:
        ledger.close()
    said = f"wrote {target} ({human_size(target.stat().st_size)})"
    if args.full == "beside":
        # write_report's folder: the name a browser's "save page" uses
        folder = target.with_name(f"{target.stem}_files")
        pngs = [p for p in folder.glob("*.png") if p.is_file()]
        size = human_size(sum(p.stat().st_size for p in pngs))
        said += (
            f" and its full-size images in {folder}{os.sep} ({len(pngs)} PNGs, {size}): the page shows them from "
            "that folder, so keep it beside the page when you move or send it"
        )
    print(f"{said}; open it in any browser, no network needed")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """Write the PNGs and the CSV, and say how many."""
    from ..images.share import export_ledger

    ledger = existing_ledger(args.ledger, "--ledger")
    try:
        done = export_ledger(ledger, args.directory, **_chosen(args))
    finally:
        ledger.close()
    gone = f"; {done.missing} frame(s) had no image to write" if done.missing else ""
    print(f"wrote {len(done.images)} image(s) and {done.table.name} into {done.table.parent}{gone}")
    return 0
