"""The version of seqnb, in one place (the package, the emulator header, ``seqnb --version``, pyproject)."""

__version__ = "0.1.0"
