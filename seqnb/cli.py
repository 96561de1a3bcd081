"""The ``seqnb`` command line: validate, and (in later layers) emulator, run, demo, ledger."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from .errors import SeqnbError
from .spec import get_model, models
from .validation import validate_payload

__all__ = ["main"]

Command = Callable[[argparse.Namespace], int]


def number(
    kind: type[float] | type[int], low: float, high: float, what: str, example: str, *, above: bool = False
) -> Callable[[str], Any]:
    """An argparse type: a number of ``kind`` from ``low`` (excluded when ``above``) to ``high``, or a one-line error."""

    def parse(text: str) -> float | int:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}, e.g. {example}") from None
        if not ((low < value if above else low <= value) and value <= high and value == value):
            bound = f"above {low:g}" if above else f"from {low:g}"
            raise argparse.ArgumentTypeError(f"{text} must be {what} {bound} to {high:g}, e.g. {example}")
        return value

    return parse


probability = number(float, 0.0, 1.0, "a probability", "0.1")
seconds = number(float, 0.0, 1e9, "a number of seconds", "2.5")
positive = number(float, 0.0, 1e9, "a number", "10", above=True)
count = number(int, 0, 10**9, "a whole number", "20", above=True)
port = number(int, 0, 65535, "a port number", "8765")


def amount(text: str) -> str:
    """An argparse type: an amount of money (checked, kept as text for Decimal)."""
    from .pricing import parse_amount

    try:
        parse_amount(text, "amount")
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("amount: ")) from None
    return text


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

    from .emulator import EmulatorConfig, Faults, QueueConfig, create_app
    from .netaddr import is_loopback

    if not is_loopback(args.host):
        print(
            f"warning: listening on {args.host}, beyond loopback: other machines can reach this emulator",
            file=sys.stderr,
        )
    faults = Faults(
        **{name: getattr(args, name) for name in _fault_names()},
        slow_seconds=args.slow_seconds,
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
        host=args.host,
        controls=args.controls,
        balance=Decimal(args.balance) if args.balance is not None else None,
    )
    host = f"[{args.host}]" if ":" in args.host else args.host
    _check_port_free(args.host, args.port)
    print(f"seqnb emulator of RunComfy's Model API on http://{host}:{args.port}", file=sys.stderr)
    print(
        "token: " + ("any Bearer token is accepted" if args.token is None else "the one given with --token"),
        file=sys.stderr,
    )
    uvicorn.run(create_app(config), host=args.host, port=args.port, log_level="warning", access_log=False)
    return 0


def _check_port_free(host: str, number: int) -> None:
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, number))
        except OSError as exc:
            raise CommandError(
                f"cannot listen on {host}:{number}: {exc.strerror or exc}; choose another --port or --host"
            ) from None


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: what is wrong, and where the usage is."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class CommandError(SeqnbError):
    """A command cannot do what was asked; the message says what to change."""


def _progress(runs: list[Any], label: str, timeout: float | None = None, file: Any = None) -> None:
    """A tqdm bar over finished runs, its postfix counting the states (and where a lone run stands in the
    queue), until every run has ended; ``seqnb.Timeout`` after ``timeout`` seconds (the runs go on)."""
    import time

    from tqdm import tqdm

    from .errors import Timeout

    deadline = None if timeout is None else time.monotonic() + timeout
    with tqdm(total=len(runs), desc=label, unit="run", leave=True, file=file) as bar:
        while True:
            done = sum(r.done for r in runs)
            bar.n = done
            states: dict[str, int] = {}
            for r in runs:
                states[r.status] = states.get(r.status, 0) + 1
            postfix = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in sorted(states.items()))
            if len(runs) == 1 and runs[0].queue_text:
                postfix += f" ({runs[0].queue_text})"
            bar.set_postfix_str(postfix, refresh=False)
            bar.refresh()
            if done == len(runs):
                return
            if deadline is not None and time.monotonic() > deadline:
                raise Timeout(f"stopped watching after {timeout} s")
            time.sleep(0.1)


def cmd_run(args: argparse.Namespace) -> int:
    """Submit one request, show its progress, print the image URLs."""

    from .errors import Timeout
    from .prompt_count import stated_count
    from .request import Request

    count = args.count if args.count is not None else stated_count(args.prompt)
    request = Request(args.model, args.prompt, count=count, size=args.size, seed=args.seed)
    report = request.validate()
    for problem in report.problems:
        print(problem, file=sys.stderr)
    if not report.ok:
        return 2
    from .session import connect

    cost = request.cost()  # before connecting: a bad price setting fails here, alone
    client = connect(base_url=args.base_url)
    print(f"backend: {client.backend}", file=sys.stderr)
    print(f"estimated cost: {cost} ({request.count} images)", file=sys.stderr)
    run = client.submit(request)
    try:
        _progress([run], f"run {run.id[:8]}", args.timeout, file=sys.stderr)
    except KeyboardInterrupt:
        outcome = run.cancel()
        if outcome == "cancelled":
            print(f"cancelled run {run.id} (request {run.request_id}); nothing is charged for it", file=sys.stderr)
        else:
            print(
                f"request {run.request_id} is already running: the service cannot cancel it; it will finish and be charged",
                file=sys.stderr,
            )
        return 130
    except Timeout:
        print(f"stopped watching after {args.timeout} s; request {run.request_id} was NOT cancelled", file=sys.stderr)
        return 3
    print(file=sys.stderr)
    if run.status != "completed":
        print(f"run {run.id} {run.status}: {run.error or ''}", file=sys.stderr)
        return 1
    if run.short:
        print(f"note: the model returned {len(run.images)} of {run.requested} images", file=sys.stderr)
    for url in run.images:
        print(url)
    client.settle(timeout=120)
    with contextlib.redirect_stdout(sys.stderr):
        _where_next(client)
    return 0


DEMO_PROMPTS = [
    "Generate 3 images of a lighthouse keeper's day, dawn to night",
    "Generate 4 images of a paper boat drifting down a rainy street, storyboard",
]


def cmd_demo(args: argparse.Namespace) -> int:
    """A small sweep on the embedded emulator, with progress, ending in a table of the runs from the ledger."""
    from .emulator import embedded
    from .session import connect

    emu = embedded()
    client = connect(emu.token, emu.base_url, ledger=args.ledger or True)
    assert client.ledger is not None
    print(f"backend: {client.backend}")
    print(f"ledger:  {client.ledger.location}")
    runs = client.sweep(
        prompts=DEMO_PROMPTS, seeds=[11, 22, 33], models=["seedream-4.0", "seedream-4.5"], budget=args.budget
    )
    _progress(list(runs), "runs")
    client.settle(timeout=120)  # the images are downloaded and scored before the table is read
    print()
    print(runs_table(client.ledger.runs(sweep=runs.id)).to_string(index=False))
    print(f"\n{sum(r.status == 'completed' for r in runs)}/{len(runs)} completed, estimated {runs.plan.total_text()}")
    _where_next(client)
    return 0


def _where_next(client: Any) -> None:
    """Where the images and the ledger are, and what to try next."""
    if client.gallery is not None:
        print(f"images:  {client.gallery.cache.directory}")
    if client.ledger is not None:
        print(f"ledger:  {client.ledger.location}  (seqnb ledger --path {client.ledger.location})")
    print("next:    in JupyterLab, `import seqnb; seqnb.Studio()` (or open notebooks/quickstart.ipynb);")
    print("         with a RunComfy token (RUNCOMFY_TOKEN=... or `runcomfy login`), the same calls run on RunComfy")


def runs_table(frame: Any) -> Any:
    """The ledger's runs, compact enough for a terminal."""
    import pandas as pd

    def cut(text: Any, n: int) -> str:
        shown = "" if pd.isna(text) else str(text)
        return shown if len(shown) <= n else shown[: n - 1] + "…"

    return pd.DataFrame(
        {
            "run": frame["id"].str.slice(0, 8),
            "model": [get_model(str(m)).short_name for m in frame["model"]],
            "prompt": [cut(p, 34) for p in frame["prompt"]],
            "seed": frame["seed"],
            "size": frame["size"],
            "images": [
                f"{r if pd.notna(r) else '-'}/{q}" for r, q in zip(frame["returned"], frame["requested"], strict=True)
            ],
            "status": frame["status"],
            "queue_s": frame["queue_s"].round(1),
            "run_s": frame["run_s"].round(1),
            "est_cost": [f"{c} {a:.2f}" for c, a in zip(frame["currency"], frame["est_cost"], strict=True)],
        }
    )


def cmd_ledger(args: argparse.Namespace) -> int:
    """Print the recent runs and the spend, or export the ledger."""
    from .ledger import Ledger

    ledger = Ledger(args.path)
    filters = {k: v for k, v in {"sweep": args.sweep, "status": args.status, "model": args.model}.items() if v}
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
        print(runs_table(frame).to_string(index=False))
        print()
        print(ledger.spend(args.by, **filters).to_string(index=False))
    return 0


def cmd_cache(args: argparse.Namespace) -> int:
    """Show the image cache (files, size, limit, recency), or prune it to a size."""
    from .image_cache import ImageCache
    from .image_cache_limit import parse_size

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
    from .doctor import diagnose

    report = diagnose(
        args.base_url, account_base_url=args.account_base_url, ledger=args.ledger, cache_dir=args.cache_dir
    )
    print(json.dumps(report.to_json(), indent=2) if args.json else report.text())
    return 0 if report.ok else 1


def _fault_names() -> tuple[str, ...]:
    """The emulator's fault probabilities (each a ``Faults`` field, a ``--flag`` here)."""
    from .emulator.faults import PROBABILITIES

    return tuple(PROBABILITIES)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="seqnb", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    p = sub.add_parser("validate", help="check a wire payload against a model's rules")
    p.add_argument("--model", "-m", required=True, help="model id or alias, e.g. seedream-4.5")
    p.add_argument("--json", "-j", required=True, help="payload JSON, @file.json, or - for stdin")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("models", help="list the models, their fields and prices")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("run", help="submit one request, show progress, print the image URLs")
    p.add_argument("prompt")
    p.add_argument("--model", "-m", default="seedream-4.5")
    p.add_argument("--count", "-n", type=int, default=None, help="images (1-15); default: the number in the prompt")
    p.add_argument("--size", "-s", default=None, help="size option, or e.g. 16:9 / 2560x1440")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument(
        "--timeout", type=seconds, default=None, help="stop watching (without cancelling) after this many seconds"
    )
    p.add_argument("--base-url", default=None, help="API base URL (default: RUNCOMFY_BASE_URL or RunComfy's)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("demo", help="a small sweep on the embedded emulator, ending in a table of the runs")
    p.add_argument(
        "--budget", type=amount, default="2.00", help="refuse the sweep above this estimated cost (default 2.00)"
    )
    p.add_argument(
        "--ledger",
        default=None,
        help="ledger file or postgresql:// URL (default: $SEQNB_LEDGER or ./seqnb-ledger.sqlite)",
    )
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("ledger", help="print the recent runs and the spend, or export them")
    p.add_argument(
        "--path",
        default=None,
        help="ledger file or postgresql:// URL (default: $SEQNB_LEDGER or ./seqnb-ledger.sqlite)",
    )
    p.add_argument("--export", default=None, help="write the runs to FILE (.csv, .json or .parquet)")
    p.add_argument("--limit", type=count, default=20)
    p.add_argument("--sweep", default=None)
    p.add_argument("--status", default=None)
    p.add_argument("--model", default=None)
    p.add_argument("--by", default="model", choices=["model", "day", "sweep", "status"], help="group the spend by")
    p.set_defaults(func=cmd_ledger)

    p = sub.add_parser("cache", help="show the image cache, or prune it (least recently used first)")
    p.add_argument("action", nargs="?", choices=["show", "prune"], default="show")
    p.add_argument("--dir", default=None, help="cache folder (default: $SEQNB_CACHE or ~/.cache/seqnb/images)")
    p.add_argument("--max-bytes", default=None, help="with prune: the size to prune to, e.g. 500M (default: the limit)")
    p.set_defaults(func=cmd_cache)

    p = sub.add_parser("doctor", help="check the token, URLs, catalog, balance, ledger and cache (exit 1 on a problem)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--base-url", default=None, help="Model API base (default: RUNCOMFY_BASE_URL or RunComfy's)")
    p.add_argument(
        "--account-base-url", default=None, help="account API base (default: RUNCOMFY_API_BASE or RunComfy's)"
    )
    p.add_argument(
        "--ledger",
        default=None,
        help="ledger file or postgresql:// URL (default: $SEQNB_LEDGER or ./seqnb-ledger.sqlite)",
    )
    p.add_argument("--cache-dir", default=None, help="image cache (default: $SEQNB_CACHE or ~/.cache/seqnb/images)")
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser("emulator", help="serve the local emulator of RunComfy's Model API (for curl and other tools)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback only)")
    p.add_argument("--port", type=port, default=8765)
    p.add_argument("--token", default=None, help="the one token to accept (default: any Bearer token)")
    g = p.add_argument_group("pacing")
    g.add_argument("--workers", type=count, default=4, help="jobs run at once")
    g.add_argument("--speed", type=positive, default=1.0, help="divide every duration by this")
    g.add_argument("--queue-wait", type=seconds, default=0.5, help="least seconds a job stays queued")
    g.add_argument("--base-seconds", type=seconds, default=0.5, help="seconds per job before its images")
    g.add_argument("--seconds-per-image", type=seconds, default=1.0)
    g.add_argument("--service-time", type=seconds, default=None, help="fixed seconds per job, whatever its count")
    g.add_argument("--image-ttl", type=seconds, default=3600.0, help="seconds image URLs stay valid")
    g.add_argument("--image-format", choices=["jpeg", "png"], default="jpeg")
    g.add_argument("--balance", type=amount, default=None, help="account balance in USD (default: unlimited)")
    p.add_argument(
        "--controls",
        action="store_true",
        default=None,
        help="serve the /_emulator/* control routes beyond loopback too (they need the token whenever one is set)",
    )
    g = p.add_argument_group("fault injection (probabilities from 0 to 1)")
    for name in _fault_names():
        g.add_argument(f"--{name.replace('_', '-')}", type=probability, default=0.0)
    g.add_argument("--slow-seconds", type=seconds, default=3.0)
    g.add_argument("--retry-after", type=seconds, default=1.0, help="Retry-After of injected 429s")
    g.add_argument("--fault-seed", type=int, default=0)
    g.add_argument("--fault-routes", default="submit,status,result,cancel", help="API calls that faults apply to")
    p.set_defaults(func=cmd_emulator)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run a command; every failure is one line on stderr that names the fix, with exit status 2."""
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Command = args.func
    try:
        return func(args)
    except SeqnbError as exc:
        print(f"error: {exc}", file=sys.stderr)
    except KeyboardInterrupt:
        return 130
    except OSError as exc:
        where = f" {exc.filename}" if getattr(exc, "filename", None) else ""
        print(f"error:{where} {exc.strerror or exc}; check the path and its permissions", file=sys.stderr)
    except Exception as exc:  # a bug of seqnb's: still one line, the traceback only on request
        if os.environ.get("SEQNB_DEBUG"):
            raise
        print(
            f"error: unexpected {type(exc).__name__}: {exc} (a seqnb bug: rerun with SEQNB_DEBUG=1 and report the "
            "traceback)",
            file=sys.stderr,
        )
    return 2


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
