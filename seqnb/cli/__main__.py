"""``python -m seqnb.cli``: the same as the ``seqnb`` command."""

from __future__ import annotations

from .parser import main

if __name__ == "__main__":
    raise SystemExit(main())
