"""The README's Python examples run as written, against the embedded emulator."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


def python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, re.S)


@pytest.mark.slow
def test_the_readme_examples_run_as_written(tmp_path: Path) -> None:
    blocks = python_blocks((ROOT / "README.md").read_text())
    assert len(blocks) >= 2
    script = "\n".join(blocks)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNCOMFY_")}
    env.update(SEQNB_LEDGER=str(tmp_path / "ledger.sqlite"), SEQNB_CACHE=str(tmp_path / "cache"))
    env["RUNCOMFY_CONFIG_DIR"] = str(tmp_path / "no-login")
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Task was destroyed" not in done.stderr


def test_ci_runs_the_readmes_test_command_verbatim() -> None:
    readme = (ROOT / "README.md").read_text()
    command = re.search(r"# the tests .*\n(.+)\n", readme)
    assert command, "the README lost its test command"
    assert command.group(1).strip() in (ROOT / ".ci" / "run").read_text().splitlines()
