from __future__ import annotations

import json
import subprocess
import sys

import pytest

from seqnb.cli import main


def test_valid_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            [
                "validate",
                "--model",
                "seedream-4.5",
                "--json",
                json.dumps({"prompt": "Generate 2 images of a", "sequential_image_generation_options": 2}),
            ]
        )
        == 0
    )
    assert "ok: valid for seedream-4.5 (bytedance/seedream-4-5/sequential)" in capsys.readouterr().out


def test_invalid_exits_2_with_one_line_per_problem(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["validate", "-m", "seedream-4.0", "-j", '{"prompt": "a", "image_size": "huge", "seed": "1"}'])
    out = capsys.readouterr().out.strip().splitlines()
    assert code == 2
    assert len(out) == 3  # prompt given for text, bad image_size, seed type
    assert "prompt field is 'text', not 'prompt'" in out[0]
    assert all(line.startswith("error: ") for line in out)


def test_bad_json_and_unknown_model(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "-m", "seedream-4.0", "-j", "{nope"]) == 2
    assert "not readable JSON" in capsys.readouterr().err
    assert main(["validate", "-m", "seedream-9", "-j", "{}"]) == 2
    assert "unknown model" in capsys.readouterr().err


def test_installed_entry_point() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "seqnb.cli", "validate", "-m", "4.0", "-j", '{"text": "Generate 3 images of a"}'],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
