"""The duel view: two series side by side, blind by default; a key says which is better, and the next pair comes.

``seqnb.duel(runs)`` shows the pair whose answer teaches the ranking most (``seqnb.judging.pairing``),
records each choice in the ledger at once (``Ledger.record_duel``: who, when, the two runs, the
outcome, blind or not) and fits the ranking again. Blind means blind in the browser too: what the
widget syncs before a choice (``shown``) is an opaque token for the pair and each side's thumbnails,
no prompt, model, seed, run id, cost or score; after the choice ``reveal`` names the pair just
judged. Every key and button sends a message that a plain method handles (``choose``, ``skip``,
``undo``, ``show_full``), which tests and scripts call too; ``pair`` is the two runs shown now.
"""

from __future__ import annotations

import html
import logging
import secrets
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import traitlets

from ..errors import SeqnbError, SettingInvalid
from ..images.fallback import HtmlBudget
from ..images.gallery import Gallery
from ..images.matrix import axis_value, cell_labels
from ..images.render import frame_label
from ..judging.pairing import Pairing
from ..ledger.duels import OUTCOMES, SCORES
from ..model.spec import get_model
from ..runs.run import RunCore
from .matrix_state import SeriesView, thumb_src
from .matrix_view import MatrixView

if TYPE_CHECKING:
    import pandas as pd

    from ..ledger.facade import Ledger

__all__ = ["DuelView", "duel"]

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
PAIR_AXES = ("prompt", "model", "size", "seed")
"""What a like-for-like pair may differ in (one of), the seed held equal (``Pairing``'s ``held``)."""


class DuelView(SeriesView):
    """Two series side by side: ← or → for the better one, ↓ a tie, s skip, u undo, f full frames."""

    noun = "duel"

    _esm = STATIC / "duel.js"
    _css = STATIC / "duel.css"

    shown = traitlets.Dict(
        help="the pair to judge: an opaque token and each side's thumbnails, nothing that names them"
    ).tag(sync=True)
    reveal = traitlets.Dict(help="the pair judged last, named: labels, prompts, models, seeds, run ids, outcome").tag(
        sync=True
    )
    progress = traitlets.Dict(help="choices made, series, pairs skipped, series whose images are loading").tag(
        sync=True
    )
    full = traitlets.Bool(False, help="full frames shown (sent as custom messages) instead of thumbnails").tag(
        sync=True
    )
    blind = traitlets.Bool(True, help="nothing names a pair until it is judged").tag(sync=True)

    def __init__(
        self,
        runs: Any,
        *,
        ledger: Ledger | None = None,
        gallery: Gallery | None = None,
        blind: bool = True,
        thumb: int = 192,
        large: int = 1024,
        seed: int | None = None,
    ) -> None:
        cores, found = self._given(runs, gallery, ledger)  # ``pair`` answers with the runs as given
        if found is None:
            raise SettingInvalid(
                "a duel records each choice in a ledger: connect with one (seqnb.connect()) or pass ledger=..."
            )
        self.ledger: Ledger = found
        self.series: list[RunCore] = [c for c in cores if c.status == "completed"]
        if len(self.series) < 2:
            raise SettingInvalid(
                f"a duel needs two completed series; {len(self.series)} of the {len(cores)} run(s) given completed"
            )
        self.thumb, self.large = thumb, large
        self.index = {run.id: k for k, run in enumerate(self.series)}
        kept = [run.label for run in self.series]  # each run's one label (seqnb.model.labels), if they tell them apart
        self.labels = kept if all(kept) and len(set(kept)) == len(kept) else cell_labels(self.series)
        axes = [tuple(repr(axis_value(run, a)) for a in PAIR_AXES) for run in self.series]
        self.pairing = Pairing(len(self.series), axes=axes, held=(PAIR_AXES.index("seed"),), seed=seed)
        self.made: list[tuple[int, int, int, float]] = []
        """The choices this view wrote, (duel id, left, right, score), newest last: what ``undo`` takes back."""
        self.current: tuple[int, int] | None = None
        self.token = ""
        self.skipped = 0
        self.large_sent: list[tuple[dict[str, Any], bytes]] = []
        """The full frames sent for the pair shown (their messages and bytes), for tests and benchmarks."""
        self._seen: set[frozenset[int]] = set()  # pairs revealed: judged again, they are not judged blind
        self.warmed = threading.Event()
        """Set once every loaded series' thumbnails are made (``_warm``): from then on no pair waits for one."""
        self._resume()
        super().__init__(blind=bool(blind))
        self.on_msg(lambda _, content, buffers: self.handle_message(content))
        self._next()
        threading.Thread(target=self._warm, name="seqnb-duel-thumbnails", daemon=True).start()

    def _resume(self) -> None:
        """Go on from your duels already in the ledger between these series: no pair asked twice, the fit as it stands."""
        earlier = self.ledger.duels([run.id for run in self.series])
        for left, right, outcome in zip(earlier["left_id"], earlier["right_id"], earlier["outcome"], strict=True):
            self.pairing.add(self.index[left], self.index[right], SCORES[str(outcome)], refit=False)
            self._seen.add(frozenset((self.index[left], self.index[right])))
        if len(earlier):
            self.pairing.refit()

    # --- the pair ---------------------------------------------------------------------------

    @property
    def pair(self) -> tuple[Any, Any] | None:
        """The two runs shown now, left then right (as given: ``Run`` or ``AsyncRun``); None while none is."""
        if self.current is None:
            return None
        i, j = self.current
        return self.originals[self.series[i].id], self.originals[self.series[j].id]

    def _frames_loaded(self) -> None:
        if self.current is None and not self._closed:
            self._next()

    def _warm(self) -> None:
        """Make the thumbnails of every series loaded, in the background: a series shown for the first time would
        otherwise wait for its thumbnails to be made from the full images (about 90 ms for four frames)."""
        try:
            for run in self.series:
                for frame in self.frames.get(run.id) or []:
                    if self._closed:
                        return
                    thumb_src(self.gallery.cache, frame, self.thumb, self._thumbs)
        except Exception as exc:  # the pair shown makes its own when it needs them
            log.warning("duel thumbnails not made ahead: %s", exc)
        finally:
            self.warmed.set()

    def _next(self, avoid: tuple[int, ...] = ()) -> None:
        """Show the pair worth asking now (blind: its token and thumbnails only)."""
        allowed = [self._frames_of(run) is not None for run in self.series]
        pair = self.pairing.next_pair(allowed, avoid)
        if pair is None:
            self.current, self.token = None, ""
            waiting = len(self._loading)
            self.message = f"images of {waiting} series loading…" if waiting else "fewer than two series can be shown"
            self._show({"token": ""})
            return
        self._present(*pair)

    def _present(self, i: int, j: int) -> None:
        """Show series ``i`` and ``j`` under a new token (and their full frames, if shown)."""
        self.current, self.token = (i, j), secrets.token_urlsafe(12)
        self._show({"token": self.token, "left": self._side(i), "right": self._side(j)})
        if self.full:
            self._send_full()

    def _show(self, shown: dict[str, Any]) -> None:
        if self._closed:
            return
        self.shown = shown
        self.progress = {
            "choices": len(self.pairing.left), "mine": len(self.made), "series": len(self.series),
            "skipped": self.skipped, "loading": len(self._loading),
        }  # fmt: skip

    def _side(self, k: int) -> dict[str, Any]:
        """One side as the browser draws it: thumbnails (or a frame's state), and, only when not blind, its names."""
        run = self.series[k]
        frames = []
        for frame in self.frames.get(run.id) or []:
            src = thumb_src(self.gallery.cache, frame, self.thumb, self._thumbs)
            frames.append({"src": src} if src else {"state": frame.state, "label": frame_label(frame)})
        side: dict[str, Any] = {"frames": frames}
        if not self.blind:
            side["info"] = self.info(k)
        return side

    def info(self, k: int) -> dict[str, Any]:
        """What names series ``k``: its label, prompt, model, seed, size, run id, cost, strength and duels so far."""
        run = self.series[k]
        resolved = run.request.resolved()
        try:
            cost = str(run.request.cost())
        except (ValueError, KeyError):
            cost = ""
        return {
            "label": self.labels[k], "prompt": run.request.prompt or "", "model": get_model(run.model).short_name,
            "seed": "" if resolved.get("seed") is None else str(resolved.get("seed")),
            "size": str(resolved.get("size") or ""), "run": run.id, "cost": cost,
            "strength": round(float(self.pairing.strengths.mean[k]), 2), "duels": int(self.pairing.met[k]),
        }  # fmt: skip

    # --- the actions ------------------------------------------------------------------------

    def choose(self, outcome: str) -> None:
        """``"left"`` or ``"right"`` won, or ``"tie"``: recorded in the ledger at once, the pair revealed, the next shown."""
        if outcome not in OUTCOMES:
            self.message = f"choose 'left', 'right' or 'tie', not {html.escape(repr(outcome))}"
            return
        if self.current is None:
            self.message = "no pair to judge yet"
            return
        i, j = self.current
        blind = self.blind and frozenset((i, j)) not in self._seen
        try:
            duel_id = self.ledger.record_duel(self.series[i].id, self.series[j].id, outcome, blind=blind)
        except (SeqnbError, ValueError) as exc:
            self.message = f"not recorded: {html.escape(str(exc))}"
            return
        self.pairing.add(i, j, SCORES[outcome])
        self.made.append((duel_id, i, j, SCORES[outcome]))
        self._seen.add(frozenset((i, j)))
        self.message = ""
        self.reveal = {"outcome": outcome, "left": self.info(i), "right": self.info(j), "blind": blind}
        self._next(avoid=(i, j))

    def skip(self) -> None:
        """Leave this pair for later (asked again once every other pair has been); nothing is recorded or revealed."""
        if self.current is None:
            self.message = "no pair to skip"
            return
        i, j = self.current
        self.pairing.skip(i, j)
        self.skipped += 1
        self.message = ""
        self._next(avoid=(i, j))

    def undo(self) -> None:
        """Take back this view's last choice (its ledger row is deleted) and show that pair again."""
        if not self.made:
            self.message = "nothing to undo: no choice made in this duel yet"
            return
        duel_id, i, j, score = self.made[-1]
        try:
            self.ledger.remove_duel(duel_id)
        except (SeqnbError, ValueError) as exc:
            self.message = f"not taken back: {html.escape(str(exc))}"
            return
        self.made.pop()
        self.pairing.remove(i, j, score)
        self.reveal = {}
        self.message = "your last choice was taken back: judge this pair again"
        self._present(i, j)

    def show_full(self, on: bool | None = None) -> None:
        """Show the pair's frames full-size (``on=None`` toggles); they are sent as custom messages, never synced."""
        self.full = (not self.full) if on is None else bool(on)
        if self.full:
            self._send_full()

    def _send_full(self) -> None:
        self.large_sent = []
        if self.current is None:
            return
        for side, k in zip(("left", "right"), self.current, strict=True):
            for frame in self.frames.get(self.series[k].id) or []:
                data = self._large(frame)
                if data is None:
                    continue
                content = {"kind": "large", "token": self.token, "side": side, "frame": frame.index}
                self.large_sent.append((content, data))
                if not self._closed:
                    self.send(content, [data])

    # --- what the duels say -----------------------------------------------------------------

    def ranking(self, *, stars: bool = False) -> pd.DataFrame:
        """These series strongest first, from your duels between them (``Ledger.ranking``)."""
        return self.ledger.ranking([run.id for run in self.series], stars=stars)

    def effects(self, by: str = "prompt") -> pd.DataFrame:
        """Strength per value of an axis over these series (``Ledger.effects``)."""
        return self.ledger.effects([run.id for run in self.series], by)

    def matrix(self, rows: str | None = "prompt", cols: str | None = "seed", **options: Any) -> MatrixView:
        """These series as a matrix whose rows and columns are in the ranking's order, strongest first."""
        runs = [self.originals[run.id] for run in self.series]
        return MatrixView(runs, rows, cols, ledger=self.ledger, gallery=self.gallery, rank=self.ranking(), **options)

    def plot(self, by: str | None = None, top: int = 30) -> Any:
        """The ranking (or ``by`` an axis's effects) with 95% intervals, as a matplotlib Axes."""
        return self.ledger.plot_ranking([run.id for run in self.series], by=by, top=top)

    # --- messages ---------------------------------------------------------------------------

    def handle_message(self, content: Any) -> Any:
        """Act on a message from the browser: ``{"action": "choose", "outcome": ..., "token": ...}``, ``skip`` (with the
        token), ``undo``, ``full`` (``"on"``). A choice or skip for a pair no longer shown (a key pressed twice) is ignored."""
        c = content if isinstance(content, dict) else {}
        action = c.get("action")
        if action in ("choose", "skip") and c.get("token") != self.token:
            return None  # meant for a pair already judged
        actions: dict[str, Callable[[], Any]] = {
            "choose": lambda: self.choose(str(c.get("outcome"))),
            "skip": self.skip,
            "undo": self.undo,
            "full": lambda: self.show_full(c.get("on") if isinstance(c.get("on"), bool) else None),
        }
        return self._act(action, actions)

    def static_html(self, budget: HtmlBudget | None = None) -> str:
        """What a saved notebook shows: how far the duel went (nothing of a pair: it may be blind)."""
        budget = budget or HtmlBudget()
        return budget.text(
            f"<p><b>seqnb duel</b> of {len(self.series)} series: {len(self.pairing.left)} choice(s) so far. "
            "<code>ledger.ranking(...)</code> ranks them.</p>"
        )

    def static_text(self) -> str:
        return f"<seqnb duel: {len(self.series)} series, {len(self.pairing.left)} choice(s)>"


def duel(runs: Any, **options: Any) -> DuelView:
    """Judge series two at a time: ``d = seqnb.duel(sweep)``; ← / → the better one, ↓ a tie, s skip, u undo, f full frames.

    ``runs``: a list of runs, a ``Sweep``, or a frame of ``ledger.runs()`` or a sweep id with ``ledger=``.
    Blind by default (``blind=False`` names each side). Options: ``ledger``, ``gallery``, ``thumb``,
    ``large``, ``seed`` (of the pairing's draws). The ranking: ``d.ranking()``, ``ledger.ranking(...)``.
    """
    return DuelView(runs, **options)
