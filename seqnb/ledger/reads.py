"""The ledger's reads: runs, counts, sessions, images, lineage, comparisons, spend and exports, each a bounded query.

A mixin of ``Ledger`` (``seqnb.ledger.facade``): every read first writes what this process's recorders have not
written yet. A page of runs picks its ids by index, then reads only those rows; ``spend`` is one GROUP BY over the
values its rules read, weighed in ``frames.spend``, so the SQL can never read an odd value differently from it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from ..errors import SeqnbError, SettingInvalid
from .image_rows import ImageRows
from .marks import RunMarks, current_marks, reader
from .schema import SELECT_RUNS, runs_filter
from .sessions import SessionKeeper
from .stores import Store
from .stores.base import chunks

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["LedgerReads", "SweepFacts"]


@dataclass
class SweepFacts:
    """One sweep as a picker names it: ``runs`` made from ``started`` (epoch seconds), its distinct ``prompts``, and
    how many values each other axis takes (``varies``: ``{"seed": 4, "model": 2, ...}``)."""

    id: str
    runs: int
    started: float
    prompts: list[str]
    varies: dict[str, int]


class LedgerReads:
    """The read methods of ``Ledger`` (and the type of what ``seqnb.ledger.rankings`` reads, below the ``Ledger`` that
    imports it): what they need is its ``store`` and ``location``, its ``keeper`` (the recorders to settle) and its
    ``image_rows`` (settled too)."""

    store: Store
    location: str
    keeper: SessionKeeper
    image_rows: ImageRows

    def marks_of(self, run_ids: Iterable[str], *, by: str | None = None) -> dict[str, RunMarks]:
        """Each run's marks as they stand (the latest of each by id), yours or ``by``'s, without pandas: for the views."""
        return current_marks(self.store, list(run_ids), reader(by))

    def settle(self) -> None:
        """Write now what this process's sessions and gallery have not written yet (every read does this first)."""
        for recorder in self.keeper.recorders:
            recorder.flush()
        self.image_rows.flush()

    def _query(self, sql: str, args: Sequence[Any] = ()) -> tuple[list[tuple[Any, ...]], list[str]]:
        self.settle()
        with self.store.guard("read"):
            return self.store.fetch(sql, args)

    def runs(
        self,
        *,
        model: str | Sequence[str] | None = None,
        status: str | Sequence[str] | None = None,
        sweep: str | None = None,
        text: str | None = None,
        since: Any = None,
        until: Any = None,
        ids: Sequence[str] | None = None,
        by: str | Sequence[str] | None = None,
        rating_at_least: int | None = None,
        verdict: str | None = None,
        tag: str | None = None,
        marks_by: str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> pd.DataFrame:
        """One row per run, newest first, with proper dtypes; filters combine with AND; ``limit``/``offset`` page.

        Each row says who made the run and where (``user``, ``host``, ``kernel``, ``session``)
        and which session watches it now (``owner``). ``by`` keeps the runs of a user
        (``"alice"``), of a user on a host (``"alice@hub-3"``) or of one session (``"se-..."``);
        give a list for several. The marks as they stand (``rating``; ``frame_ratings`` as ``"1:5 3:4"``,
        frames numbered from 1 as the views show them; ``verdict``, ``tags``, ``comment``) and their filters
        (``rating_at_least=4``, ``verdict="picked"``, ``tag="hero"``) are the current user's, or ``marks_by``'s
        (a name, or ``"*"`` for the latest of anyone's). ``label`` says what tells each run apart from the runs
        around it (``seqnb.model.labels``).
        """
        from .frames import frame_of, with_marks

        where, args = runs_filter(
            self.store.like,
            self.store.page(limit, offset),
            model=model,
            status=status,
            sweep=sweep,
            text=text,
            since=since,
            until=until,
            ids=ids,
            by=by,
            rating_at_least=rating_at_least,
            verdict=verdict,
            tag=tag,
            marks_by=marks_by,
        )
        sql = SELECT_RUNS + where + " ORDER BY runs.created_at DESC"
        frame = frame_of(*self._query(sql, args))
        some = [str(i) for i in frame["id"]] if len(frame) <= 500 else None  # a page: only its runs' marks
        return with_marks(frame, current_marks(self.store, some, reader(marks_by)))

    def run_ids(self, *, limit: int | None = None, **filters: Any) -> list[str]:
        """The ids of the runs that match the filters of ``runs``, newest first, read by index (no rows loaded)."""
        where, args = runs_filter(self.store.like, **filters)
        page = self.store.page(limit, 0)
        rows, _ = self._query(f"SELECT runs.id FROM runs{where} ORDER BY runs.created_at DESC{page}", args)
        return [str(r[0]) for r in rows]

    def count(self, **filters: Any) -> int:
        """How many runs match the filters of ``runs`` (one query, no rows loaded)."""
        where, args = runs_filter(self.store.like, **filters)
        rows, _ = self._query("SELECT COUNT(*) FROM runs" + where, args)
        return int(rows[0][0])

    def sweeps(self) -> list[str]:
        """The sweep ids in the ledger, newest first."""
        rows, _ = self._query(
            "SELECT sweep_id FROM runs WHERE sweep_id IS NOT NULL GROUP BY sweep_id ORDER BY MAX(created_at) DESC"
        )
        return [r[0] for r in rows]

    def recent_sweeps(self, most: int = 200, within: int = 20_000) -> list[str]:
        """The newest ``most`` sweep ids among the latest ``within`` runs of sweeps, newest first: read by index, however large
        the ledger (what the Ledger tab offers; ``sweeps()`` lists them all)."""
        rows, _ = self._query(
            "SELECT sweep_id FROM runs WHERE sweep_id IS NOT NULL ORDER BY created_at DESC" + self.store.page(within, 0)
        )
        return list(dict.fromkeys(r[0] for r in rows))[:most]

    def sweep_facts(self, sweep_ids: Sequence[str]) -> dict[str, SweepFacts]:
        """What names each sweep in a picker (``seqnb.model.labels.sweep_label``), in two grouped queries: when it
        started, its runs, its distinct prompts (oldest first) and how many models, seeds, sizes and counts it spans."""
        facts: dict[str, SweepFacts] = {}
        for chunk in chunks(sweep_ids):
            marks = ", ".join("?" * len(chunk))
            rows, _ = self._query(
                "SELECT sweep_id, COUNT(*), MIN(created_at), COUNT(DISTINCT model), COUNT(DISTINCT seed), "
                f"COUNT(DISTINCT size), COUNT(DISTINCT requested) FROM runs WHERE sweep_id IN ({marks}) "
                "GROUP BY sweep_id",
                chunk,
            )
            for sweep, runs, started, models, seeds, sizes, counts in rows:
                varies = {"seed": int(seeds), "model": int(models), "size": int(sizes), "count": int(counts)}
                facts[sweep] = SweepFacts(sweep, int(runs), float(started or 0), [], varies)
            prompts, _ = self._query(
                f"SELECT sweep_id, prompt FROM runs WHERE sweep_id IN ({marks}) "
                "GROUP BY sweep_id, prompt ORDER BY MIN(created_at)",
                chunk,
            )
            for sweep, prompt in prompts:
                facts[sweep].prompts.append(str(prompt or ""))
        return facts

    def sessions(self) -> pd.DataFrame:
        """Every session that wrote to this ledger (user, host, pid, kernel, times), with ``live`` now."""
        from .frames import sessions_frame

        live = self.keeper.live()
        rows, columns = self._query(
            'SELECT id, username AS "user", host, pid, kernel, started_at, heartbeat_at, ended_at FROM sessions '
            "ORDER BY started_at DESC"
        )
        return sessions_frame(rows, columns, live)

    def images(self, run_id: str | None = None) -> pd.DataFrame:
        """One row per image (in frame order), for one run or all."""
        from .frames import images_frame

        sql = "SELECT * FROM images" + (" WHERE run_id = ?" if run_id else "") + " ORDER BY run_id, idx"
        return images_frame(*self._query(sql, (run_id,) if run_id else ()))

    def lineage(self, run_id: str) -> pd.DataFrame:
        """A run's parents up the chain and children down (reruns, promotes) as ``runs()`` rows with ``generation``
        (-1 the parent, 0 the run, 1 its children...), oldest first."""
        generations = _family(self.store, run_id)
        frame = self.runs(ids=list(generations))
        frame.insert(1, "generation", frame["id"].map(generations).astype("int64"))
        return frame.sort_values(["generation", "created_at"], kind="stable").reset_index(drop=True)

    def compare(self, runs: Any) -> pd.DataFrame:
        """Runs side by side: only the parameters that differ between them, then the outcomes."""
        from .frames import compare

        return compare(self._select(runs))

    def spend(
        self,
        by: str | Sequence[str] = "model",
        *,
        who: str | Sequence[str] | None = None,
        actual: bool = False,
        **filters: Any,
    ) -> pd.DataFrame:
        """Spend of everyone, grouped by model, day, sweep, status, currency, backend, user or host.

        What the service charged where it said so (and it is believed), else the estimate: ``charged`` (ended runs
        on RunComfy), ``simulated`` (the same on seqnb's emulator: nothing charged), ``cost_known`` (runs whose
        charge was said), ``in_flight`` (estimates of runs not yet ended), ``in_doubt`` (submits that may have
        reached the service). ``actual=True``: the estimate of completed runs against the charge, over the runs
        whose charge is known, with the ``difference`` and the runs ``flagged`` (more than a cent off). ``who``
        keeps some people's runs (as ``runs(by=...)``); the other filters are those of ``runs``.
        """
        from .frames import spend, totals_frame

        page = self.store.page(filters.pop("limit", None), filters.pop("offset", 0))
        where, args = runs_filter(self.store.like, page, by=who, **filters)
        keys = [by] if isinstance(by, str) else list(by)
        exprs: dict[str, str] = {}  # each column read by the name frames.spend reads it by (it refuses unknown keys)
        for key in keys:
            if key == "day":
                exprs["created_at"] = self.store.day
            elif key in _KEYS:
                exprs[_NAMES.get(key, key)] = _KEYS[key]
        for column in _READ:
            exprs[column] = f"runs.{column}"
        join = " LEFT JOIN sessions s ON s.id = runs.session" if {"user", "host"} & set(keys) else ""
        select = ", ".join(f'{expr} AS "{name}"' for name, expr in exprs.items())
        rows, _ = self._query(
            f"SELECT {select}, COUNT(*) AS n FROM runs{join}{where} GROUP BY {', '.join(exprs.values())}", args
        )
        return spend(totals_frame(rows, [*exprs, "n"]), by, actual, weights="n")

    def export(self, path: str | os.PathLike[str], **filters: Any) -> Path:
        """Write the runs (``filters`` as for ``runs``) to CSV, JSON or Parquet, chosen by the file's extension."""
        from .frames import export

        return export(self.runs(**filters), path)

    def report(self, *args: Any, **kw: Any) -> NoReturn:
        """Moved: ``client.report(client.ledger.runs(...), path)`` (the images layer draws it, above the ledger)."""
        _moved("report")

    def export_images(self, *args: Any, **kw: Any) -> NoReturn:
        """Moved: ``client.export_images(client.ledger.runs(...), directory)``."""
        _moved("export_images")

    def _select(self, runs: Any, reread: bool = False) -> pd.DataFrame:
        """The runs asked for: a sweep id (else a run id), a frame of ``runs()`` (as given, unless ``reread``: then
        its ``id`` or ``run_id`` column), a ``Sweep``, runs or run ids."""
        if isinstance(runs, str):
            frame = self.runs(sweep=runs)
            return frame if not frame.empty else self.runs(ids=[runs])
        if hasattr(runs, "columns"):
            given: pd.DataFrame = runs
            return self.runs(ids=[str(i) for i in given["id" if "id" in given else "run_id"]]) if reread else given
        if hasattr(runs, "runs") and not callable(runs.runs):  # a Sweep
            runs = runs.runs
        return self.runs(ids=[r if isinstance(r, str) else r.id for r in runs])


def _family(store: Store, run_id: str) -> dict[str, int]:
    """Each run of ``run_id``'s lineage with its generation: -1 its parent, -2 the parent's parent, 0 itself, 1 its children..."""
    with store.guard(f"read the lineage of run {run_id}"):
        found = store.execute("SELECT parent_id FROM runs WHERE id=?", (run_id,)).fetchall()
        if not found:
            raise SettingInvalid(f"run_id={run_id!r}: no such run in ledger {store.location}; ledger.runs() lists them")
        generations = {run_id: 0}
        parent, up = found[0][0], -1
        while parent is not None and parent not in generations:  # a cycle (written by hand) ends the walk
            generations[parent] = up
            rows = store.execute("SELECT parent_id FROM runs WHERE id=?", (parent,)).fetchall()
            parent, up = (rows[0][0] if rows else None), up - 1
        level, down = [run_id], 1
        while level:
            children: list[str] = []
            for chunk in chunks(level):
                rows = store.execute(
                    f"SELECT id FROM runs WHERE parent_id IN ({', '.join('?' * len(chunk))})", chunk
                ).fetchall()
                children += [r[0] for r in rows if r[0] not in generations]
            for child in children:
                generations[child] = down
            level, down = children, down + 1
    return generations


_KEYS = {"model": "runs.model", "sweep": "runs.sweep_id", "user": "s.username", "host": "s.host"}
_READ = ("status", "backend", "currency", "est_cost", "cost", "cost_differs", "requested")  # runs_spend's order
_NAMES = {"sweep": "sweep_id", "day": "created_at"}


def _moved(what: str) -> NoReturn:
    """``ledger.report`` and ``ledger.export_images`` moved to the client: say where, with the call to write."""
    raise SeqnbError(
        f"ledger.{what}(...) moved to the client: client.{what}(client.ledger.runs(...filters...), path), e.g. "
        f'client.{what}(client.ledger.runs(verdict="picked"), "picked{".html" if what == "report" else ""}"); '
        f"or `seqnb {what.split('_')[0]}` on the command line"
    )
