"""The one-file report and the export: what they hold, what they escape, what they never carry."""

from __future__ import annotations

import base64
import csv
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

import seqnb
from seqnb.emulator import EmulatorServer

HOSTILE = 'Generate 2 images of a fox </script><img src=x onerror=alert(1)> "><svg onload=alert(2)>'
NOTE = '"><img onerror=alert(3) src=y> </script><script>alert(4)</script>'


def page_data(page: str) -> dict[str, Any]:
    found = re.search(r'<script type="application/json" id="seqnb-data">(.*?)</script>', page, re.S)
    assert found
    data: dict[str, Any] = json.loads(found.group(1))
    return data


def decoded(uri: str) -> Image.Image:
    head, _, body = uri.partition(",")
    assert head.startswith("data:image/") and head.endswith(";base64")
    image = Image.open(io.BytesIO(base64.b64decode(body)))
    image.load()
    return image


@pytest.fixture
def swept(seqnb_client: seqnb.Client) -> list[seqnb.Run]:
    runs = seqnb_client.sweep(
        prompts=[HOSTILE, "Generate 2 images of a kite"], seeds=[1, 2], models=["seedream-4.0"], quiet=True
    )
    seqnb_client.wait_all(runs, timeout=30)
    seqnb_client.settle()
    assert seqnb_client.ledger is not None
    seqnb_client.ledger.annotate(runs[0].id, note=NOTE, tags=["</script>", "<b>hero</b>"])
    runs[0].pick()
    runs[0].rate(5)
    seqnb_client.ledger.mark(runs[0].id, tags=["<i>hero</i>"], comment="</script><b>keep</b>")
    return runs


def test_a_report_is_one_escaped_file_with_everything_a_reader_needs(
    seqnb_client: seqnb.Client, seqnb_emulator: EmulatorServer, swept: list[seqnb.Run], tmp_path: Path
) -> None:
    assert seqnb_client.ledger is not None
    target = seqnb_client.report(seqnb_client.ledger.runs(sweep=swept[0].sweep_id), tmp_path / "out" / "sweep.html")
    assert sorted(p.name for p in target.parent.iterdir()) == ["sweep.html"]  # one file, nothing beside it
    page = target.read_text(encoding="utf-8")
    assert page.count("</script>") == 2 and page.count("<script") == 2  # the data block and the page's own script
    block = page.split('id="seqnb-data">', 1)[1].split("</script>", 1)[0]
    assert "<" not in block and ">" not in block and "&" not in block  # no text can end the block or open a tag
    outside = page.replace(block, "")
    assert "onerror" not in outside and "onload" not in outside and "<img" not in outside and "<svg" not in outside
    assert "file:" not in page.replace("img-src data: file:", "") and "http://" not in page and "https://" not in page
    assert str(tmp_path) not in page and seqnb_emulator.token not in page
    assert "default-src 'none'" in page  # the page may fetch nothing
    data = page_data(page)
    assert [a["key"] for a in data["axes"]] == ["prompt", "seed"]
    assert len(data["runs"]) == 4 and data["spend"][0]["runs"] == 4 and data["spend"][0]["simulated"] > 0
    fox = next(r for r in data["runs"] if r["id"] == swept[0].id)
    assert fox["prompt"] == HOSTILE and fox["note"] == NOTE and fox["verdict"] == "picked"
    assert "rating 5/5" in fox["marks"] and "picked" in fox["marks"] and "#<i>hero</i>" in fox["marks"]
    assert "</script><b>keep</b>" in fox["marks"] and "</script>" in str(fox["tags"])
    assert fox["status"] == "completed" and fox["est_cost"] > 0 and fox["consistency"] is not None
    assert fox["settings"]["seed"] == 1 and "text" not in fox["settings"]
    for run in data["runs"]:
        assert [f["index"] for f in run["frames"]] == [0, 1]
        for frame in run["frames"]:
            assert decoded(frame["src"]).size == (256, 144)  # 2560x1440, longer side 256
            prov = frame["provenance"]
            assert prov["run_id"] == run["id"] and prov["request_id"] == run["request_id"]
            assert prov["width"] == 2560 and len(prov["sha256"]) == 64 and prov["source_host"] == "127.0.0.1"
            assert "full" not in frame


def test_picked_since_and_the_full_size_images(
    seqnb_client: seqnb.Client, swept: list[seqnb.Run], tmp_path: Path
) -> None:
    ledger = seqnb_client.ledger
    assert ledger is not None
    picked = page_data(seqnb_client.report(ledger.runs(verdict="picked"), tmp_path / "picked.html").read_text())
    assert [r["id"] for r in picked["runs"]] == [swept[0].id]
    with pytest.raises(seqnb.LedgerError, match=r"no run in .* matches"):
        seqnb_client.report(ledger.runs(since="2099-01-01"), tmp_path / "none.html")
    with pytest.raises(seqnb.SeqnbError, match=r"moved to the client: client\.report\(client\.ledger\.runs"):
        ledger.report(tmp_path / "old.html", picked=True)  # the old call says what to write instead
    beside = seqnb_client.report(ledger.runs(ids=[swept[1].id]), tmp_path / "b" / "r.html", full="beside")
    frames = page_data(beside.read_text())["runs"][0]["frames"]
    assert [f["full"] for f in frames] == [f"r_files/{swept[1].id}-0{i}of02.png" for i in (1, 2)]
    with Image.open(beside.parent / frames[1]["full"]) as img:
        assert img.size == (2560, 1440) and json.loads(img.text["seqnb"])["frame"] == 1
    embed = page_data(seqnb_client.report([swept[1].id], tmp_path / "e.html", full="embed").read_text())
    assert decoded(embed["runs"][0]["frames"][0]["full"]).size == (2560, 1440)
    from_client = page_data(seqnb_client.report(swept[:2], tmp_path / "c.html").read_text())
    assert {r["id"] for r in from_client["runs"]} == {swept[0].id, swept[1].id}
    assert next(r for r in from_client["runs"] if r["id"] == swept[0].id)["verdict"] == "picked"


def test_export_writes_the_chosen_full_size_pngs_with_provenance_and_a_csv(
    seqnb_client: seqnb.Client, seqnb_emulator: EmulatorServer, swept: list[seqnb.Run], tmp_path: Path
) -> None:
    ledger = seqnb_client.ledger
    assert ledger is not None
    written = seqnb_client.export_images(ledger.runs(verdict="picked"), tmp_path / "chosen")
    assert [p.name for p in written] == [f"{swept[0].id}-01of02.png", f"{swept[0].id}-02of02.png", "runs.csv"]
    with Image.open(written[1]) as img:
        meta = json.loads(img.text["seqnb"])
        assert img.size == (2560, 1440) and "Seed: 1" in img.text["parameters"]
    assert meta["run_id"] == swept[0].id and meta["frame"] == 1 and meta["prompt"] == HOSTILE
    assert seqnb.Request.from_payload(meta["model"], meta["payload"]) == swept[0].request
    with written[2].open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["id"] for r in rows] == [swept[0].id] and "picked" in rows[0]["marks"] and "kernel" not in rows[0]
    everything = seqnb_client.export_images(swept, tmp_path / "all")
    assert len(everything) == 4 * 2 + 1
    blob = b"".join(p.read_bytes() for p in everything)
    assert seqnb_emulator.token.encode() not in blob and str(tmp_path).encode() not in blob


def test_the_report_lays_out_tables_per_model_marks_promoted_runs_and_large_frames(
    seqnb_client: seqnb.Client, tmp_path: Path
) -> None:
    runs = seqnb_client.sweep(
        prompts=["Generate 2 images of a heron, in ink", "Generate 2 images of a heron, in oil"],
        seeds=[1, 2],
        models=["seedream-4.0", "seedream-4.5"],
        quiet=True,
    )
    seqnb_client.wait_all(runs, timeout=30)
    newer = next(r for r in runs if r.model.endswith("4-5/sequential"))
    newer.pick()
    newer.rate(4)
    newer.rate(5, frame=1)
    (child,) = seqnb_client.promote([newer], resolution="4K", quiet=True)
    seqnb_client.wait_all([child], timeout=30)
    seqnb_client.settle()
    assert seqnb_client.ledger is not None
    everything = seqnb_client.ledger.runs()  # newest first: the promoted run before its original
    data = page_data(seqnb_client.report(everything, tmp_path / "r.html").read_text())
    assert (data["x"], data["y"], data["facet"]) == ("prompt", "seed", "model")  # a table per model
    sizes = next(a for a in data["axes"] if a["key"] == "size")  # the models' default sizes differ...
    assert "4K" not in sizes["labels"]  # ...and the promote's 4K adds no value: it sits under its original
    ids = [r["id"] for r in data["runs"]]
    assert ids.index(child.id) == ids.index(newer.id) + 1  # under its original
    shown = {r["id"]: r for r in data["runs"]}
    assert shown[child.id]["made"] == "promoted" and shown[child.id]["parent"] == newer.id
    assert shown[child.id]["at"] == shown[newer.id]["at"]  # in its original's cell
    assert shown[newer.id]["verdict"] == "picked" and shown[newer.id]["rating"] == 4
    assert shown[newer.id]["frame_ratings"] == {"1": 5}
    assert shown[newer.id]["label"] and shown[newer.id]["model"] == "seedream-4.5"
    large = decoded(shown[newer.id]["frames"][0]["large"])
    assert data["large"] == 1024 and max(large.size) == 1024  # the viewer shows the frame large
    sixteen_nine = next(r for r in data["runs"] if r["model"] == "seedream-4.0")
    assert decoded(sixteen_nine["frames"][0]["large"]).size == (1024, 576)
    from seqnb.images.report import report_data
    from seqnb.images.series import from_gallery

    assert seqnb_client.gallery is not None
    series = from_gallery(seqnb_client.gallery, [r.aio for r in runs])
    tight = report_data(series, title="t", large_budget=400_000)  # 16 frames: too many at 1024 for 400 kB
    assert 2 * 256 <= tight["large"] < 1024
    none = report_data(series, title="t", large_budget=20_000)
    assert none["large"] == 0 and all("large" not in f for r in none["runs"] for f in r["frames"])
