"""Duels on both stores: each choice a row, read back in a new process, taken back by an undo, each person's own;
the ranking and the effects fitted from them.

Every test that takes ``target`` runs on a real SQLite file, then on a real PostgreSQL database
(``tests/postgres.py``); the runs come from the emulator over loopback.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import seqnb
from seqnb.emulator import EmulatorServer
from seqnb.errors import SettingInvalid
from seqnb.ledger.facade import Ledger
from seqnb.ledger.sessions import user_here
from tests import postgres
from tests.postgres import Target

pg_cluster, target = postgres.pg_cluster, postgres.target  # fixtures: each test runs on SQLite, then PostgreSQL

STYLE = "Generate 2 images of a fox at dusk, in "


def sweep(emu: EmulatorServer, url: str) -> tuple[seqnb.Client, seqnb.Sweep]:
    client = seqnb.connect(emu.token, emu.base_url, ledger=url, download=False)
    runs = client.sweep(prompts=[STYLE + s for s in ("ink", "watercolor", "woodcut")], seeds=[1, 2], quiet=True)
    client.wait_all(runs, timeout=60)
    return client, runs


def test_choices_are_rows_read_back_in_a_new_process(emu: EmulatorServer, target: Target) -> None:
    client, runs = sweep(emu, target.url)
    ledger = client.ledger
    assert ledger is not None
    ink1, ink2, wc1, wc2, wood1, _ = (r.id for r in runs)
    first = ledger.record_duel(ink1, wc1, "left")
    ledger.record_duel(wood1, ink2, "right", blind=False)
    ledger.record_duel(wc2, ink2, "tie")
    client.close()
    script = textwrap.dedent(
        """
        import sys, seqnb
        ledger = seqnb.Ledger(sys.argv[1])
        for row in ledger.duels().itertuples():
            print(row.id, row.left_id, row.right_id, row.outcome, row.blind, row.by, row.at.year)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script, target.url], capture_output=True, text=True, timeout=120, check=True
    ).stdout.split("\n")
    year = str(__import__("datetime").datetime.now().year)
    assert out[:3] == [
        f"{first} {ink1} {wc1} left True {user_here()} {year}",
        f"{first + 1} {wood1} {ink2} right False {user_here()} {year}",
        f"{first + 2} {wc2} {ink2} tie True {user_here()} {year}",
    ]


def test_an_undo_removes_the_row_and_only_your_own(emu: EmulatorServer, target: Target) -> None:
    client, runs = sweep(emu, target.url)
    ledger = client.ledger
    assert ledger is not None
    mine = ledger.record_duel(runs[0].id, runs[1].id, "left")
    theirs = ledger.record_duel(runs[2].id, runs[3].id, "right", by="alice")
    ledger.remove_duel(mine)
    assert list(ledger.duels(by="*")["id"]) == [theirs]
    assert target.execute("SELECT COUNT(*) FROM duels WHERE id = ?", (mine,)) == [(0,)]
    with pytest.raises(SettingInvalid, match="alice's"):
        ledger.remove_duel(theirs)
    with pytest.raises(SettingInvalid, match="no such duel"):
        ledger.remove_duel(mine)
    assert ledger.duels().empty and len(ledger.duels(by="alice")) == 1  # yours by default, then Alice's


def test_a_bad_choice_is_refused_and_nothing_is_written(emu: EmulatorServer, target: Target) -> None:
    client, runs = sweep(emu, target.url)
    ledger = client.ledger
    assert ledger is not None
    with pytest.raises(SettingInvalid, match="outcome='draw'"):
        ledger.record_duel(runs[0].id, runs[1].id, "draw")
    with pytest.raises(SettingInvalid, match="no such run"):
        ledger.record_duel(runs[0].id, "nope", "left")
    with pytest.raises(SettingInvalid, match="two different runs"):
        ledger.record_duel(runs[0].id, runs[0].id, "left")
    assert ledger.duels(by="*").empty


def test_the_ranking_and_the_effects_name_each_series_by_what_differs(emu: EmulatorServer, tmp_path: object) -> None:
    client, runs = sweep(emu, str(tmp_path) + "/l.sqlite")  # type: ignore[operator]
    ledger = client.ledger
    assert isinstance(ledger, Ledger)
    ink1, ink2, wc1, wc2, wood1, wood2 = (r.id for r in runs)
    for a, b in ((ink1, wc1), (ink2, wc2), (ink1, wood1), (ink2, wood2), (wc1, wood1)):
        ledger.record_duel(a, b, "left")
    ledger.record_duel(wc2, wood2, "tie")
    ranked = ledger.ranking(sweep=runs.id)
    assert list(ranked.columns) == ["run_id", "label", "strength", "low", "high", "comparisons", "wins"]
    assert set(ranked["run_id"][:2]) == {ink1, ink2} and set(ranked["run_id"][-2:]) == {wood1, wood2}
    top = ranked.iloc[0]
    assert top["label"] in ("…ink · seed 1", "…ink · seed 2") and top["comparisons"] == 2 and top["wins"] == 2.0
    assert (ranked["low"] < ranked["strength"]).all() and (ranked["strength"] < ranked["high"]).all()
    assert ranked.set_index("run_id").loc[wc2, "wins"] == 0.5  # a tie is half a win
    found = ledger.effects(runs.id, by="prompt")
    assert list(found.columns) == ["value", "label", "strength", "low", "high", "comparisons"]
    assert list(found["label"]) == ["…ink", "…watercolor", "…woodcut"]
    assert list(found["value"]) == [STYLE + s for s in ("ink", "watercolor", "woodcut")]
    assert list(found["comparisons"]) == [4, 4, 4]
    assert ledger.effects(runs.id, by="seed")["comparisons"].sum() == 0  # every duel held the seed equal
    with pytest.raises(SettingInvalid, match="by='mood'"):
        ledger.effects(runs.id, by="mood")
    runs[5].rate(5)
    runs[0].rate(1)
    assert (
        ledger.ranking(sweep=runs.id, stars=True).set_index("run_id").loc[wood2, "strength"]
        > ranked.set_index("run_id").loc[wood2, "strength"]
    )
    assert ledger.ranking(sweep=runs.id, duels_by="alice")["comparisons"].sum() == 0  # Alice judged nothing
    import matplotlib

    matplotlib.use("Agg")
    ax = ledger.plot_ranking(sweep=runs.id)
    top_down = sorted(zip(ax.get_yticks(), [t.get_text() for t in ax.get_yticklabels()], strict=True), reverse=True)
    assert [label for _, label in top_down] == list(ranked["label"])  # strongest on top
    assert len(ax.lines) + len(ax.collections) >= 2  # the points and their interval bars
    by_prompt = ledger.plot_ranking(runs.id, by="prompt")
    ticks = zip(by_prompt.get_yticks(), [t.get_text() for t in by_prompt.get_yticklabels()], strict=True)
    assert [label for _, label in sorted(ticks, reverse=True)] == ["…ink", "…watercolor", "…woodcut"]


def test_the_report_shows_the_ranking_and_effects_and_the_export_takes_the_strongest(
    seqnb_client: seqnb.Client, tmp_path: Path
) -> None:
    from tests.images.test_report import page_data

    runs = seqnb_client.sweep(prompts=[STYLE + s for s in ("ink", "watercolor")], seeds=[1, 2], quiet=True)
    seqnb_client.wait_all(runs, timeout=60)
    seqnb_client.settle(timeout=60)
    ledger = seqnb_client.ledger
    assert ledger is not None
    plain = page_data(seqnb_client.report(ledger.runs(sweep=runs.id), tmp_path / "plain.html").read_text())
    assert plain["tables"] == []  # no duels: nothing to rank
    ink1, ink2, wc1, wc2 = (r.id for r in runs)
    for a, b in ((ink1, wc1), (ink2, wc2), (ink1, wc2)):
        ledger.record_duel(a, b, "left")
    data = page_data(seqnb_client.report(ledger.runs(sweep=runs.id), tmp_path / "judged.html").read_text())
    titles = [t["title"] for t in data["tables"]]
    assert titles == ["Ranking from 3 duel(s)", "Strength by prompt", "Strength by seed"]
    assert data["tables"][0]["rows"][0]["run_id"] == ink1 and data["tables"][0]["rows"][0]["label"] == "…ink · seed 1"
    assert [r["label"] for r in data["tables"][1]["rows"]] == ["…ink", "…watercolor"]
    strongest = ledger.ranking(sweep=runs.id).head(2)  # the top two of the ranking, the frame itself
    written = seqnb_client.export_images(strongest, tmp_path / "top")
    names = " ".join(p.name for p in written if p.suffix == ".png")
    assert ink1 in names and ink2 in names and wc1 not in names and wc2 not in names
    assert len([p for p in written if p.suffix == ".png"]) == 2 * 2  # the two strongest series, two frames each
    by_runs = page_data(seqnb_client.report(list(runs), tmp_path / "runs.html").read_text())
    assert [t["title"] for t in by_runs["tables"]] == titles  # runs given as runs: the same tables
