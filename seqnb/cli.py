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


def cmd_emulator(args: argparse.Namespace) -> int:
    """Serve the emulator in the foreground until Ctrl-C."""
    from decimal import Decimal

    import uvicorn

    from .emulator import EmulatorConfig, Faults, QueueConfig, create_app, is_loopback

    if not is_loopback(args.host):
        print(
            f"warning: listening on {args.host}, beyond loopback: other machines can reach this emulator",
            file=sys.stderr,
        )
    faults = Faults(
        rate_limit=args.rate_limit,
        server_error=args.server_error,
        drop=args.drop,
        drop_after=args.drop_after,
        slow=args.slow,
        slow_seconds=args.slow_seconds,
        error_200=args.error_200,
        fail=args.fail,
        short=args.short,
        expire=args.expire,
        retry_after=args.retry_after,
        seed=args.fault_seed,
        routes=tuple(args.fault_routes.split(",")),
    )
    config = EmulatorConfig(
        token=args.token,
        queue=QueueConfig(
            workers=args.workers,
            queue_wait=args.queue_wait,
            base_seconds=args.base_seconds,
            seconds_per_image=args.seconds_per_image,
            service_time=args.service_time,
            speed=args.speed,
        ),
        faults=faults,
        image_ttl=args.image_ttl,
        image_format=args.image_format,
        balance=Decimal(args.balance) if args.balance is not None else None,
    )
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(f"seqnb emulator of RunComfy's Model API on http://{host}:{args.port}", file=sys.stderr)
    print(
        "token: " + ("any Bearer token is accepted" if args.token is None else "the one given with --token"),
        file=sys.stderr,
    )
    uvicorn.run(create_app(config), host=args.host, port=args.port, log_level="warning", access_log=False)
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

    p = sub.add_parser("emulator", help="serve the local emulator of RunComfy's Model API (for curl and other tools)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback only)")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--token", default=None, help="the one token to accept (default: any Bearer token)")
    g = p.add_argument_group("pacing")
    g.add_argument("--workers", type=int, default=4, help="jobs run at once")
    g.add_argument("--speed", type=float, default=1.0, help="divide every duration by this")
    g.add_argument("--queue-wait", type=float, default=0.5, help="least seconds a job stays queued")
    g.add_argument("--base-seconds", type=float, default=0.5, help="seconds per job before its images")
    g.add_argument("--seconds-per-image", type=float, default=1.0)
    g.add_argument("--service-time", type=float, default=None, help="fixed seconds per job, whatever its count")
    g.add_argument("--image-ttl", type=float, default=3600.0, help="seconds image URLs stay valid")
    g.add_argument("--image-format", choices=["jpeg", "png"], default="jpeg")
    g.add_argument("--balance", default=None, help="account balance in USD (default: unlimited)")
    g = p.add_argument_group("fault injection (probabilities from 0 to 1)")
    for name in ("rate-limit", "server-error", "drop", "drop-after", "slow", "error-200", "fail", "short", "expire"):
        g.add_argument(f"--{name}", type=float, default=0.0)
    g.add_argument("--slow-seconds", type=float, default=3.0)
    g.add_argument("--retry-after", type=float, default=1.0, help="Retry-After of injected 429s")
    g.add_argument("--fault-seed", type=int, default=0)
    g.add_argument("--fault-routes", default="submit,status,result,cancel", help="API calls that faults apply to")
    p.set_defaults(func=cmd_emulator)
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
