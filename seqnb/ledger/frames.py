"""The ledger's pandas views: typed frames of its rows, spend, comparisons, exports (pandas loads here, on first use)."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import LedgerError
from ..model.pricing import CHARGE_CEILING_UNKNOWN, CHARGE_FLOOR, CHARGE_SUSPECT_FACTOR
from .marks import RunMarks

__all__ = [
    "IN_FLIGHT",
    "believed_charge",
    "compare",
    "epoch",
    "export",
    "frame_of",
    "images_frame",
    "inert_csv",
    "marks_frame",
    "sessions_frame",
    "short_names",
    "spend",
    "spend_frame",
    "totals_frame",
    "with_marks",
]

IN_FLIGHT = ("created", "submitting", "in_queue", "in_progress")
SPEND_KEYS = ("model", "day", "sweep", "status", "currency", "backend", "user", "host")

_TIMES = ("created_at", "submitted_at", "started_at", "finished_at", "updated_at")
_STRINGS = (
    "id", "request_id", "base_url", "prompt", "options", "payload", "error", "sweep_id", "parent_id", "tags", "note",
    "session", "owner", "user", "host", "kernel", "reference_urls", "label",
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


def short_names(models: pd.Series) -> pd.Series:
    """Model ids as the short names seqnb shows everywhere (``seedream-4.5``); an id it does not know stays as it is."""
    from ..model.spec import models as known

    names = {m.id: m.short_name for m in known()}
    return models.map(lambda m: names.get(m, m) if isinstance(m, str) else m)


def _typed(
    frame: pd.DataFrame,
    *,
    times: Sequence[str] = (),
    ints: Sequence[str] = (),
    strings: Sequence[str] = (),
    categories: Sequence[str] = (),
) -> pd.DataFrame:
    """The frame with these columns typed: epoch seconds as UTC datetimes, nullable integers, strings, categories.

    Tolerant by design: one odd value (text in a number column, written by another tool) becomes a missing value
    in its cell, never an error for every row.
    """
    for col in times:
        seconds = pd.to_numeric(frame[col], errors="coerce")
        frame[col] = pd.to_datetime(seconds, unit="s", utc=True).astype("datetime64[ns, UTC]")
    for col in ints:
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype("Int64")
    for col in (c for c in strings if c in frame):
        frame[col] = frame[col].astype("string")
    for col in categories:
        frame[col] = frame[col].astype("category")
    return frame


def frame_of(rows: list[tuple[Any, ...]], columns: list[str]) -> pd.DataFrame:
    """The runs' rows as a typed frame: datetimes (UTC), categories, nullable integers, strings, float money."""
    frame = pd.DataFrame.from_records(rows, columns=columns)
    for col in ("server_created_at", "server_finished_at"):  # ISO text; a non-ISO one is missing
        frame[col] = pd.to_datetime(frame[col], utc=True, format="ISO8601", errors="coerce").astype(
            "datetime64[ns, UTC]"
        )
    frame["model"] = short_names(frame["model"])
    categories = ("model", "status", "backend", "size", "currency", "cost_source", "est_source")
    ints = ("seed", "default_seed", "requested", "returned")
    _typed(frame, times=_TIMES, ints=ints, strings=_STRINGS, categories=categories)
    _money_columns(frame)
    frame["consistency"] = pd.to_numeric(frame["consistency"], errors="coerce").astype("float64")
    queued = frame["started_at"].fillna(frame["finished_at"]) - frame["submitted_at"]
    frame["queue_s"] = queued.dt.total_seconds().round(1)  # tenths: the pace of a poll, no false precision
    frame["run_s"] = (frame["finished_at"] - frame["started_at"]).dt.total_seconds().round(1)
    return frame


def with_marks(frame: pd.DataFrame, marks: Mapping[str, RunMarks]) -> pd.DataFrame:
    """The runs with their marks as they stand (``seqnb.ledger.marks.current_marks``): ``rating`` (Int64),
    ``frame_ratings`` (``"1:5 3:4"``: frame 1 has five stars, frame 3 four, numbered from 1 as the views show them;
    "" for none), ``verdict``, ``tags`` (sorted, joined by ", "; "" for none) and ``comment``."""
    unmarked = RunMarks()
    got = [marks.get(str(i), unmarked) for i in frame["id"]]

    def column(values: list[Any], dtype: str) -> pd.Series:
        return pd.Series(values, index=frame.index, dtype=dtype)

    frame["rating"] = column([m.rating for m in got], "Int64")
    rated = [" ".join(f"{index + 1}:{stars}" for index, stars in m.frame_ratings.items()) for m in got]
    frame.insert(list(frame.columns).index("rating") + 1, "frame_ratings", column(rated, "string"))
    frame["verdict"] = column([m.verdict for m in got], "string")
    frame["tags"] = column([", ".join(m.tags) for m in got], "string")
    frame["comment"] = column([m.comment for m in got], "string")
    return frame


def images_frame(rows: list[tuple[Any, ...]], columns: list[str]) -> pd.DataFrame:
    """The images' rows as a typed frame."""
    ints, strings = ("idx", "width", "height", "bytes"), ("run_id", "url", "path", "sha256", "state")
    return _typed(pd.DataFrame.from_records(rows, columns=columns), ints=ints, strings=strings)


def marks_frame(rows: list[tuple[Any, ...]], columns: list[str]) -> pd.DataFrame:
    """The marks' rows as a typed frame: ``at`` as a UTC datetime, ``frame`` a nullable integer."""
    frame = pd.DataFrame.from_records(rows, columns=columns)
    frame["id"] = pd.to_numeric(frame["id"]).astype("int64")
    return _typed(frame, times=("at",), ints=("frame",), strings=("run_id", "kind", "value", "by"))


def sessions_frame(rows: list[tuple[Any, ...]], columns: list[str], live: set[str]) -> pd.DataFrame:
    """The sessions' rows as a typed frame, with ``live``: whether each one is alive now."""
    frame = pd.DataFrame.from_records(rows, columns=columns)
    times = ("started_at", "heartbeat_at", "ended_at")
    _typed(frame, times=times, ints=("pid",), strings=("id", "user", "host", "kernel"))
    frame["live"] = frame["id"].isin(live).astype("bool")
    return frame


def compare(frame: pd.DataFrame) -> pd.DataFrame:
    """Runs side by side: only the parameters that differ between them, then the outcomes."""
    params = ["model", "prompt", "seed", "size", "requested", "options"]
    differing = [c for c in params if frame[c].astype("string").nunique(dropna=False) > 1]
    outcomes = ["status", "returned", "consistency", "rating", "verdict", "queue_s", "run_s", "est_cost", "cost"]
    return frame.set_index("id")[differing + [c for c in [*outcomes, "currency", "error"] if c in frame]]


def spend_frame(rows: list[tuple[Any, ...]], columns: list[str]) -> pd.DataFrame:
    """The few columns ``spend`` needs, typed as ``frame_of`` types them (the same tolerance for odd values)."""
    frame = pd.DataFrame.from_records(rows, columns=columns)
    frame["model"] = short_names(frame["model"])
    categories, strings = ("model", "status", "backend", "currency"), ("id", "sweep_id", "user", "host")
    _typed(frame, times=("created_at",), ints=("requested",), strings=strings, categories=categories)
    _money_columns(frame)
    return frame


def totals_frame(rows: list[tuple[Any, ...]], columns: list[str]) -> pd.DataFrame:
    """The groups typed as ``spend_frame`` types runs (a day as its midnight), with their count ``n``."""
    frame = pd.DataFrame.from_records(rows, columns=columns)
    for column in ("id", "model", "created_at", "sweep_id", "user", "host"):
        if column not in frame:
            frame[column] = None
    if len(frame):
        frame["created_at"] = pd.to_numeric(frame["created_at"], errors="coerce") * 86400
    typed = spend_frame(list(frame.itertuples(index=False, name=None)), list(frame.columns))
    typed["n"] = pd.to_numeric(frame["n"]).astype("int64")
    return typed


def _money_columns(frame: pd.DataFrame) -> None:
    """The estimate and the charge as float money (an odd value: missing), the flag as a nullable boolean."""
    for col in ("est_cost", "cost"):
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype("float64")
    flag = pd.to_numeric(frame["cost_differs"], errors="coerce")
    frame["cost_differs"] = flag.where(flag.isin([0, 1])).astype("boolean")


def believed_charge(frame: pd.DataFrame) -> pd.Series:
    """Which rows' charge (``cost``) is said and believed: at most ``charge_ceiling`` of their estimate
    (``seqnb.model.pricing``); an absurd one (``1e308``, infinite) stays on its row but is never summed."""
    estimate = frame["est_cost"].where(frame["est_cost"].between(0, 1e300, inclusive="left"))
    ceiling = (estimate * CHARGE_SUSPECT_FACTOR).clip(lower=float(CHARGE_FLOOR))
    ceiling = ceiling.fillna(float(CHARGE_CEILING_UNKNOWN))
    cost = frame["cost"]
    return cost.notna() & (cost >= 0) & (cost <= ceiling)


def spend(
    frame: pd.DataFrame, by: str | Sequence[str] = "model", actual: bool = False, weights: str | None = None
) -> pd.DataFrame:
    """Spend grouped by ``by`` (any of ``SPEND_KEYS``), as ``Ledger.spend`` says; a run counts what the service
    charged where it said so and the charge is believed (``believed_charge``), else seqnb's estimate. ``weights``: a
    column saying how many runs each row stands for (the groups ``Ledger.spend`` reads)."""
    keys = [by] if isinstance(by, str) else list(by)
    unknown = set(keys) - set(SPEND_KEYS)
    if unknown:
        raise ValueError(f"spend(by=...) takes {', '.join(SPEND_KEYS)}, not {sorted(unknown)}")
    emulated = frame["backend"].astype("string") == "emulator"
    completed = frame["status"] == "completed"
    known = believed_charge(frame) & (frame["currency"].astype("string") == "USD")  # the service charges USD
    billed = frame["cost"].where(known, frame["est_cost"].where(completed, 0.0))
    counted = known | completed
    expected = frame["est_cost"].where(completed, 0.0)
    n = frame[weights] if weights else 1
    frame = frame.assign(
        day=frame["created_at"].dt.tz_convert("UTC").dt.date.astype("string"),
        sweep=frame["sweep_id"],
        charged=billed.where(counted & ~emulated, 0.0) * n,
        simulated=billed.where(counted & emulated, 0.0) * n,
        cost_known=known.astype("int64") * n,
        in_flight=frame["est_cost"].where(frame["status"].isin(list(IN_FLIGHT)), 0.0) * n,
        in_doubt=frame["est_cost"].where(frame["status"] == "unknown", 0.0) * n,
        images=frame["requested"] * n,
        estimated=expected.where(known, 0.0) * n,
        actual=frame["cost"].where(known, 0.0) * n,
        flagged=(frame["cost_differs"].fillna(False) & known).astype("int64") * n,
    )
    runs = (weights, "sum") if weights else ("id", "size")
    grouped = frame.groupby([*keys, *(["currency"] if "currency" not in keys else [])], observed=True, dropna=False)
    if actual:
        out = grouped.agg(
            runs=runs,
            cost_known=("cost_known", "sum"),
            estimated=("estimated", "sum"),
            actual=("actual", "sum"),
            flagged=("flagged", "sum"),
        )
        out.insert(4, "difference", out["actual"] - out["estimated"])
        return out.reset_index()
    out = grouped.agg(
        runs=runs,
        images=("images", "sum"),
        charged=("charged", "sum"),
        simulated=("simulated", "sum"),
        cost_known=("cost_known", "sum"),
        in_flight=("in_flight", "sum"),
        in_doubt=("in_doubt", "sum"),
    )
    return out.reset_index()


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""What a spreadsheet reads as the start of a formula in a CSV cell (OWASP's list for CSV injection)."""


def _inert(value: Any) -> Any:
    return "'" + value if isinstance(value, str) and value.startswith(FORMULA_STARTS) else value


def inert_csv(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with every text cell that a spreadsheet would evaluate (``=HYPERLINK(``, ``+cmd|``, ``@SUM(``)
    prefixed with a single quote, as OWASP advises; numbers stay numbers (a negative number is data)."""
    out = frame.copy()
    for column in out.columns:
        values = out[column]
        if values.dtype == object or isinstance(values.dtype, pd.StringDtype | pd.CategoricalDtype):
            out[column] = values.astype(object).map(_inert)
    return out


def export(frame: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write runs to CSV, JSON or Parquet, chosen by the file's extension (a CSV's text cells inert: ``inert_csv``)."""
    target = Path(path)
    suffix = target.suffix.lower()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        if suffix == ".csv":
            # CRLF ends a row (RFC 4180), so a cell holding a lone CR is quoted too and cannot break a row
            inert_csv(frame).to_csv(target, index=False, lineterminator="\r\n")
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
