"""Rankings from duels: ``Ledger.duels``, ``ranking``, ``effects`` and ``plot_ranking`` (frames; the fit is ``seqnb.judging``).

``ranking`` fits a Bradley-Terry model (``seqnb.judging.bradley_terry``) to the duels between the
runs asked for and answers one row per series, strongest first: ``run_id``, ``label`` (what
differs: the run's label, ``seqnb.model.labels``), ``strength`` (logits, centred), ``low``/``high`` (95%),
``comparisons`` and ``wins`` (ties as half). ``effects`` fits the same duels per value of one axis.
Whose duels: yours by default, ``duels_by="alice"`` Alice's, ``duels_by="*"`` everyone's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..errors import SettingInvalid
from .duels import SCORES, duels_frame, read_duels
from .marks import reader

if TYPE_CHECKING:
    import pandas as pd

    from .reads import LedgerReads

__all__ = ["JUDGED_AXES", "duels", "effects", "judging_tables", "plot_ranking", "ranking"]

JUDGED_AXES = ("prompt", "model", "seed", "size")
"""The axes ``effects`` can fit, as ``ledger.runs()`` names their columns."""
RANKING_COLUMNS = ["run_id", "label", "strength", "low", "high", "comparisons", "wins"]


def _chosen(ledger: LedgerReads, runs: Any, sweep: str | None, who: str | None) -> pd.DataFrame:
    """The runs asked for (a sweep id, run ids or runs, a frame of ``runs()``), else every run in the duels of ``who``."""
    if sweep is not None:
        frame = ledger.runs(sweep=sweep)
        if frame.empty:
            raise SettingInvalid(
                f"sweep={sweep!r}: no such sweep in ledger {ledger.location}; ledger.sweeps() lists them"
            )
        return frame
    if runs is None:
        ids = {r for row in read_duels(ledger.store, None, who) for r in row[1:3]}
        return ledger.runs(ids=sorted(ids))
    return ledger._select(runs, reread=True)


def duels(ledger: LedgerReads, runs: Any = None, *, sweep: str | None = None, by: str | None = None) -> pd.DataFrame:
    """The duels (between the runs asked for, or all) in the order made: yours, ``by="alice"``'s or ``by="*"`` everyone's."""
    ledger.settle()
    ids = None if runs is None and sweep is None else list(_chosen(ledger, runs, sweep, None)["id"].astype(str))
    return duels_frame(read_duels(ledger.store, ids, reader(by)))


def axis_values(frame: pd.DataFrame, axis: str) -> list[Any]:
    """Each run's value on an axis (``JUDGED_AXES``), from its ``runs()`` row: the prompt, model, seed, size."""
    if axis not in JUDGED_AXES:
        raise SettingInvalid(f"by={axis!r}: effects are fitted by {', '.join(map(repr, JUDGED_AXES))}")
    if axis == "seed":
        seeds = frame["seed"].where(frame["seed"].notna(), frame["default_seed"])
        return [None if v is None or v != v else int(v) for v in seeds.astype(object)]  # NA -> None
    return [None if v is None or v != v else str(v) for v in frame[axis].astype(object)]


def labels_of(frame: pd.DataFrame) -> list[str]:
    """Each run's label: the one kept in the ledger (``seqnb.model.labels``: one name everywhere) when every run has
    one and no two share it, else its values on the axes that vary among these runs (prompts by their differing words)."""
    from ..model.labels import axis_labels

    stored = frame["label"] if "label" in frame.columns else None
    if stored is not None and stored.notna().all() and stored.is_unique:
        return [str(v) for v in stored]
    parts = []
    for axis in JUDGED_AXES:
        values = axis_values(frame, axis)
        if len({repr(v) for v in values}) > 1:
            parts.append(axis_labels(axis, values))
    if not parts:
        return [f"run {i}" for i in frame["id"]]
    return [" · ".join(p[k] for p in parts) for k in range(len(frame))]


def _judged(
    ledger: LedgerReads, runs: Any, sweep: str | None, duels_by: str | None
) -> tuple[pd.DataFrame, list[int], list[int], list[float]]:
    """The series to rank (completed, or in a duel), oldest first, and the duels between them: each duel's left and
    right series (as rows of that frame) and the left one's score."""
    who = reader(duels_by)
    frame = _chosen(ledger, runs, sweep, who)
    rows = read_duels(ledger.store, list(frame["id"].astype(str)), who)
    dueled = {r for row in rows for r in row[1:3]}
    keep = [(s == "completed") or (i in dueled) for i, s in zip(frame["id"], frame["status"], strict=True)]
    frame = frame[keep].sort_values("created_at", kind="stable").reset_index(drop=True)
    index = {str(run_id): k for k, run_id in enumerate(frame["id"])}
    return frame, [index[r[1]] for r in rows], [index[r[2]] for r in rows], [SCORES[r[3]] for r in rows]


def ranking(
    ledger: LedgerReads, runs: Any = None, *, sweep: str | None = None, duels_by: str | None = None, stars: bool = False
) -> pd.DataFrame:
    """The series strongest first, from a Bradley-Terry fit of the duels between them, with 95% intervals.

    ``runs``: a sweep id, run ids or runs, or a frame of ``runs()`` (else every run you dueled);
    ``stars=True`` adds the series' star ratings as weak evidence (about one duel's worth per series).
    """
    import pandas as pd

    from ..judging.bradley_terry import fit, star_evidence

    frame, left, right, score = _judged(ledger, runs, sweep, duels_by)
    ids = [str(i) for i in frame["id"]]
    if not ids:
        return pd.DataFrame(columns=RANKING_COLUMNS)
    comparisons, wins = [0] * len(ids), [0.0] * len(ids)
    for a, b, s in zip(left, right, score, strict=True):
        comparisons[a] += 1
        comparisons[b] += 1
        wins[a] += s
        wins[b] += 1.0 - s
    weight = [1.0] * len(score)
    if stars:
        marks = ledger.marks_of(ids, by=duels_by)
        extra = star_evidence([marks[i].rating if i in marks else None for i in ids])
        left, right, score, weight = left + extra[0], right + extra[1], score + extra[2], weight + extra[3]
    strengths = fit(len(ids), left, right, score, weight)
    low, high = strengths.interval()
    out = pd.DataFrame(
        {
            "run_id": ids, "label": labels_of(frame), "strength": strengths.mean, "low": low, "high": high,
            "comparisons": comparisons, "wins": wins,
        }
    )  # fmt: skip
    return out.sort_values(["strength", "comparisons"], ascending=False, kind="stable").reset_index(drop=True)


def effects(ledger: LedgerReads, runs: Any, by: str = "prompt", *, duels_by: str | None = None) -> pd.DataFrame:
    """Strength per value of one axis (``"prompt"``, ``"model"``, ``"seed"``, ``"size"``) from the duels between the runs,
    strongest first: ``value``, ``label``, ``strength``, ``low``, ``high`` (95%), ``comparisons``."""
    import pandas as pd

    from ..judging.effects import axis_effects
    from ..model.labels import axis_labels

    frame, left, right, score = _judged(ledger, runs, None, duels_by)
    found = axis_effects(axis_values(frame, by), left, right, score)  # axis_values refuses an axis it does not know
    distinct = [e.value for e in found]
    names = axis_labels(by, distinct)
    return pd.DataFrame(
        {
            "value": distinct, "label": names, "strength": [e.strength for e in found],
            "low": [e.low for e in found], "high": [e.high for e in found],
            "comparisons": [e.comparisons for e in found],
        }
    )  # fmt: skip


def plot_ranking(
    ledger: LedgerReads,
    runs: Any = None,
    *,
    sweep: str | None = None,
    by: str | None = None,
    duels_by: str | None = None,
    top: int = 30,
    ax: Any = None,
) -> Any:
    """The ranking (or, with ``by=``, the effects of an axis) as strengths with their 95% intervals; the matplotlib Axes."""
    frame = (
        effects(ledger, sweep or runs, by, duels_by=duels_by)
        if by
        else ranking(ledger, runs, sweep=sweep, duels_by=duels_by)
    )
    return plot_strengths(frame.head(top), title=f"strength by {by}" if by else "ranking from duels", ax=ax)


def plot_strengths(frame: pd.DataFrame, *, title: str, ax: Any = None) -> Any:
    """Horizontal bars from ``low`` to ``high`` around each ``strength``, strongest on top, labelled by ``label``."""
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise SettingInvalid("plots need matplotlib: pip install 'seqnb[notebooks]'") from exc
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 0.3 * len(frame) + 1.2))
    rows = list(range(len(frame)))[::-1]
    error = [frame["strength"] - frame["low"], frame["high"] - frame["strength"]]
    ax.errorbar(frame["strength"], rows, xerr=error, fmt="o", capsize=3)
    ax.set_yticks(rows, [_short(str(t)) for t in frame["label"]])
    ax.axvline(0.0, color="#999", linewidth=0.8)
    ax.set_xlabel("strength (logits; 95% interval)")
    ax.set_title(title)
    return ax


def _short(text: str, n: int = 48) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def judging_tables(ledger: LedgerReads, run_ids: Sequence[str], duels_by: str | None = None) -> list[dict[str, Any]]:
    """For a report: the ranking and each varying axis's effects as titled tables of plain rows; none without duels."""
    frame, _, _, score = _judged(ledger, list(run_ids), None, duels_by)
    if not score:
        return []

    def plain(table: pd.DataFrame, columns: Sequence[str]) -> list[dict[str, Any]]:
        records: list[dict[Any, Any]] = table[list(columns)].to_dict("records")
        return [{str(k): round(v, 3) if isinstance(v, float) else v for k, v in r.items()} for r in records]

    ranked = ranking(ledger, frame, duels_by=duels_by)
    tables = [
        {
            "title": f"Ranking from {len(score)} duel(s)",
            "rows": plain(ranked, ["label", "strength", "low", "high", "comparisons", "wins", "run_id"]),
        }
    ]
    for axis in JUDGED_AXES:
        if len({repr(v) for v in axis_values(frame, axis)}) > 1:
            found = effects(ledger, frame, axis, duels_by=duels_by)
            tables.append(
                {
                    "title": f"Strength by {axis}",
                    "rows": plain(found, ["label", "strength", "low", "high", "comparisons"]),
                }
            )
    return tables
