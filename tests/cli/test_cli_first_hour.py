"""What a new user meets first on the command line (issue #23): help, version, pipes, Ctrl-C, saved images."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

import seqnb
from seqnb.cli import build_parser, main
from seqnb.cli.sweeps import LOST_NOTE

ROOT = Path(__file__).resolve().parents[2]


def cli(tmp_path: Path, *args: str, pythonpath: Path = ROOT, **kw: object) -> subprocess.Popen[str]:
    """``python -m seqnb.cli ARGS`` in ``tmp_path`` with no token: the embedded emulator, a ledger and cache there."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNCOMFY_", "SEQNB_"))}
    env.update(
        PYTHONPATH=str(pythonpath),
        SEQNB_LEDGER=str(tmp_path / "ledger.sqlite"),
        SEQNB_CACHE=str(tmp_path / "cache"),
    )
    return subprocess.Popen(
        [sys.executable, "-m", "seqnb.cli", *args],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,  # type: ignore[call-overload]
    )


def finished(proc: subprocess.Popen[str], timeout: float = 120) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"seqnb {seqnb.__version__}"


def test_bare_seqnb_prints_the_help_and_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    out = capsys.readouterr().out
    for command in ("run", "demo", "ledger", "cache", "doctor", "emulator", "models", "validate"):
        assert f"\n    {command} " in out, out
    assert "RUNCOMFY_TOKEN" in out and "embedded emulator" in out


def test_every_argument_has_a_help_text() -> None:
    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    assert commands
    missing = [
        f"{name} {'/'.join(action.option_strings) or action.dest}"
        for name, sub in commands.items()
        for action in sub._actions
        if not action.help
    ]
    assert not missing, missing


def test_each_command_says_what_it_does(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["models", "--help"])
    assert "\nList the models, their fields and prices.\n" in capsys.readouterr().out


def test_help_says_the_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    for argv, expected in [
        (["run", "--help"], ["default: seedream-4.5", "else the model's default (3", "--out DIR", "RUNCOMFY_TOKEN"]),
        (["emulator", "--help"], ["(default: 8765)"]),
        (["ledger", "--help"], ["(default: 20)", "in_progress, completed"]),
    ]:
        with pytest.raises(SystemExit):
            main(argv)
        out = " ".join(capsys.readouterr().out.split())
        for text in expected:
            assert text in out, (argv, text, out)


def test_models_lists_the_values_each_field_takes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "one of: 1-15" in out and "one of: fast, standard" in out and "2560x1440 (16:9)" in out
    assert "one of 8" not in out


def test_ledger_status_must_be_a_status(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["ledger", "--path", str(tmp_path / "l.sqlite"), "--status", "bogus"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and len(err.strip().splitlines()) == 1
    assert "'bogus'" in err and "completed" in err and "in_progress" in err


def test_ledger_into_a_closed_pipe_is_quiet(tmp_path: Path) -> None:
    ledger = seqnb.Ledger(tmp_path / "ledger.sqlite")
    ledger.close()
    proc = cli(tmp_path, "ledger", stdin=subprocess.DEVNULL)
    assert proc.stdout is not None
    proc.stdout.close()  # the reader is gone before seqnb writes, as with `seqnb ledger | head -0`
    proc.wait(timeout=60)
    assert proc.stderr is not None
    err = proc.stderr.read()
    assert "Broken pipe" not in err and "Traceback" not in err and "Exception ignored" not in err, err
    assert proc.returncode == 1


def test_run_on_the_embedded_emulator_saves_the_images(tmp_path: Path) -> None:
    status, out, err = finished(cli(tmp_path, "run", "Generate 2 images of a kite", "--seed", "4"))
    assert status == 0, err
    files = [Path(line) for line in out.split()]
    assert [f.name[13:] for f in files] == ["01of02.png", "02of02.png"] and all(f.name[12] == "-" for f in files)
    run_id = files[0].name[:12]
    for f in files:
        path = tmp_path / f
        assert path.parent.name == "seqnb-images" and path.is_file()
        with Image.open(path) as img:
            meta = json.loads(img.info["seqnb"])
        assert meta["run_id"] == run_id and meta["seed"] == 4 and meta["prompt"] == "Generate 2 images of a kite"
    assert "http://127.0.0.1" not in out and "saved into seqnb-images/" in err
    assert "(2 images)" in err
    assert "\r" not in err  # into a pipe: no bar, no redraws; the last line says how the run ended and where
    last = err.splitlines()[-1]
    assert last.startswith(f"run {run_id} completed in ") and ": 2 images saved into seqnb-images/ (" in last, err


def test_run_out_saves_where_asked(tmp_path: Path) -> None:
    status, out, err = finished(cli(tmp_path, "run", "Generate 1 image of a gull", "--out", "shots"))
    assert status == 0, err
    (line,) = out.split()
    assert line.startswith("shots/") and line.endswith("-01of01.png") and (tmp_path / line).is_file()
    assert "(1 image)" in err and err.splitlines()[-1].endswith(": 1 image saved into shots/")


def test_the_next_hint_of_a_checkout_names_its_files(tmp_path: Path) -> None:
    status, _, err = finished(cli(tmp_path, "run", "Generate 1 image of a gull"))
    assert status == 0, err
    assert f"pip install -e '{ROOT}[notebooks]' && jupyter lab {ROOT / 'notebooks' / 'quickstart.ipynb'}" in err
    assert (ROOT / "notebooks" / "quickstart.ipynb").is_file()


def test_the_next_hint_of_an_installed_package_names_no_checkout(tmp_path: Path) -> None:
    site = tmp_path / "site-packages"  # the package alone, as a wheel installs it: no pyproject, no notebooks
    shutil.copytree(ROOT / "seqnb", site / "seqnb", ignore=shutil.ignore_patterns("__pycache__"))
    work = tmp_path / "work"
    work.mkdir()
    status, _, err = finished(cli(work, "run", "Generate 1 image of a gull", pythonpath=site))
    assert status == 0, err
    assert "python3 -m pip install 'seqnb[notebooks]' && jupyter lab" in err and "seqnb.Studio()" in err
    assert "quickstart.ipynb" not in err and " -e " not in err and str(ROOT) not in err


def test_timeout_on_the_embedded_emulator_ends_its_run_lost(tmp_path: Path) -> None:
    status, _, err = finished(cli(tmp_path, "run", "Generate 15 images of a slow kite", "--timeout", "0.5"))
    assert status == 3, err
    ledger = seqnb.Ledger(tmp_path / "ledger.sqlite")
    frame = ledger.runs()
    assert list(frame["status"]) == ["lost"] and frame["error"][0] == LOST_NOTE
    assert f"run {frame['id'][0]} lost" in err and "NOT cancelled" not in err
    spend = ledger.spend()
    assert spend["in_flight"].sum() == 0 and spend["simulated"].sum() == 0


def test_ctrl_c_on_the_embedded_emulator_marks_the_run_lost(tmp_path: Path) -> None:
    proc = cli(tmp_path, "run", "Generate 15 images of a slow kite")
    deadline = time.monotonic() + 60
    while not (tmp_path / "ledger.sqlite").exists() or "in_progress" not in set(
        seqnb.Ledger(tmp_path / "ledger.sqlite").runs()["status"]
    ):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    status, _, err = finished(proc, 60)
    assert status == 130, err
    assert "will finish and be charged" not in err and "nothing was charged" in err
    frame = seqnb.Ledger(tmp_path / "ledger.sqlite").runs()
    assert list(frame["status"]) == ["lost"]
    assert "embedded emulator ended" in frame["error"][0]
    spend = seqnb.Ledger(tmp_path / "ledger.sqlite").spend()
    assert spend["in_flight"].sum() == 0 and spend["simulated"].sum() == 0


def test_ledger_sweep_must_be_a_sweep_of_the_ledger(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    seqnb.Ledger(tmp_path / "l.sqlite").close()
    assert main(["ledger", "--path", str(tmp_path / "l.sqlite"), "--sweep", "sw-nope"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "no sweep 'sw-nope'" in err and "none yet" in err


def test_a_prompt_asking_for_more_than_15_is_told_the_limit(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "Generate 20 images of a kite"]) == 2
    err = capsys.readouterr().err
    assert "at most 15" in err and "Set count to 20" not in err


def test_ctrl_c_during_the_demo_leaves_nothing_in_flight(tmp_path: Path) -> None:
    proc = cli(tmp_path, "demo")
    deadline = time.monotonic() + 60
    while not (tmp_path / "ledger.sqlite").exists() or "in_progress" not in set(
        seqnb.Ledger(tmp_path / "ledger.sqlite").runs()["status"]
    ):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    status, _, err = finished(proc, 60)
    assert status == 130, err
    ledger = seqnb.Ledger(tmp_path / "ledger.sqlite")
    assert not set(ledger.runs()["status"]) & {"created", "submitting", "in_queue", "in_progress"}
    assert ledger.spend()["in_flight"].sum() == 0 and "will finish and be charged" not in err


@pytest.mark.parametrize(
    ("command", "words"),
    [
        ("run", "their URLs on RunComfy"),
        ("emulator", "RunComfy's Model API"),
        ("report", "self-contained HTML file"),
        ("export", "full-size PNGs (with their provenance) and a CSV"),
    ],
)
def test_each_command_keeps_the_case_of_its_names(capsys: pytest.CaptureFixture[str], command: str, words: str) -> None:
    with pytest.raises(SystemExit):
        main([command, "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert words in out, out


@pytest.mark.seqnb_emulator(queue_wait=60)
@pytest.mark.parametrize("by", ["model", "sweep"])
def test_ledger_prints_no_nan(capsys: pytest.CaptureFixture[str], seqnb_client: seqnb.Client, by: str) -> None:
    request = seqnb.Request("seedream-4.5", "Generate 2 images of a heron", count=2, seed=3)
    run = seqnb_client.submit(request).accepted(20)
    assert run.status == "in_queue"  # no queue or run time yet, no images, outside any sweep
    assert seqnb_client.ledger is not None
    assert main(["ledger", "--path", str(seqnb_client.ledger.location), "--by", by]) == 0
    tables = capsys.readouterr().out.split("\n", 1)[1]  # below the ledger's path
    assert "NaN" not in tables and "nan" not in tables and "<NA>" not in tables, tables
    (row,) = [line for line in tables.splitlines() if line.startswith(run.id)]
    assert row.split()[-6:] == ["–/2", "in_queue", "–", "–", "USD", "0.08"]
