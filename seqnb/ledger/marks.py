"""Marks: a person's judgement of a run (rating, pick or reject, tags, comment), one ledger row per mark.

A mark is written at once, in its own transaction, to the ``marks`` table, never to the run's row
(so a mark can never lose or stale a run's row). Marks are a log: the current state of a run is
its marks folded in ``id`` order, the latest mark of each slot winning (one slot each for the run's
rating, each frame's rating, the verdict, the comment, and one per tag, which ``tag`` sets and
``untag`` clears). A rating of 0, the verdict ``"none"`` and an empty comment clear their slot.
Each mark says who made it (``by``: the session's user, ``seqnb.ledger.sessions.user_here``), so
on a team ledger each person's marks are their own: reads default to the current user's marks,
``by="alice"`` reads Alice's, ``by="*"`` everyone's (then the latest mark of anyone wins).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import SettingInvalid
from .sessions import user_here
from .stores.base import Store, chunks

__all__ = [
    "EVERYONE",
    "KINDS",
    "VERDICTS",
    "RunMarks",
    "adopt_tags",
    "current_marks",
    "judged_ids",
    "mark_rows",
    "read_marks",
    "reader",
    "write_marks",
]

KINDS = ("rating", "verdict", "tag", "untag", "comment", "score")
VERDICTS = ("picked", "rejected", "none")
EVERYONE = "*"
"""``by=EVERYONE`` reads everyone's marks; the latest mark of anyone wins."""
_COLUMNS = 'id, run_id, frame, kind, value, "by", "at"'
_STARS = "('1', '2', '3', '4', '5')"
"""The values a rating mark may hold (0 clears it). Only these are cast to a number: a teammate's row or another tool's
holding anything else ("lots", "4.5", "9") is no rating, and never breaks a query (PostgreSQL refuses to cast it)."""


@dataclass(frozen=True)
class RunMarks:
    """A run's marks as they stand now (the latest of each, by id order): what the views show."""

    rating: int | None = None
    frame_ratings: dict[int, int] = field(default_factory=dict)
    verdict: str | None = None
    tags: tuple[str, ...] = ()
    comment: str | None = None

    def __bool__(self) -> bool:
        return bool(self.rating or self.frame_ratings or self.verdict or self.tags or self.comment)


def mark_rows(
    *,
    frame: int | None = None,
    rating: int | None = None,
    verdict: str | None = None,
    tags: Iterable[str] = (),
    untag: Iterable[str] = (),
    comment: str | None = None,
) -> list[tuple[int | None, str, str]]:
    """The (frame, kind, value) rows of one ``Ledger.mark`` call, every argument checked first (``SettingInvalid``)."""
    if frame is not None and (not isinstance(frame, int) or isinstance(frame, bool) or frame < 0):
        raise SettingInvalid(f"frame={frame!r}: give the 0-based index of a frame of the series, e.g. frame=0")
    if frame is not None and (verdict is not None or comment is not None or _listed(tags, "tags") or list(untag)):
        raise SettingInvalid(
            "frame= goes with rating= only: a verdict, tags and a comment are for the whole run; drop frame="
        )
    rows: list[tuple[int | None, str, str]] = []
    if rating is not None:
        if not isinstance(rating, int) or isinstance(rating, bool) or not 0 <= rating <= 5:
            raise SettingInvalid(f"rating={rating!r}: give 1 to 5 stars, or 0 to clear the rating")
        rows.append((frame, "rating", str(rating)))
    if verdict is not None:
        if verdict not in VERDICTS:
            raise SettingInvalid(f"verdict={verdict!r}: give 'picked', 'rejected', or 'none' to clear it")
        rows.append((None, "verdict", verdict))
    rows += [(None, "tag", t) for t in _listed(tags, "tags")]
    rows += [(None, "untag", t) for t in _listed(untag, "untag")]
    if comment is not None:
        if not isinstance(comment, str) or len(comment) > 10_000:
            raise SettingInvalid("comment: give text of at most 10,000 characters, or '' to clear the comment")
        rows.append((None, "comment", comment.strip()))
    if not rows:
        raise SettingInvalid("nothing to mark: give rating=, verdict=, tags=, untag= or comment=")
    return rows


def _listed(tags: Iterable[str], name: str) -> list[str]:
    if isinstance(tags, str):
        tags = [tags]
    out = []
    for tag in tags:
        if not isinstance(tag, str) or not tag.strip() or "," in tag or len(tag.strip()) > 64:
            raise SettingInvalid(f"{name}: {tag!r} is not a tag; a tag is 1-64 characters without commas, e.g. 'hero'")
        out.append(tag.strip())
    return out


def writer(by: str | None) -> str:
    """Who a new mark is by: ``by`` if given (a name), else this session's user."""
    if by is None:
        return user_here()
    if not isinstance(by, str) or not by.strip() or by == EVERYONE:
        raise SettingInvalid(f"by={by!r}: a mark is by one person; give a user name, or leave by= out for yours")
    return by.strip()


def reader(by: str | None) -> str | None:
    """Whose marks a read shows: None for everyone's (``by="*"``), else a user name (default: this session's user)."""
    return None if by == EVERYONE else writer(by)


def write_marks(store: Store, run_id: str, rows: Sequence[tuple[int | None, str, str]], by: str) -> None:
    """Write one call's marks in one transaction, after checking the run exists and has the frame marked."""
    with store.guard(f"mark run {run_id}"), store.transaction():
        found = store.execute("SELECT requested, returned FROM runs WHERE id=?", (run_id,)).fetchall()
        if not found:
            raise SettingInvalid(f"run_id={run_id!r}: no such run in ledger {store.location}; ledger.runs() lists them")
        count = found[0][1] if found[0][1] is not None else found[0][0]
        for frame, _, _ in rows:
            if frame is not None and frame >= count:
                raise SettingInvalid(
                    f"frame={frame}: run {run_id} has {count} frame(s); give 0 to {count - 1} (0-based)"
                )
        at = store.now()
        store.executemany(
            'INSERT INTO marks (run_id, frame, kind, value, "by", "at") VALUES (?, ?, ?, ?, ?, ?)',
            [(run_id, frame, kind, value, by, at) for frame, kind, value in rows],
        )


def read_marks(store: Store, run_ids: Iterable[str] | None, who: str | None) -> tuple[list[tuple[Any, ...]], list[str]]:
    """The mark rows (in id order) of some runs (None: all), by one person (None: everyone)."""
    sql = f"SELECT {_COLUMNS} FROM marks WHERE kind IN ({', '.join('?' * len(KINDS))})" + _by(who)
    args = [*KINDS, *([who] if who is not None else [])]
    columns = [c.strip().strip('"') for c in _COLUMNS.split(",")]
    with store.guard("read marks"):
        if run_ids is None:
            rows, _ = store.fetch(sql + " ORDER BY id", args)
            return rows, columns
        rows = []
        for chunk in chunks(list(dict.fromkeys(run_ids))):
            found, _ = store.fetch(sql + f" AND run_id IN ({', '.join('?' * len(chunk))})", [*args, *chunk])
            rows += found
    return sorted(rows, key=lambda r: r[0]), columns


def _by(who: str | None) -> str:
    """The SQL that keeps the marks of ``who`` (all marks for None; its argument is ``who``)."""
    return ' AND "by" = ?' if who is not None else ""


def current_marks(store: Store, run_ids: Sequence[str] | None, who: str | None) -> dict[str, RunMarks]:
    """Each run's marks as they stand, by ``who`` (None: everyone): every one of ``run_ids`` (unmarked ones too), or
    with None every marked run.

    Two queries: each marked run's ``rating``, ``verdict``, ``tags`` and ``comment`` from the latest whole-run mark of
    each slot, one row per run (tags joined by commas by the store's text aggregate, ``Store.concat``, in no order),
    and each frame rating as it stands. Read apart from the runs and mapped onto them (``frames.with_marks``): a join
    would let a planner without statistics on a fresh ``marks`` table rescan it once per run.
    """
    slot = "CASE WHEN kind IN ('tag', 'untag') THEN 'tag:' || value ELSE kind END"
    kinds = "'rating', 'verdict', 'tag', 'untag', 'comment'"
    latest = f"SELECT MAX(id) FROM marks WHERE frame IS NULL AND kind IN ({kinds}){_by(who)} GROUP BY run_id, {slot}"
    state = (
        "SELECT run_id, "
        f"MAX(CASE WHEN kind = 'rating' AND value IN {_STARS} THEN CAST(value AS INTEGER) END) AS rating, "
        "MAX(CASE WHEN kind = 'verdict' AND value <> 'none' THEN value END) AS verdict, "
        f"{store.concat}(CASE WHEN kind = 'tag' THEN value END, ',') AS tags, "
        "MAX(CASE WHEN kind = 'comment' AND value <> '' THEN value END) AS comment "
        f"FROM marks WHERE id IN ({latest})"
    )
    by_frame = f"SELECT MAX(id) FROM marks WHERE kind = 'rating' AND frame IS NOT NULL{_by(who)} GROUP BY run_id, frame"
    rated = f"SELECT run_id, frame, value FROM marks WHERE id IN ({by_frame})"
    found: dict[str, dict[str, Any]] = {}
    with store.guard("read marks"):
        for some in [None] if run_ids is None else chunks(list(dict.fromkeys(run_ids))):
            among = "" if some is None else f" AND run_id IN ({', '.join('?' * len(some))})"
            args = [*([who] if who is not None else []), *(some or [])]
            rows, _ = store.fetch(state + among + " GROUP BY run_id", args)
            for run_id, rating, verdict, tags, comment in rows:
                tagged = tuple(sorted(tags.split(","))) if tags else ()
                found[str(run_id)] = {"rating": rating or None, "verdict": verdict, "tags": tagged, "comment": comment}
            rows, _ = store.fetch(rated + among + " ORDER BY run_id, frame", args)
            for run_id, index, stars in rows:  # in frame order
                if str(stars).isdigit() and 0 < int(stars) <= 5:  # 0 clears; a value another tool wrote is not a rating
                    found.setdefault(str(run_id), {}).setdefault("frame_ratings", {})[int(index)] = int(stars)
    ids = found if run_ids is None else run_ids
    return {run_id: RunMarks(**found.get(run_id, {})) for run_id in ids}


def judged_ids(
    who: str | None, *, rating_at_least: int | None = None, verdict: str | None = None, tag: str | None = None
) -> tuple[list[str], list[Any]]:
    """``runs.id IN (...)`` conditions (and their arguments) for the mark filters of ``Ledger.runs``.

    Each keeps the runs whose latest mark of a slot matches: a mark with no later one of the same
    slot (``NOT EXISTS``), so every step is an index probe on ``marks(run_id, kind)`` and the plan
    stays good on a fresh table no planner has statistics for.
    """
    where: list[str] = []
    args: list[Any] = []
    if rating_at_least is not None:
        if not isinstance(rating_at_least, int) or isinstance(rating_at_least, bool) or not 1 <= rating_at_least <= 5:
            raise SettingInvalid(f"rating_at_least={rating_at_least!r}: give 1 to 5 stars")
        stars = f"CASE WHEN m.value IN {_STARS} THEN CAST(m.value AS INTEGER) ELSE 0 END >= ?"
        where.append(_current(who, "'rating'", stars, rating_at_least, args))
    if verdict is not None:
        if verdict not in VERDICTS:
            raise SettingInvalid(f"verdict={verdict!r}: give 'picked', 'rejected', or 'none' (runs with neither)")
        if verdict == "none":
            where.append("NOT " + _current(who, "'verdict'", "m.value <> ?", "none", args))
        else:
            where.append(_current(who, "'verdict'", "m.value = ?", verdict, args))
    if tag is not None:
        (name,) = _listed([tag], "tag")
        where.append(_current(who, "'tag', 'untag'", "m.kind = 'tag' AND m.value = ?", name, args))
    return where, args


def _current(who: str | None, kinds: str, test: str, value: Any, args: list[Any]) -> str:
    """``runs.id IN`` the runs whose latest whole-run mark among ``kinds`` (by ``who``) passes ``test``."""
    mine = ' AND m."by" = ?' if who is not None else ""
    later_mine = ' AND n."by" = m."by"' if who is not None else ""  # a later mark by someone else does not count
    same_tag = " AND n.value = m.value" if "'tag'" in kinds else ""  # each tag is a slot of its own
    args += [*([who] if who is not None else []), value]
    return (
        f"runs.id IN (SELECT m.run_id FROM marks m WHERE m.kind IN ({kinds}) AND m.frame IS NULL{mine} AND {test} "
        f"AND NOT EXISTS (SELECT 1 FROM marks n WHERE n.run_id = m.run_id AND n.kind IN ({kinds}) "
        f"AND n.frame IS NULL{same_tag}{later_mine} AND n.id > m.id))"
    )


def adopt_tags(store: Store) -> int:
    """Turn the tags runs held before marks (their old ``tags`` column) into tag marks by each run's maker; a count."""
    rows, _ = store.fetch(
        "SELECT runs.id, runs.tags, s.username, runs.updated_at FROM runs LEFT JOIN sessions s ON s.id = runs.session "
        "WHERE runs.tags IS NOT NULL AND runs.tags <> '[]' ORDER BY runs.created_at"
    )
    marks = []
    for run_id, tags, user, at in rows:
        try:
            names = json.loads(tags)
        except ValueError:
            continue  # written by another tool: left where it is
        if isinstance(names, list):
            marks += [(run_id, "tag", str(t), user or user_here(), at) for t in names if str(t).strip()]
    store.executemany('INSERT INTO marks (run_id, kind, value, "by", "at") VALUES (?, ?, ?, ?, ?)', marks)
    return len(marks)
