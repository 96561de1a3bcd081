"""The commands that look and submit nothing: ``validate``, ``models``, ``ledger``, ``cache``, ``doctor``."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ..model.spec import get_model, models
from ..model.validation import validate_payload
from .arguments import CommandError, existing_ledger

__all__ = ["BLANK", "cmd_cache", "cmd_doctor", "cmd_ledger", "cmd_models", "cmd_validate", "runs_table", "table_text"]

BLANK = "–"
"""What a table shows for a value that is not known (a run's time before it ran, a run outside any sweep)."""


def _read_json(text: str) -> object:
    if text == "-":
        text = sys.stdin.read()
    elif text.startswith("@"):
        with open(text[1:], encoding="utf-8") as fh:
            text = fh.read()
    return json.loads(text)


def cmd_validate(args: argparse.Namespace) -> int:
    """Validate a raw wire payload; exit 0 when valid, 2 with one line per problem otherwise."""
    spec = get_model(args.model)
    try:
        payload = _read_json(args.json)
    except (OSError, json.JSONDecodeError) as exc:
        raise CommandError(f"--json: not readable JSON ({exc})") from None
    if not isinstance(payload, dict):
        raise CommandError('--json: must be a JSON object like \'{"text": "..."}\'')
    report = validate_payload(spec, payload)
    for problem in report.problems:
        print(problem, file=sys.stdout if problem.severity == "error" else sys.stderr)
    if report.ok:
        print(
            f"ok: valid for {spec.short_name} ({spec.id})"
            + (f", {len(report.warnings)} warning(s)" if report.warnings else "")
        )
        return 0
    return 2


def cmd_models(args: argparse.Namespace) -> int:
    """List the known models with their fields and prices."""
    for spec in models():
        print(f"{spec.id}  ({', '.join(spec.aliases)})  {spec.currency} {spec.price_per_image}/image")
        for f in spec:
            req = " required" if f.required else ""
            default = f" default {f.default}" if f.default is not None and not f.required else ""
            print(f"    {f.wire:<38} {f.kind}{req}{default}  [{f.name}]")
            if f.enum:
                print(f"        one of: {_values(f.enum)}")
    return 0


def _values(enum: tuple[Any, ...]) -> str:
    """An enum's values, a run of consecutive whole numbers as ``1-15``."""
    if len(enum) > 2 and all(type(v) is int for v in enum) and list(enum) == list(range(enum[0], enum[0] + len(enum))):
        return f"{enum[0]}-{enum[-1]}"
    return ", ".join(str(v) for v in enum)


def runs_table(frame: Any) -> Any:
    """The ledger's runs, compact enough for a terminal."""
    import pandas as pd

    def cut(text: Any, n: int) -> str:
        shown = "" if pd.isna(text) else str(text)
        return shown if len(shown) <= n else shown[: n - 1] + "…"

    return pd.DataFrame(
        {
            "run": frame["id"],
            "model": frame["model"],
            "prompt": [cut(p, 34) for p in frame["prompt"]],
            "seed": frame["seed"],
            "size": frame["size"],
            "images": [
                f"{r if pd.notna(r) else BLANK}/{q}" for r, q in zip(frame["returned"], frame["requested"], strict=True)
            ],
            "status": frame["status"],
            "queue_s": frame["queue_s"].round(1),
            "run_s": frame["run_s"].round(1),
            "est_cost": [
                f"{c} {a:.2f}" if pd.notna(a) else BLANK
                for c, a in zip(frame["currency"], frame["est_cost"], strict=True)
            ],
        }
    )


def table_text(frame: Any) -> str:
    """A frame as terminal text: no index, and no ``NaN`` or ``<NA>`` where a value is not known."""
    import pandas as pd

    text_columns = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
    shown = frame.astype({c: object for c in text_columns}).fillna({c: BLANK for c in text_columns})
    return str(shown.to_string(index=False, na_rep=BLANK))  # na_rep: the numeric columns


def cmd_ledger(args: argparse.Namespace) -> int:
    """Print the recent runs and the spend, or export the ledger."""
    ledger = existing_ledger(args.ledger, "--ledger")
    filters = {k: v for k, v in {"sweep": args.sweep, "status": args.status, "model": args.model}.items() if v}
    if args.sweep and args.sweep not in (known := ledger.sweeps()):
        recent = ", ".join(known[:5]) or "none yet"
        raise CommandError(f"--sweep: no sweep {args.sweep!r} in {ledger.location}; the most recent: {recent}")
    if args.export:
        target = ledger.export(args.export, **filters)
        print(f"wrote {ledger.count(**filters)} runs to {target}")
        return 0
    frame = ledger.runs(limit=args.limit, **filters)
    print(
        f"{ledger.location}: {ledger.count(**filters)} runs"
        + (f" ({args.limit} most recent shown)" if len(frame) == args.limit else "")
    )
    if not frame.empty:
        print(table_text(runs_table(frame)))
        print()
        print(table_text(ledger.spend(args.by, **filters)))
    return 0


def cmd_cache(args: argparse.Namespace) -> int:
    """Show the image cache (files, size, limit, recency), or prune it to a size."""
    from ..images.cache import ImageCache
    from ..images.limit import parse_size

    try:
        cache = ImageCache(args.dir)
        limit = parse_size(args.max_bytes, "--max-bytes") if args.action == "prune" and args.max_bytes else None
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    lines = cache.prune(limit).lines() if args.action == "prune" else cache.usage().lines()
    print("\n".join(lines))
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    """Report what seqnb would use and whether it works; exit 1 when a check fails."""
    from ..doctor import diagnose

    report = diagnose(
        args.base_url, account_base_url=args.account_base_url, ledger=args.ledger, cache_dir=args.cache_dir
    )
    print(json.dumps(report.to_json(), indent=2) if args.json else report.text())
    return 0 if report.ok else 1
