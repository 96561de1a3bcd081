"""The command line's argument types (numbers in a range, amounts of money), its parser class and its error."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any, NoReturn

from ..errors import SeqnbError

__all__ = [
    "CommandError",
    "Parser",
    "amount",
    "count",
    "number",
    "port",
    "positive",
    "probability",
    "seconds",
]


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


class CommandError(SeqnbError):
    """A command cannot do what was asked; the message says what to change."""
