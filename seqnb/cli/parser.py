"""The ``seqnb`` command line: the parser and ``main``."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from ..emulator.faults import PROBABILITIES
from ..errors import SeqnbError
from .arguments import LEDGER_HELP, Parser, add_run_filters, amount, count, port, positive, probability, seconds
from .emulator import cmd_emulator
from .reports import cmd_cache, cmd_doctor, cmd_ledger, cmd_models, cmd_validate
from .share import add_share_commands
from .sweeps import cmd_demo, cmd_run

__all__ = ["build_parser", "main"]

DESCRIPTION = "seqnb: run sweeps on RunComfy's Seedream sequential models or the local emulator, validate requests, read the ledger and the image cache, check the set-up."
EPILOG = (
    "The token comes from RUNCOMFY_TOKEN or `runcomfy login`; without one, run and demo use the embedded "
    "emulator (offline, nothing is charged). `seqnb COMMAND --help` tells more; docs/settings.md lists every setting."
)

Command = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    from .._version import __version__

    parser = Parser(prog="seqnb", description=DESCRIPTION, epilog=EPILOG)
    parser.add_argument("--version", action="version", version=f"seqnb {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)

    p = sub.add_parser("validate", help="check a wire payload against a model's rules")
    p.add_argument("--model", "-m", required=True, help="model id or alias, e.g. seedream-4.5")
    p.add_argument("--json", "-j", required=True, help="payload JSON, @file.json, or - for stdin")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("models", help="list the models, their fields and prices")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser(
        "run",
        help="submit one request, show progress, save the images (print their files, or their URLs on RunComfy)",
        epilog=EPILOG,
    )
    p.add_argument("prompt", help="what to draw; state the number of images, e.g. 'Generate 4 images of a kite'")
    p.add_argument("--model", "-m", default="seedream-4.5", help="seedream-4.0 or seedream-4.5 (default: %(default)s)")
    p.add_argument(
        "--count",
        "-n",
        type=int,
        help="images (1-15); default: the number the prompt states, else the model's default (3, with a warning)",
    )
    p.add_argument("--size", "-s", help="size option, or e.g. 16:9 / 2560x1440")
    p.add_argument("--seed", type=int, help="the same seed and prompt give the same images (default: random)")
    p.add_argument(
        "--out",
        "-o",
        metavar="DIR",
        help="save the images into DIR as <run id>-<frame>of<count>.png with their provenance (default: print the "
        "URLs; on the embedded emulator, whose URLs end with the command, save into ./seqnb-images)",
    )
    p.add_argument(
        "--timeout",
        type=seconds,
        help="stop watching after this many seconds, without cancelling: on RunComfy the run goes on (and is charged "
        "if it completes); on the embedded emulator, which ends with the command, it ends lost",
    )
    p.add_argument("--base-url", help="API base URL (default: RUNCOMFY_BASE_URL or RunComfy's)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("demo", help="a small sweep on the embedded emulator, ending in a table of the runs")
    p.add_argument(
        "--budget", type=amount, default="2.00", help="refuse the sweep above this estimated cost (default 2.00)"
    )
    p.add_argument("--ledger", help=LEDGER_HELP)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("ledger", help="print the recent runs and the spend, or export them")
    add_run_filters(p)
    p.add_argument("--export", help="write the runs to FILE (.csv, .json or .parquet)")
    p.add_argument("--limit", type=count, default=20, help="show at most this many recent runs (default: %(default)s)")
    p.add_argument(
        "--by",
        default="model",
        choices=["model", "day", "sweep", "status"],
        help="group the spend by (default: %(default)s)",
    )
    p.set_defaults(func=cmd_ledger)

    p = sub.add_parser("cache", help="show the image cache, or prune it (least recently used first)")
    p.add_argument(
        "action", nargs="?", choices=["show", "prune"], default="show", help="show (the default) or prune the cache"
    )
    p.add_argument("--dir", help="cache folder (default: $SEQNB_CACHE or ~/.cache/seqnb/images)")
    p.add_argument("--max-bytes", help="with prune: the size to prune to, e.g. 500M (default: the limit)")
    p.set_defaults(func=cmd_cache)

    p = sub.add_parser("doctor", help="check the token, URLs, catalog, balance, ledger and cache (exit 1 on a problem)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--base-url", help="Model API base (default: RUNCOMFY_BASE_URL or RunComfy's)")
    p.add_argument("--account-base-url", help="account API base (default: RUNCOMFY_API_BASE or RunComfy's)")
    p.add_argument("--ledger", help=LEDGER_HELP)
    p.add_argument("--cache-dir", help="image cache (default: $SEQNB_CACHE or ~/.cache/seqnb/images)")
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser("emulator", help="serve the local emulator of RunComfy's Model API (for curl and other tools)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback only)")
    p.add_argument("--port", type=port, default=8765, help="port to listen on (default: %(default)s)")
    p.add_argument("--token", help="the one token to accept (default: any Bearer token)")
    p.add_argument("--quiet", "-q", action="store_true", help="no log line per request on the console")
    g = p.add_argument_group("pacing")
    g.add_argument("--workers", type=count, default=4, help="jobs run at once (default: %(default)s)")
    g.add_argument("--speed", type=positive, default=1.0, help="divide every duration by this (default: %(default)s)")
    g.add_argument(
        "--queue-wait", type=seconds, default=0.5, help="least seconds a job stays queued (default: %(default)s)"
    )
    g.add_argument(
        "--base-seconds", type=seconds, default=0.5, help="seconds per job before its images (default: %(default)s)"
    )
    g.add_argument(
        "--seconds-per-image", type=seconds, default=1.0, help="seconds per image of a job (default: %(default)s)"
    )
    g.add_argument("--service-time", type=seconds, help="fixed seconds per job, whatever its count")
    g.add_argument(
        "--image-ttl", type=seconds, default=3600.0, help="seconds image URLs stay valid (default: %(default)s)"
    )
    g.add_argument(
        "--image-format", choices=["jpeg", "png"], default="jpeg", help="format of the images (default: %(default)s)"
    )
    g.add_argument("--balance", type=amount, help="account balance in USD (default: unlimited)")
    g.add_argument(
        "--failed-cost-share",
        type=probability,
        default=0.0,
        help="share of its price a failed run is charged (UNCONFIRMED on RunComfy; default 0)",
    )
    p.add_argument(
        "--controls",
        action="store_true",
        default=None,  # not given: the config's own rule (loopback only), not False (nowhere)
        help="serve the /_emulator/* control routes beyond loopback too (they need the token whenever one is set)",
    )
    g = p.add_argument_group("fault injection (probabilities from 0 to 1)")
    for name, does in PROBABILITIES.items():
        g.add_argument(f"--{name.replace('_', '-')}", type=probability, default=0.0, help=does)
    g.add_argument(
        "--slow-seconds", type=seconds, default=3.0, help="how long --slow holds an answer (default: %(default)s)"
    )
    g.add_argument(
        "--retry-after", type=seconds, default=1.0, help="Retry-After of injected 429s (default: %(default)s)"
    )
    g.add_argument(
        "--fault-seed", dest="seed", metavar="FAULT_SEED", type=int, default=0,
        help="seed of the fault dice: the same seed, the same faults",
    )  # fmt: skip
    g.add_argument(
        "--fault-routes", dest="routes", metavar="FAULT_ROUTES", type=lambda text: tuple(text.split(",")),
        default="submit,status,result,cancel", help="API calls that faults apply to",
    )  # fmt: skip
    p.set_defaults(func=cmd_emulator)
    add_share_commands(sub)
    for choice in sub._choices_actions:  # each command's --help starts by saying what it does
        command = sub.choices[choice.dest]
        said = choice.help or ""
        command.description = command.description or said[:1].upper() + said[1:] + "."  # names keep their case
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run a command; every failure is one line on stderr that names the fix, with exit status 2."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    func: Command = args.func
    try:
        return func(args)
    except SeqnbError as exc:
        print(f"error: {exc}", file=sys.stderr)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # the reader left (`seqnb ledger | head`): as the Python docs advise, say nothing
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the flush at exit does not fail again
        return 1
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
