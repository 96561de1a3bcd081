"""``seqnb emulator``: the local emulator of RunComfy's Model API, served in the foreground."""

from __future__ import annotations

import argparse
import logging
import sys

from .arguments import CommandError

__all__ = ["FAULT_HELP", "cmd_emulator", "fault_names"]


def cmd_emulator(args: argparse.Namespace) -> int:
    """Serve the emulator in the foreground until Ctrl-C."""
    from decimal import Decimal

    import uvicorn

    from .._netaddr import is_loopback
    from ..emulator import EmulatorConfig, Faults, QueueConfig, create_app

    if not is_loopback(args.host):
        print(
            f"warning: listening on {args.host}, beyond loopback: other machines can reach this emulator",
            file=sys.stderr,
        )
    faults = Faults(
        **{name: getattr(args, name) for name in fault_names()},
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
        failed_cost_share=Decimal(str(args.failed_cost_share)),
    )
    host = f"[{args.host}]" if ":" in args.host else args.host
    _check_port_free(args.host, args.port)
    print(f"seqnb emulator of RunComfy's Model API on http://{host}:{args.port}", file=sys.stderr)
    print(
        "token: " + ("any Bearer token is accepted" if args.token is None else "the one given with --token"),
        file=sys.stderr,
    )
    if args.token is None:  # the controls and uploads need a secret no web page can know
        print(f"controls and uploads (/_emulator/*, POST /files): Bearer {config.control_token}", file=sys.stderr)
    served = uvicorn.Config(
        create_app(config), host=args.host, port=args.port, log_level="warning", access_log=not args.quiet
    )
    logging.getLogger("uvicorn.access").setLevel(logging.INFO)  # a line per request, the startup chatter kept out
    uvicorn.Server(served).run()
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


FAULT_HELP = {
    "rate_limit": "a 429 with a Retry-After header",
    "server_error": "a 500, 502 or 503",
    "drop": "the connection closes before the call is handled",
    "drop_after": "the call is handled, then the connection closes before the answer",
    "slow": "the answer is held back --slow-seconds",
    "error_200": "an HTTP 200 whose body carries an error_code",
    "fail": "a job ends failed",
    "short": "a job returns fewer images than asked",
    "expire": "a job's image URLs expire as soon as it completes",
}
"""What each fault does, for ``seqnb emulator --help``."""


def fault_names() -> tuple[str, ...]:
    """The emulator's fault probabilities (each a ``Faults`` field, a ``--flag`` here)."""
    from ..emulator.faults import PROBABILITIES

    return tuple(PROBABILITIES)
