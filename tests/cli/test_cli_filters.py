"""`seqnb ledger`, `seqnb report` and `seqnb export` choose runs with the same filters, spelt alike."""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import pytest

import seqnb
from seqnb.cli import build_parser, main

SHARED = ("--ledger", "--sweep", "--status", "--model")


def command_parser(command: str) -> argparse.ArgumentParser:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    found: argparse.ArgumentParser = sub.choices[command]
    return found


def filters_of(command: str) -> dict[str, tuple[tuple[str, ...], object, str | None]]:
    """Each shared filter of a subcommand as its parser declares it: option strings, choices, help."""
    actions = command_parser(command)._option_string_actions
    return {flag: (tuple(actions[flag].option_strings), actions[flag].choices, actions[flag].help) for flag in SHARED}


def test_the_three_commands_declare_the_same_filters() -> None:
    ledger = filters_of("ledger")
    assert filters_of("report") == ledger and filters_of("export") == ledger
    assert ledger["--status"][1] is not None and "completed" in ledger["--status"][1]  # a choice list everywhere
    assert all("--path" not in command_parser(c).format_help() for c in ("ledger", "report", "export"))


def test_the_same_filters_choose_the_same_runs(
    seqnb_client: seqnb.Client, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    chosen = seqnb_client.sweep(
        prompts=["Generate 2 images of a heron"], seeds=[1, 2], models=["4.0", "4.5"], sizes=["2560x1440"], quiet=True
    )
    other = seqnb_client.sweep(prompts=["Generate 2 images of a crane"], seeds=[3], models=["4.0"], quiet=True)
    seqnb_client.wait_all([*chosen, *other], timeout=30)
    seqnb_client.settle()
    assert seqnb_client.ledger is not None
    ledger = str(seqnb_client.ledger.location)
    wanted = {r.id for r in chosen if r.model == "bytedance/seedream-4-0/sequential"}
    assert len(wanted) == 2
    sweep = str(chosen[0].sweep_id)
    filters = ["--ledger", ledger, "--sweep", sweep, "--status", "completed", "--model", "seedream-4.0"]

    assert main(["ledger", *filters, "--export", str(tmp_path / "ledger.csv")]) == 0
    assert main(["export", str(tmp_path / "export"), *filters]) == 0
    assert main(["report", str(tmp_path / "report.html"), *filters]) == 0
    for table in (tmp_path / "ledger.csv", tmp_path / "export" / "runs.csv"):
        with table.open(newline="") as fh:
            assert {row["id"] for row in csv.DictReader(fh)} == wanted, table
    page = (tmp_path / "report.html").read_text()
    assert {r.id for r in [*chosen, *other] if r.id in page} == wanted

    # the old spelling of `seqnb ledger`'s file still works, unadvertised; a status is one of the states everywhere
    capsys.readouterr()
    assert main(["ledger", "--path", ledger, "--sweep", str(other[0].sweep_id)]) == 0
    assert ": 1 runs" in capsys.readouterr().out
    for command in (["ledger"], ["report", "r.html"], ["export", "out"]):
        with pytest.raises(SystemExit):
            main([*command, "--ledger", ledger, "--status", "done"])
        assert "--status: invalid choice: 'done'" in capsys.readouterr().err
