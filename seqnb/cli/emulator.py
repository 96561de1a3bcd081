"""``seqnb emulator``: the local emulator of RunComfy's Model API, served in the foreground."""

from __future__ import annotations

import argparse
import logging
import sys

from .arguments import CommandError

__all__ = ["cmd_emulator"]


def cmd_emulator(args: argparse.Namespace) -> int:
    """Serve the emulator in the foreground until Ctrl-C."""
    import uvicorn

    from .._netaddr import is_loopback
    from ..emulator import create_app
    from ..emulator.server import config_from

    if not is_loopback(args.host):
        print(
            f"warning: listening on {args.host}, beyond loopback: other machines can reach this emulator",
            file=sys.stderr,
        )
    given = {k: v for k, v in vars(args).items() if k not in ("command", "func", "port", "quiet")}
    config = config_from(**given)  # the other options are named after the fields of the emulator's configs
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
