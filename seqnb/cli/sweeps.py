"""The commands that submit runs: ``run`` (one request) and ``demo`` (a sweep on the embedded emulator)."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from .reports import runs_table, table_text

__all__ = ["DEFAULT_OUT", "DEMO_PROMPTS", "LOST_NOTE", "cmd_demo", "cmd_run"]


def _progress(runs: list[Any], label: str, timeout: float | None = None, file: Any = None) -> None:
    """A tqdm bar over finished runs, its postfix counting the states (or, for a lone run, its state and where it
    stands in the queue), until every run has ended; ``seqnb.WaitTimeout`` after ``timeout`` seconds (the runs go on).
    Into a pipe or a log there is no bar (a redraw every 0.1 s): the command says how its runs ended."""
    import time

    from tqdm import tqdm

    from ..errors import WaitTimeout

    deadline = None if timeout is None else time.monotonic() + timeout
    with tqdm(total=len(runs), desc=label, unit="run", leave=True, file=file, disable=None) as bar:
        while True:
            done = sum(r.done for r in runs)
            bar.n = done
            bar.set_postfix_str(_states(runs), refresh=False)
            bar.refresh()
            if done == len(runs):
                return
            if deadline is not None and time.monotonic() > deadline:
                raise WaitTimeout(f"stopped watching after {timeout:g} s")
            time.sleep(0.1)


def _states(runs: list[Any]) -> str:
    """``in queue (3 ahead)`` for a lone run; ``8 completed, 4 in progress`` for several."""
    if len(runs) == 1:
        lone = runs[0]
        return str(lone.status).replace("_", " ") + (f" ({lone.queue_text})" if lone.queue_text else "")
    states = Counter(str(r.status) for r in runs)
    return ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in sorted(states.items()))


DEFAULT_OUT = "seqnb-images"
"""Where ``seqnb run`` saves the images of the embedded emulator, whose URLs end with the command."""

LOST_NOTE = "the embedded emulator ended with the seqnb command that ran it (Ctrl-C or --timeout); nothing was charged"


def cmd_run(args: argparse.Namespace) -> int:
    """Submit one request, show its progress, then save the images (or print their URLs); the last line on
    stderr says how the run ended and where its images are."""

    from ..errors import WaitTimeout
    from ..model.prompt_count import stated_count
    from ..model.request import Request

    count = args.count if args.count is not None else stated_count(args.prompt)
    request = Request(args.model, args.prompt, count=count, size=args.size, seed=args.seed)
    report = request.validate()
    for problem in report.problems:
        print(problem, file=sys.stderr)
    if not report.ok:
        return 2
    from ..api.backend import EMBEDDED
    from ..session import connect

    cost = request.cost()  # before connecting: a bad price setting fails here, alone
    client = connect(base_url=args.base_url)
    embedded = client.backend.token_source == EMBEDDED
    print(f"backend: {client.backend}", file=sys.stderr)
    print(f"estimated cost: {cost} ({_images(request.count)})", file=sys.stderr)
    run = client.submit(request)
    try:
        _progress([run], f"run {run.id}", args.timeout, file=sys.stderr)
    except KeyboardInterrupt:
        _interrupted(client, [run], embedded)
        return 130
    except WaitTimeout:
        _stopped_watching(client, [run], embedded, args.timeout)
        return 3
    if run.status != "completed":
        print(f"run {run.id} {run.status}: {run.error or 'no reason given'}", file=sys.stderr)
        return 1
    client.settle(timeout=120)
    out = args.out or (DEFAULT_OUT if embedded else None)
    if out is None:
        for url in run.images:
            print(url)
        ended = f"{_images(len(run.images))}, URLs printed above (the service keeps them for a while; --out DIR saves "
        ended += "the images with their provenance)"
    else:
        assert client.gallery is not None  # connect() gives one
        saved = client.gallery.save(run, out)
        for path in saved:
            print(path)
        ended = f"{_images(len(saved))} saved into {out}/"
        if len(saved) < len(run.images):
            ended += f" ({len(run.images) - len(saved)} could not be downloaded)"
        if args.out is None:
            ended += " (the embedded emulator's image URLs end with this command; --out DIR to choose)"
    with contextlib.redirect_stdout(sys.stderr):
        _where_next(client)
    short = f", {len(run.images)} of the {run.requested} asked" if run.short else ""
    print(f"run {run.id} completed in {_took(run)}{short}: {ended}", file=sys.stderr)
    return 0


def _images(n: int) -> str:
    return f"{n} image{'s' * (n != 1)}"


def _took(run: Any) -> str:
    start = run.aio.submitted_at or run.aio.created_at
    return f"{run.aio.finished_at - start:.1f} s" if run.aio.finished_at else "an unknown time"


def _stopped_watching(client: Any, runs: list[Any], embedded: bool, timeout: float) -> None:
    """``--timeout``: nothing is cancelled. On the embedded emulator, which ends with this command, the runs
    still going are lost as with Ctrl-C; on a real service they go on, and the user is told how to find them."""
    if embedded:
        for run in runs:
            if _lose(client, run):
                print(f"stopped watching after {timeout:g} s: run {run.id} lost: {LOST_NOTE}", file=sys.stderr)
        client.close()
        return
    client.close()  # submits in flight are answered first: their request ids are known below
    for run in runs:
        if not run.done:
            print(
                f"stopped watching after {timeout:g} s: run {run.id} is {run.status.replace('_', ' ')} on the "
                f"service (request {run.request_id}) and was NOT cancelled: it goes on and is charged if it "
                "completes; `seqnb ledger` lists it, `seqnb.connect().resume()` in Python watches it to its end",
                file=sys.stderr,
            )


def _interrupted(client: Any, runs: list[Any], embedded: bool) -> None:
    """Ctrl-C: cancel the runs still queued; on the embedded emulator, which ends with us, mark the others lost."""
    outcomes = client.cancel_queued(runs)
    for run in runs:
        if outcomes.get(run.id) == "cancelled":
            print(f"cancelled run {run.id} (request {run.request_id}); nothing is charged for it", file=sys.stderr)
        elif run.done:
            continue
        elif embedded:
            if _lose(client, run):
                print(f"run {run.id} stopped: {LOST_NOTE}", file=sys.stderr)
        else:
            print(
                f"request {run.request_id} is already running: the service cannot cancel it; it will finish and be "
                f"charged (`seqnb.connect().resume()` in Python watches it to its end)",
                file=sys.stderr,
            )
    client.close()


def _lose(client: Any, run: Any) -> bool:
    """Mark a run of the embedded emulator lost (its submit answered first); False when it had ended already."""
    from ..errors import SeqnbError

    async def lose_when_answered(aio: Any) -> bool:
        with contextlib.suppress(SeqnbError):  # a refused or unanswered submit ends the run its own way
            await aio.accepted(timeout=30)
        if aio.done or aio.status in ("created", "submitting"):
            return False
        return bool(aio.transition("lost", error=LOST_NOTE))

    return bool(client._run(lose_when_answered(run.aio)))


DEMO_PROMPTS = [
    "Generate 3 images of a lighthouse keeper's day, dawn to night",
    "Generate 4 images of a paper boat drifting down a rainy street, storyboard",
]


def cmd_demo(args: argparse.Namespace) -> int:
    """A small sweep on the embedded emulator, with progress, ending in a table of the runs from the ledger."""
    from ..emulator import embedded
    from ..session import connect

    emu = embedded()
    client = connect(emu.token, emu.base_url, ledger=args.ledger or True)
    assert client.ledger is not None
    print(f"backend: {client.backend}")
    print(f"ledger:  {client.ledger.location}")
    runs = client.sweep(
        prompts=DEMO_PROMPTS, seeds=[11, 22, 33], models=["seedream-4.0", "seedream-4.5"], budget=args.budget
    )
    try:
        _progress(list(runs), "runs")
    except KeyboardInterrupt:
        _interrupted(client, list(runs), embedded=True)
        return 130
    client.settle(timeout=120)  # the images are downloaded and scored before the table is read
    print()
    print(table_text(runs_table(client.ledger.runs(sweep=runs.id))))
    print(f"\n{sum(r.status == 'completed' for r in runs)}/{len(runs)} completed, estimated {runs.plan.total_text()}")
    _where_next(client)
    return 0


def _where_next(client: Any) -> None:
    """Where the images and the ledger are, and what to try next."""
    if client.gallery is not None:
        print(f"cache:   {client.gallery.cache.directory}")
    if client.ledger is not None:
        print(f"ledger:  {client.ledger.location}  (seqnb ledger --path {client.ledger.location})")
    for n, line in enumerate(next_steps(checkout_of(Path(__file__).resolve().parents[1]), Path.cwd())):
        print(("next:    " if n == 0 else "         ") + line)


def checkout_of(package: Path) -> Path | None:
    """The source checkout the ``seqnb`` package folder ``package`` lives in (an editable install, or a clone on
    ``PYTHONPATH``), or None for an installed wheel, which has no notebooks and no pyproject.toml beside it."""
    root = package.parent
    found = (root / "pyproject.toml").is_file() and (root / QUICKSTART).is_file()
    return root if found else None


QUICKSTART = Path("notebooks", "quickstart.ipynb")
"""The notebook a checkout starts with (not in the wheel)."""


def next_steps(checkout: Path | None, cwd: Path) -> list[str]:
    """What to try after a first run, fit to how seqnb was installed: paths only where they exist."""
    studio = "`import seqnb; seqnb.Studio()`"
    token = "with a RunComfy token (RUNCOMFY_TOKEN=... or `runcomfy login`), the same calls run on RunComfy"
    if checkout is None:
        return [
            f"python3 -m pip install 'seqnb[notebooks]' && jupyter lab, then in a notebook: {studio};",
            token,
        ]
    here = checkout.relative_to(cwd) if checkout.is_relative_to(cwd) else checkout
    notebook = here / QUICKSTART
    return [
        f"python3 -m pip install -e '{here}[notebooks]' && jupyter lab {notebook}",
        f"(or, in any notebook: {studio});",
        token,
    ]
