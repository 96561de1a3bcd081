"""The README's Python examples run as written, against the embedded emulator."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


def python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, re.S)


@pytest.mark.slow
def test_the_readme_examples_run_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One notebook cell per block, as the README says, in a real kernel: no error, and each cell shows something."""
    from tests.notebook_cells import run_offline

    blocks = python_blocks((ROOT / "README.md").read_text())
    assert len(blocks) >= 7  # the Studio, the set-up, the five examples
    nb = run_offline(blocks, tmp_path, monkeypatch)
    errors = [o for c in nb.cells for o in c.outputs if o.output_type == "error"]
    assert not errors, errors[0]["evalue"] if errors else ""
    shown = [[o for o in c.outputs if o.output_type in ("execute_result", "display_data")] for c in nb.cells]
    assert all(shown), [b.splitlines()[0] for b, s in zip(blocks, shown, strict=True) if not s]
    setup = next(i for i, b in enumerate(blocks) if b.rstrip().endswith("client  # says which service you talk to"))
    assert "offline emulator" in shown[setup][-1]["data"]["text/plain"]
    stderr = "".join(o.get("text", "") for c in nb.cells for o in c.outputs if o.get("name") == "stderr")
    assert "Task was destroyed" not in stderr


def test_ci_runs_the_readmes_test_command_verbatim() -> None:
    readme = (ROOT / "README.md").read_text()
    command = re.search(r"# the tests .*\n(.+)\n", readme)
    assert command, "the README lost its test command"
    assert command.group(1).strip() in (ROOT / ".ci" / "run").read_text().splitlines()


def test_the_readmes_doctor_sample_has_the_checks_doctor_makes_and_the_current_schema(tmp_path: Path) -> None:
    import subprocess
    import sys

    from seqnb.ledger.schema import SCHEMA_VERSION

    readme = (ROOT / "README.md").read_text()
    sample = re.search(r"\$ seqnb doctor\n(.+?)\nresult:", readme, re.S)
    assert sample, "the README lost its seqnb doctor sample"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNCOMFY_")}
    env.update(SEQNB_LEDGER=str(tmp_path / "l.sqlite"), RUNCOMFY_CONFIG_DIR=str(tmp_path / "no-login"))
    done = subprocess.run(
        [sys.executable, "-m", "seqnb.cli", "doctor"], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr

    def checks(text: str) -> list[str]:
        return re.findall(r"^(?:ok|info|warn|fail)\s+(\S+(?: \S+)?)\s{2,}", text, re.M)

    assert checks(sample.group(1)) == checks(done.stdout)
    assert f"schema {SCHEMA_VERSION}" in sample.group(1)
