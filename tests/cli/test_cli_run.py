"""`seqnb run` and `seqnb demo` as a user runs them: real processes, the emulator over loopback."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import pytest

import seqnb
from seqnb.emulator import EmulatorServer


def seqnb_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if k != "RUNCOMFY_TOKEN"}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "seqnb.cli", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        check=False,
    )


@pytest.mark.slow
def test_demo_runs_a_sweep_and_prints_the_table() -> None:
    proc = seqnb_cli("demo")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "offline emulator" in out and "12 runs" in out
    assert "12/12 completed" in out
    table = [line for line in out.splitlines() if "seedream-4." in line and "completed" in line]
    assert len(table) == 12


def test_run_prints_the_image_urls(emu: EmulatorServer) -> None:
    proc = seqnb_cli(
        "run",
        "Generate 2 images of a kite over dunes",
        "--model",
        "seedream-4.0",
        "--count",
        "2",
        "--seed",
        "4",
        "--base-url",
        emu.base_url,
        env={"RUNCOMFY_TOKEN": emu.token},
    )
    assert proc.returncode == 0, proc.stderr
    urls = proc.stdout.split()
    assert len(urls) == 2 and all(httpx.get(u).status_code == 200 for u in urls)
    assert "estimated cost: USD 0.06" in proc.stderr and "completed" in proc.stderr  # the tqdm bar's last state
    assert emu.token not in proc.stdout + proc.stderr


def test_run_refuses_an_invalid_request_before_sending(emu: EmulatorServer) -> None:
    proc = seqnb_cli(
        "run",
        "Generate 4 images of a kite",
        "--count",
        "2",
        "--base-url",
        emu.base_url,
        env={"RUNCOMFY_TOKEN": emu.token},
    )
    assert proc.returncode == 2 and "prompt asks for 4" in proc.stderr
    assert emu.counters.submits == 0


def test_run_timeout_stops_watching_without_cancelling() -> None:
    from seqnb.testing import emulator

    with emulator(queue_wait=30) as emu:
        proc = seqnb_cli(
            "run",
            "Generate 2 images of a kite",
            "--timeout",
            "1",
            "--base-url",
            emu.base_url,
            env={"RUNCOMFY_TOKEN": emu.token},
        )
        assert proc.returncode == 3, proc.stderr
        assert emu.counters.submits == 1 and emu.counters.cancels == 0
        (run,) = seqnb.Ledger().runs().itertuples()
        assert run.status == "in_queue"  # left running on the service, as the user is told
        said = proc.stderr.splitlines()[-1]
        assert f"run {run.id} is in queue on the service (request {run.request_id}) and was NOT cancelled" in said
        assert "charged if it completes" in said and "seqnb ledger" in said
