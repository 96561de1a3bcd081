"""Every way a CLI command can fail ends in one line of seqnb's own on stderr, naming the fix, with exit status 2."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from seqnb.cli import main
from seqnb.errors import UnknownModelError
from seqnb.ledger.facade import Ledger
from seqnb.model.sweep import plan_sweep


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield int(s.getsockname()[1])


def fails_in_one_line(capsys: pytest.CaptureFixture[str], argv: list[str], *expected: str) -> str:
    try:
        status = main(argv)
    except SystemExit as exit_:  # argparse's own exit
        status = int(exit_.code or 0)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert status == 2, err
    assert len(lines) == 1 and "Traceback" not in err, err
    for text in expected:
        assert text in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["emulator", "--rate-limit", "7"], ["--rate-limit", "from 0 to 1"]),
        (["emulator", "--drop", "often"], ["--drop", "not a probability"]),
        (["emulator", "--balance", "NaN"], ["--balance", "finite amount"]),
        (["emulator", "--speed", "0"], ["--speed", "above 0"]),
        (["emulator", "--port", "70000"], ["--port", "0 to 65535"]),
        (["emulator", "--queue-wait", "-1"], ["--queue-wait", "-1 must be a time in seconds of 0 or more"]),
        (["emulator", "--workers", "0"], ["--workers", "0 must be a whole number of 1 or more"]),
        (["run", "Generate 2 images of a cat", "--timeout", "1e12"], ["--timeout", "of at most 1000000000"]),
        (["demo", "--budget", "NaN"], ["--budget", "finite amount"]),
        (["demo", "--budget", "five"], ["--budget", "not an amount"]),
        (["run", "Generate 2 images of a cat", "--timeout", "soon"], ["--timeout", "seconds"]),
        (["ledger", "--limit", "-3"], ["--limit", "-3 must be a whole number of 1 or more, e.g. 20"]),
        (["report", "r.html", "--thumb", "0"], ["--thumb", "must be a whole number of 1 or more"]),
        (["nothing"], ["invalid choice"]),
        (["validate", "--model", "seedream-9", "--json", "{}"], ["unknown model", "seedream-4.5"]),
        (["validate", "--model", "4.5", "--json", "{nope"], ["--json", "not readable JSON"]),
    ],
)
def test_bad_arguments(capsys: pytest.CaptureFixture[str], argv: list[str], expected: list[str]) -> None:
    fails_in_one_line(capsys, argv, *expected)


def test_a_busy_port(capsys: pytest.CaptureFixture[str], busy_port: int) -> None:
    fails_in_one_line(capsys, ["emulator", "--port", str(busy_port)], "cannot listen", "another --port")


@pytest.mark.parametrize(("make", "cause"), [("directory", "cannot be opened"), ("garbage", "corrupt")])
def test_a_ledger_that_cannot_open(capsys: pytest.CaptureFixture[str], tmp_path: Path, make: str, cause: str) -> None:
    path = tmp_path / "l.sqlite"
    if make == "directory":
        path.mkdir()
    else:
        path.write_bytes(b"not a database" * 500)
    fails_in_one_line(capsys, ["ledger", "--path", str(path)], str(path), cause)


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["ledger", "--ledger"], "--ledger"),
        (["ledger", "--export", "out.csv", "--path"], "--ledger"),  # the old spelling: the message teaches the one
        (["report", "r.html", "--ledger"], "--ledger"),
        (["export", "shots", "--ledger"], "--ledger"),
    ],
)
def test_a_ledger_that_does_not_exist_is_not_made(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, argv: list[str], flag: str
) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "typo" / "nonexist.sqlite"
    line = fails_in_one_line(capsys, [*argv, str(path)], f"{flag}: no ledger at {path}", "does not exist")
    assert "seqnb demo --ledger" in line  # how to make one
    assert list(tmp_path.iterdir()) == []  # no ledger, no folder, no report, no export


def test_the_default_ledger_that_does_not_exist_is_not_made(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SEQNB_LEDGER", raising=False)
    fails_in_one_line(capsys, ["ledger"], f"the default ledger: no ledger at {tmp_path / 'seqnb-ledger.sqlite'}")
    monkeypatch.setenv("SEQNB_LEDGER", str(tmp_path / "team.sqlite"))
    fails_in_one_line(capsys, ["ledger"], f"SEQNB_LEDGER: no ledger at {tmp_path / 'team.sqlite'}")
    assert list(tmp_path.iterdir()) == []


def test_an_export_to_an_unknown_format(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite"
    Ledger(path).close()
    fails_in_one_line(capsys, ["ledger", "--path", str(path), "--export", str(tmp_path / "x.xlsx")], ".csv, .json")


def test_bad_prices_in_the_environment(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEQNB_PRICES", "seedream-4.5=NaN")
    line = fails_in_one_line(capsys, ["run", "Generate 2 images of a cat"], "SEQNB_PRICES", "finite amount")
    assert "0.04" in line  # an example of what to write


def test_python_callers_get_seqnb_messages_too() -> None:
    import seqnb

    with pytest.raises(UnknownModelError, match=r"seedream-4\.5"):
        seqnb.Request(None)  # type: ignore[arg-type]
    plan = plan_sweep(prompts=["Generate 2 images of a fox"], seeds=[1])
    for bad in ("NaN", "Infinity", "-1", "five"):
        with pytest.raises(seqnb.SettingInvalid, match="budget"):
            plan.check(budget=bad)
