"""The commands that submit runs: ``run`` (one request) and ``demo`` (a sweep on the embedded emulator)."""

from __future__ import annotations

import argparse
import contextlib
import sys
from typing import Any

from .reports import runs_table, table_text

__all__ = ["DEFAULT_OUT", "DEMO_PROMPTS", "LOST_NOTE", "cmd_demo", "cmd_run"]


def _progress(runs: list[Any], label: str, timeout: float | None = None, file: Any = None) -> None:
    """A tqdm bar over finished runs, its postfix counting the states (and where a lone run stands in the
    queue), until every run has ended; ``seqnb.WaitTimeout`` after ``timeout`` seconds (the runs go on)."""
    import time

    from tqdm import tqdm

    from ..errors import WaitTimeout

    deadline = None if timeout is None else time.monotonic() + timeout
    # disable=None: no bar into a pipe or a log (a redraw every 0.1 s), only the closing line below
    with tqdm(total=len(runs), desc=label, unit="run", leave=True, file=file, disable=None) as bar:
        while True:
            done = sum(r.done for r in runs)
            bar.n = done
            states: dict[str, int] = {}
            for r in runs:
                states[r.status] = states.get(r.status, 0) + 1
            postfix = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in sorted(states.items()))
            if len(runs) == 1 and runs[0].queue_text:
                postfix += f" ({runs[0].queue_text})"
            bar.set_postfix_str(postfix, refresh=False)
            bar.refresh()
            if done == len(runs):
                if bar.disable:
                    print(f"{label}: {postfix}", file=file or sys.stderr)
                return
            if deadline is not None and time.monotonic() > deadline:
                raise WaitTimeout(f"stopped watching after {timeout} s")
            time.sleep(0.1)


DEFAULT_OUT = "seqnb-images"
"""Where ``seqnb run`` saves the images of the embedded emulator, whose URLs end with the command."""

LOST_NOTE = "the embedded emulator ended with the seqnb command that ran it (Ctrl-C); nothing was charged"


def cmd_run(args: argparse.Namespace) -> int:
    """Submit one request, show its progress, then save the images (or print their URLs)."""

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
    print(f"estimated cost: {cost} ({request.count} image{'s' * (request.count != 1)})", file=sys.stderr)
    run = client.submit(request)
    try:
        _progress([run], f"run {run.id}", args.timeout, file=sys.stderr)
    except KeyboardInterrupt:
        _interrupted(client, [run], embedded)
        return 130
    except WaitTimeout:
        print(f"stopped watching after {args.timeout} s; request {run.request_id} was NOT cancelled", file=sys.stderr)
        return 3
    print(file=sys.stderr)
    if run.status != "completed":
        print(f"run {run.id} {run.status}: {run.error or ''}", file=sys.stderr)
        return 1
    if run.short:
        print(f"note: the model returned {len(run.images)} of {run.requested} images", file=sys.stderr)
    client.settle(timeout=120)
    out = args.out or (DEFAULT_OUT if embedded else None)
    if out is None:
        for url in run.images:
            print(url)
        print(
            "(the service keeps these URLs for a while; --out DIR saves the images with their provenance)",
            file=sys.stderr,
        )
    else:
        _save(client, run, out, said=args.out is not None)
    with contextlib.redirect_stdout(sys.stderr):
        _where_next(client)
    return 0


def _save(client: Any, run: Any, out: str, *, said: bool) -> None:
    """Save the run's frames into ``out`` and print one file per line; say why when the folder was not asked for."""
    paths = client.gallery.save(run, out)
    for path in paths:
        print(path)
    if len(paths) < len(run.images):
        print(f"note: {len(run.images) - len(paths)} image(s) could not be downloaded", file=sys.stderr)
    if not said:
        print(
            f"saved into {out}/ (the embedded emulator's image URLs end with this command; --out DIR to choose)",
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
            client._run(_lose(run.aio))
            print(f"run {run.id} stopped: {LOST_NOTE}", file=sys.stderr)
        else:
            print(
                f"request {run.request_id} is already running: the service cannot cancel it; it will finish and be "
                f"charged (`seqnb.connect().resume()` in Python watches it to its end)",
                file=sys.stderr,
            )
    client.close()


async def _lose(run: Any) -> None:
    if not run.done:
        run.transition("lost", error=LOST_NOTE)


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
    print("next:    python3 -m pip install -e '.[notebooks]' && jupyter lab, then `import seqnb; seqnb.Studio()`")
    print("         (or open notebooks/quickstart.ipynb);")
    print("         with a RunComfy token (RUNCOMFY_TOKEN=... or `runcomfy login`), the same calls run on RunComfy")
