"""The ``seqnb`` command line (the ``seqnb`` console script, and ``python -m seqnb.cli``).

``parser`` draws the commands and runs one (``main``); the commands live by job: ``reports``
(validate, models, ledger, cache, doctor), ``sweeps`` (run, demo), ``emulator`` (serve the
emulator); ``arguments`` holds the argument types they share.
"""

from __future__ import annotations

from .parser import build_parser, main

__all__ = ["build_parser", "main"]
