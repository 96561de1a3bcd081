"""Cells run as one notebook in a real kernel (nbclient), offline, as a user runs them: no token, the embedded
emulator, a ledger and an image cache of the test's own. The README, guide and saved-notebook tests share it."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).parents[1]


def run_offline(
    sources: Sequence[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    *,
    allow_errors: bool = False,
    store_widget_state: bool = True,
) -> nbformat.NotebookNode:
    """The notebook of ``sources``, one cell each, executed in ``tmp_path`` (an error raises unless ``allow_errors``)."""
    for name in [k for k in os.environ if k.startswith("RUNCOMFY_") or k == "SEQNB_PRICES"]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("SEQNB_LEDGER", str(tmp_path / "ledger.sqlite"))
    monkeypatch.setenv("SEQNB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("RUNCOMFY_CONFIG_DIR", str(tmp_path / "no-login"))
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in sources])
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    NotebookClient(
        nb,
        timeout=300,
        kernel_name="python3",
        allow_errors=allow_errors,
        store_widget_state=store_widget_state,
        resources={"metadata": {"path": str(tmp_path)}},
    ).execute()
    return nb
