"""The ledger's tables say things one way (issue #23): short model names, whole run ids, tenths of seconds, flat options."""

from __future__ import annotations

import json
from pathlib import Path

import seqnb
from seqnb.cli.reports import runs_table
from seqnb.testing import FAST, emulator


def test_tables_name_models_and_runs_one_way(tmp_path: Path) -> None:
    with emulator(**FAST) as emu:
        client = seqnb.connect(emu.token, emu.base_url, ledger=tmp_path / "l.sqlite", download=False)
        plain = client.submit(seqnb.Request("seedream-4.5", "Generate 1 image of a cat", count=1, seed=1))
        tuned = client.submit(
            seqnb.Request("seedream-4.0", "Generate 1 image of a cat", count=1, seed=1, optimize="standard")
        )
        client.wait_all(timeout=30)
        ledger = client.ledger
        assert ledger is not None
        frame = ledger.runs()
        assert set(frame["model"]) == {"seedream-4.0", "seedream-4.5"}
        assert set(ledger.spend(by="model")["model"]) == {"seedream-4.0", "seedream-4.5"}
        assert set(ledger.runs(model="bytedance/seedream-4-5/sequential")["id"]) == {plain.id}  # ids still filter
        options = dict(zip(frame["id"], frame["options"], strict=True))
        assert json.loads(options[plain.id]) == {}
        assert json.loads(options[tuned.id]) == {"optimize": "standard"}  # no {"options": {}} inside
        for column in ("queue_s", "run_s"):
            assert all(round(v, 1) == v for v in frame[column].dropna()), frame[column]
        assert frame["queue_s"].notna().all()
        compared = ledger.compare([plain, tuned])
        assert set(compared.index) == {plain.id, tuned.id}
        assert set(compared["model"]) == {"seedream-4.0", "seedream-4.5"}
        table = runs_table(frame)
        assert set(table["run"]) == {plain.id, tuned.id} and all(len(r) == 12 for r in table["run"])
        client.close()
