"""The command line's argument types (numbers in a range, amounts of money), its parser class and its error."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, get_args

from ..api.protocol import RunStatus
from ..errors import SeqnbError

if TYPE_CHECKING:
    from ..ledger.facade import Ledger

__all__ = [
    "LEDGER_HELP",
    "STATUSES",
    "CommandError",
    "Parser",
    "add_run_filters",
    "amount",
    "count",
    "existing_ledger",
    "number",
    "port",
    "positive",
    "probability",
    "seconds",
]

LEDGER_HELP = "ledger file or postgresql:// URL (default: $SEQNB_LEDGER or ./seqnb-ledger.sqlite)"
STATUSES: tuple[str, ...] = get_args(RunStatus)

SANE = 1e9
"""The largest value a bound-less number may take (a guard against overflow, not a limit worth naming in help)."""


def number(
    kind: type[float] | type[int], low: float, high: float, what: str, example: str, *, above: bool = False
) -> Callable[[str], Any]:
    """An argparse type: a number of ``kind`` from ``low`` (excluded when ``above``) to ``high``, or a one-line error
    naming the bound it broke (both for a real range such as a port's; a whole number above 0 is "1 or more")."""

    def parse(text: str) -> float | int:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}, e.g. {example}") from None
        if not ((low < value if above else low <= value) and value <= high and value == value):
            raise argparse.ArgumentTypeError(
                f"{text} must be {what} {_bounds(kind, low, high, above, value)}, e.g. {example}"
            )
        return value

    return parse


def _bounds(kind: type[float] | type[int], low: float, high: float, above: bool, value: float) -> str:
    least = f"{low + 1 if kind is int and above else low:g}"  # a whole number above 0 is one of 1 or more
    if high < SANE:  # a real range, such as a port's: name both ends
        return f"above {low:g} and at most {high:g}" if above and kind is float else f"from {least} to {high:g}"
    if value > high:
        return f"of at most {high:.0f}"
    return f"above {low:g}" if above and kind is float else f"of {least} or more"


probability = number(float, 0.0, 1.0, "a probability", "0.1")
seconds = number(float, 0.0, SANE, "a time in seconds", "2.5")
positive = number(float, 0.0, SANE, "a number", "10", above=True)
count = number(int, 0, SANE, "a whole number", "20", above=True)
port = number(int, 0, 65535, "a port number", "8765")


def amount(text: str) -> str:
    """An argparse type: an amount of money (checked, kept as text for Decimal)."""
    from ..model.pricing import parse_amount

    try:
        parse_amount(text, "amount")
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("amount: ")) from None
    return text


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: what is wrong, and where the usage is."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def add_run_filters(parser: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    """The filters ``seqnb ledger``, ``report`` and ``export`` share, declared once so they are spelt alike: the ledger
    (``--path``, its old name on ``seqnb ledger``, still works, unshown), a sweep, a status, a model. Returns their group."""
    g = parser.add_argument_group("which runs (combined with AND; default: every run)")
    g.add_argument("--ledger", help="an existing " + LEDGER_HELP)
    g.add_argument("--path", dest="ledger", help=argparse.SUPPRESS)  # the old spelling on `seqnb ledger`, unadvertised
    g.add_argument("--sweep", help="the runs of one sweep (its id, sw-..., as `seqnb ledger` shows)")
    g.add_argument(
        "--status", choices=STATUSES, metavar="STATUS", help="the runs in this state: " + ", ".join(STATUSES)
    )
    g.add_argument("--model", help="the runs of one model: its id or alias, e.g. seedream-4.5")
    return g


class CommandError(SeqnbError):
    """A command cannot do what was asked; the message says what to change."""


def existing_ledger(target: str | None, flag: str) -> Ledger:
    """The ledger a command reads: ``target`` (given as ``flag``), else ``$SEQNB_LEDGER`` or ./seqnb-ledger.sqlite.

    A ledger file that does not exist is an error naming it, never a new empty ledger (nor its folders):
    reading made one, and a mistyped path then showed "0 runs" instead of saying so.
    """
    from ..ledger.facade import Ledger, ledger_target

    chosen, setting = ledger_target(target, flag)
    if "://" not in chosen:  # a file (a database URL is the server's to answer)
        path = Path(chosen).expanduser()
        if not path.exists():
            raise CommandError(
                f"{setting}: no ledger at {path.absolute()}: the file does not exist. Check the path ({flag} PATH "
                f"or SEQNB_LEDGER); a ledger is made by the first run recorded in it: `seqnb demo --ledger "
                f"{chosen}`, `SEQNB_LEDGER={chosen} seqnb run ...`, or seqnb.connect(ledger={chosen!r}) in Python"
            )
    return Ledger(chosen)
