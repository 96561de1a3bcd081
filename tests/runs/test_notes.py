"""A run's notes are kept by who says them, so one source taking its note back never erases another's."""

from __future__ import annotations

import seqnb
from seqnb.runs.run import RunCore


def _run() -> RunCore:
    return RunCore(seqnb.Request("seedream-4.5", "Generate 3 images of a kite", seed=1))


def test_each_source_takes_back_only_its_own_note() -> None:
    run = _run()
    run.say("ledger", "NOT YET IN THE LEDGER (disk full); seqnb retries on every change")
    run.say("cancel", "already running: it cannot be cancelled")
    run.say("poll", "status call: HTTP 502")
    assert run.note == (
        "status call: HTTP 502; already running: it cannot be cancelled; "
        "NOT YET IN THE LEDGER (disk full); seqnb retries on every change"
    )
    run.say("ledger", "")  # written at last
    run.say("poll", "")  # the service answers again
    assert run.note == "already running: it cannot be cancelled" and set(run.notes) == {"cancel"}


def test_a_refused_transition_writes_no_note() -> None:
    run = _run()
    assert run.transition("submitting") and run.transition("in_queue") and run.transition("completed")
    assert not run.transition("failed", notes={"result": "late"}, error="late")
    assert run.note == "" and run.error is None
    run.transition("completed", notes={"result": "the model returned 2 of 3 images (you pay for 3)"})
    assert run.note == "the model returned 2 of 3 images (you pay for 3)"
