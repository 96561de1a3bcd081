"""The ledger's pandas views: typed frames of its rows, spend, comparisons, exports (pandas loads here, on first use)."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import LedgerError

__all__ = [
    "IN_FLIGHT",
    "compare",
    "epoch",
    "export",
    "frame_of",
    "images_frame",
    "marks_frame",
    "sessions_frame",
    "spend",
    "spend_frame",
    "with_marks",
]

IN_FLIGHT = ("created", "submitting", "in_queue", "in_progress")
SPEND_KEYS = ("model", "day", "sweep", "status", "currency", "backend", "user", "host")

_TIMES = ("created_at", "submitted_at", "started_at", "finished_at", "updated_at")
_STRINGS = (
    "id", "request_id", "base_url", "prompt", "options", "payload", "error", "sweep_id", "parent_id", "tags", "note",
    "session", "owner", "user", "host", "kernel",
)  # fmt: skip


def epoch(value: Any) -> float:
    """Seconds since the epoch from a number, a datetime or a string (naive means UTC)."""
    if isinstance(value, int | float):
        return float(value)
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise ValueError(
            f"{value!r} is not a time: give a datetime, an ISO date like '2026-11-01', or epoch seconds"
        ) from exc
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return float(stamp.timestamp())


def frame_of(rows: list[tuple[Any, ...]], columns: list[str]) -> pd.DataFrame:
    """The runs' rows as a typed frame: datetimes (UTC), categories, nullable integers, strings, float money.

    Tolerant by design: one odd value (a non-ISO server time, text in a number column written by
    another tool) becomes a missing value in its cell, never an error for every row.
    """
    frame = pd.DataFrame.from_records(rows, columns=columns)
    for col in _TIMES:
        seconds = pd.to_numeric(frame[col], errors="coerce")
        frame[col] = pd.to_datetime(seconds, unit="s", utc=True).astype("datetime64[ns, UTC]")
    for col in ("server_created_at", "server_finished_at"):
        frame[col] = pd.to_datetime(frame[col], utc=True, format="ISO8601", errors="coerce").astype(
            "datetime64[ns, UTC]"
        )
    for col in ("model", "status", "backend", "size", "currency"):
        frame[col] = frame[col].astype("category")
    for col in ("seed", "default_seed", "requested", "returned"):
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype("Int64")
    for col in _STRINGS:
        if col in frame:
            frame[col] = frame[col].astype("string")
    frame["est_cost"] = pd.to_numeric(frame["est_cost"], errors="coerce").astype("float64")
    frame["consistency"] = pd.to_numeric(frame["consistency"], errors="coerce").astype("float64")
    frame["queue_s"] = (frame["started_at"].fillna(frame["finished_at"]) - frame["submitted_at"]).dt.total_seconds()
    frame["run_s"] = (frame["finished_at"] - frame["started_at"]).dt.total_seconds()
    return frame


def with_marks(frame: pd.DataFrame, rows: list[tuple[Any, ...]], columns: list[str]) -> pd.DataFrame:
    """The runs with their marks as they stand (``seqnb.ledger.marks.state_query``'s rows): ``rating`` (Int64),
    ``verdict``, ``tags`` (sorted, joined by ", "; "" for none) and ``comment``."""
    marks = pd.DataFrame.from_records(rows, columns=columns).set_index("run_id")
    marks["tags"] = marks["tags"].map(lambda t: ", ".join(sorted(t.split(","))), na_action="ignore")
    ids = frame["id"].astype("object")
    frame["rating"] = pd.to_numeric(ids.map(marks["rating"]), errors="coerce").astype("Int64")
    frame["verdict"] = ids.map(marks["verdict"]).astype("string")
    frame["tags"] = ids.map(marks["tags"]).astype("string").fillna("")
    frame["comment"] = ids.map(marks["comment"]).astype("string")
    return frame


def images_frame(rows: list[tuple[Any, ...]], columns: list[str]) -> pd.DataFrame:
    """The images' rows as a typed frame."""
    frame = pd.DataFrame.from_records(rows, columns=columns)
    for col in ("idx", "width", "height", "bytes"):
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype("Int64")
    for col in ("run_id", "url", "path", "sha256", "state"):
        frame[col] = frame[col].astype("string")
    return frame


def marks_frame(rows: list[tuple[Any, ...]], columns: list[str]) -> pd.DataFrame:
    """The marks' rows as a typed frame: ``at`` as a UTC datetime, ``frame`` a nullable integer."""
    frame = pd.DataFrame.from_records(rows, columns=columns)
    frame["at"] = pd.to_datetime(pd.to_numeric(frame["at"]), unit="s", utc=True).astype("datetime64[ns, UTC]")
    frame["id"] = pd.to_numeric(frame["id"]).astype("int64")
    frame["frame"] = pd.to_numeric(frame["frame"], errors="coerce").astype("Int64")
    for col in ("run_id", "kind", "value", "by"):
        frame[col] = frame[col].astype("string")
    return frame


def sessions_frame(rows: list[tuple[Any, ...]], columns: list[str], live: set[str]) -> pd.DataFrame:
    """The sessions' rows as a typed frame, with ``live``: whether each one is alive now."""
    frame = pd.DataFrame.from_records(rows, columns=columns)
    for col in ("started_at", "heartbeat_at", "ended_at"):
        seconds = pd.to_numeric(frame[col], errors="coerce")
        frame[col] = pd.to_datetime(seconds, unit="s", utc=True).astype("datetime64[ns, UTC]")
    for col in ("id", "user", "host", "kernel"):
        frame[col] = frame[col].astype("string")
    frame["pid"] = pd.to_numeric(frame["pid"], errors="coerce").astype("Int64")
    frame["live"] = frame["id"].isin(live).astype("bool")
    return frame


def compare(frame: pd.DataFrame) -> pd.DataFrame:
    """Runs side by side: only the parameters that differ between them, then the outcomes."""
    params = ["model", "prompt", "seed", "size", "requested", "options"]
    differing = [c for c in params if frame[c].astype("string").nunique(dropna=False) > 1]
    outcomes = ["status", "returned", "consistency", "rating", "verdict", "queue_s", "run_s", "est_cost", "currency"]
    return frame.set_index("id")[differing + [c for c in [*outcomes, "error"] if c in frame]]


def spend_frame(rows: list[tuple[Any, ...]], columns: list[str]) -> pd.DataFrame:
    """The few columns ``spend`` needs, typed as ``frame_of`` types them (the same tolerance for odd values)."""
    frame = pd.DataFrame.from_records(rows, columns=columns)
    seconds = pd.to_numeric(frame["created_at"], errors="coerce")
    frame["created_at"] = pd.to_datetime(seconds, unit="s", utc=True).astype("datetime64[ns, UTC]")
    for col in ("model", "status", "backend", "currency"):
        frame[col] = frame[col].astype("category")
    for col in ("id", "sweep_id", "user", "host"):
        frame[col] = frame[col].astype("string")
    frame["requested"] = pd.to_numeric(frame["requested"], errors="coerce").astype("Int64")
    frame["est_cost"] = pd.to_numeric(frame["est_cost"], errors="coerce").astype("float64")
    return frame


def spend(frame: pd.DataFrame, by: str | Sequence[str] = "model") -> pd.DataFrame:
    """Estimated spend grouped by ``by`` (model, day, sweep, status, currency, backend, user, host; any combination).

    ``charged``: completed runs on RunComfy (billed on the count asked); ``simulated``: completed
    runs on seqnb's emulator (nothing was charged); ``in_flight``: not yet ended; ``in_doubt``:
    submits that may have reached the service (``unknown``).
    """
    keys = [by] if isinstance(by, str) else list(by)
    unknown = set(keys) - set(SPEND_KEYS)
    if unknown:
        raise ValueError(f"spend(by=...) takes {', '.join(SPEND_KEYS)}, not {sorted(unknown)}")
    emulated = frame["backend"].astype("string") == "emulator"
    completed = frame["status"] == "completed"
    frame = frame.assign(
        day=frame["created_at"].dt.tz_convert("UTC").dt.date.astype("string"),
        sweep=frame["sweep_id"],
        charged=frame["est_cost"].where(completed & ~emulated, 0.0),
        simulated=frame["est_cost"].where(completed & emulated, 0.0),
        in_flight=frame["est_cost"].where(frame["status"].isin(list(IN_FLIGHT)), 0.0),
        in_doubt=frame["est_cost"].where(frame["status"] == "unknown", 0.0),
        images=frame["requested"],
    )
    grouped = frame.groupby([*keys, *(["currency"] if "currency" not in keys else [])], observed=True, dropna=False)
    out = grouped.agg(
        runs=("id", "size"),
        images=("images", "sum"),
        charged=("charged", "sum"),
        simulated=("simulated", "sum"),
        in_flight=("in_flight", "sum"),
        in_doubt=("in_doubt", "sum"),
    )
    return out.reset_index()


def export(frame: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write runs to CSV, JSON or Parquet, chosen by the file's extension."""
    target = Path(path)
    suffix = target.suffix.lower()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        if suffix == ".csv":
            frame.to_csv(target, index=False)
        elif suffix == ".json":
            frame.to_json(target, orient="records", date_format="iso", indent=1)
        elif suffix == ".parquet":
            if importlib.util.find_spec("pyarrow") is None:
                raise LedgerError("Parquet export needs pyarrow: pip install pyarrow (or export to .csv / .json)")
            frame.to_parquet(target, index=False)
        else:
            raise LedgerError(f"cannot export to {target.name!r}: use a .csv, .json or .parquet file name")
    except OSError as exc:
        raise LedgerError(f"cannot write {target}: {exc.strerror or exc}; choose a writable path") from exc
    return target
