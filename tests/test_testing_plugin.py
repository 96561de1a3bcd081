"""seqnb.testing ships to users: a pytest plugin (entry point pytest11) with emulator, ledger and client fixtures."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

USER_TESTS = """
import time
import pytest
import seqnb


def test_a_user_sweep(seqnb_client, seqnb_ledger, seqnb_emulator):
    runs = seqnb_client.sweep(prompts=["Generate 2 images of a fox"], seeds=[1, 2], quiet=True)
    seqnb_client.wait_all(runs, timeout=30)
    seqnb_client.settle(timeout=30)
    assert seqnb_client.ledger is seqnb_ledger
    assert seqnb_ledger.count(status="completed") == 2
    assert seqnb_emulator.counters.submits == 2


@pytest.mark.seqnb_emulator(queue_wait=30)
def test_the_marker_sets_the_pacing(seqnb_client):
    run = seqnb_client.submit(seqnb.Request("seedream-4.5", "Generate 2 images of a fox", count=2, seed=1))
    time.sleep(0.5)
    assert run.status == "in_queue"  # 30 s in the queue, as the marker asked
    assert run.cancel() == "cancelled"
"""


@pytest.mark.slow
def test_a_users_own_tests_get_the_fixtures(tmp_path: Path) -> None:
    (tmp_path / "test_user.py").write_text(textwrap.dedent(USER_TESTS))
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout
