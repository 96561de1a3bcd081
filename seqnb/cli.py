"""The ``seqnb`` command line: validate, and (in later layers) emulator, run, demo, ledger."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence

from .errors import SeqnbError
from .spec import get_model, models
from .validation import validate_payload

__all__ = ["main"]

Command = Callable[[argparse.Namespace], int]


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
        print(f"error: --json: not readable JSON ({exc})", file=sys.stderr)
        return 2
    if not isinstance(payload, dict):
        print('error: --json: must be a JSON object like \'{"text": "..."}\'', file=sys.stderr)
        return 2
    report = validate_payload(spec, payload)
    for problem in report.problems:
        print(problem, file=sys.stdout if problem.severity == "error" else sys.stderr)
    if report.ok:
        print(f"ok: valid for {spec.id}" + (f" ({len(report.warnings)} warning(s))" if report.warnings else ""))
        return 0
    return 2


def cmd_models(args: argparse.Namespace) -> int:
    """List the known models with their fields and prices."""
    for spec in models():
        print(f"{spec.id}  ({', '.join(spec.aliases)})  {spec.currency} {spec.price_per_image}/image")
        for f in spec:
            req = " required" if f.required else ""
            enum = f" one of {len(f.enum)}" if f.enum else ""
            print(f"    {f.wire:<38} {f.kind}{req}{enum}  [{f.name}]")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="seqnb", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("validate", help="check a wire payload against a model's rules")
    p.add_argument("--model", "-m", required=True, help="model id or alias, e.g. seedream-4.5")
    p.add_argument("--json", "-j", required=True, help="payload JSON, @file.json, or - for stdin")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("models", help="list the models, their fields and prices")
    p.set_defaults(func=cmd_models)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Command = args.func
    try:
        return func(args)
    except SeqnbError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
