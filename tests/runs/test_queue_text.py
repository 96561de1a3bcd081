"""The queue position reads the same everywhere: the jobs ahead, as the service counts them."""

from __future__ import annotations

import time

import seqnb
from seqnb.runs.run import RunCore
from seqnb.testing import emulator


def test_one_wording_for_the_queue_position() -> None:
    run = RunCore(seqnb.Request("seedream-4.5", "Generate 1 image of a fox", count=1, seed=1))
    run.transition("submitting")
    run.transition("in_queue", queue_position=0)
    assert run.queue_text == "next" and "next" in run.summary()
    run.transition("in_queue", queue_position=3)
    assert run.queue_text == "3 ahead" and run.summary().endswith("3 ahead")
    run.transition("in_progress")
    assert run.queue_text == "" and "ahead" not in run.summary()


def test_the_emulator_counts_the_jobs_ahead() -> None:
    with emulator(workers=1, queue_wait=0.0, service_time=30) as emu:
        client = seqnb.Client(emu.token, emu.base_url)
        runs = [
            client.submit(seqnb.Request("seedream-4.5", "Generate 1 image of a fox", count=1, seed=i)) for i in range(3)
        ]
        end = time.monotonic() + 20
        # one job running; of the two queued (in whatever order they arrived), one is next, one has one ahead
        while sorted(r.queue_text for r in runs) != ["", "1 ahead", "next"]:
            assert time.monotonic() < end, [r.summary() for r in runs]
            time.sleep(0.05)
            for run in runs:
                client.refresh(run)
        client.cancel_queued()
        client.close()
