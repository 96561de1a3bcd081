"""A hostile team ledger against export and report: nothing written outside, no other file read, nothing deleted.

Any member of a team ledger can write its rows. Here a run's id is a path (``../escaped/PWNED``), an
image row names a secret text file and another names a PNG outside every image cache, and a user's own
``NAME_files/`` folder (the name a browser's "save page, complete" uses) waits beside the report.
"""

from __future__ import annotations

import base64
import sqlite3
from pathlib import Path

import pytest
from PIL import Image

import seqnb
from seqnb.cli import main
from seqnb.errors import SeqnbError
from seqnb.images.export import file_stem, frame_file
from seqnb.images.series import OUTSIDE
from seqnb.images.share import report_ledger
from tests.images.test_report import page_data

TRAVERSAL = "../escaped/PWNED"
SECRET = "canary-7f3a9c: the contents of a private file"


def files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


@pytest.fixture
def hostile(seqnb_client: seqnb.Client, tmp_path: Path) -> dict[str, str]:
    """Three completed runs of 2 frames: one renamed to a path, one whose frames name files outside every cache."""
    runs = seqnb_client.sweep(prompts=["Generate 2 images of a heron"], seeds=[1, 2, 3], quiet=True)
    seqnb_client.wait_all(runs, timeout=30)
    seqnb_client.settle()
    ledger = seqnb_client.ledger
    assert ledger is not None and ledger.path is not None
    (tmp_path / "escaped").mkdir()
    (tmp_path / "secret.txt").write_text(SECRET)
    Image.new("RGB", (64, 48), (1, 2, 3)).save(tmp_path / "loose.png")  # an image, but in no cache
    with sqlite3.connect(ledger.path) as db:
        db.execute("UPDATE runs SET id=? WHERE id=?", (TRAVERSAL, runs[0].id))
        db.execute("UPDATE images SET run_id=? WHERE run_id=?", (TRAVERSAL, runs[0].id))
        db.execute("UPDATE images SET path=? WHERE run_id=? AND idx=0", (str(tmp_path / "secret.txt"), runs[1].id))
        db.execute("UPDATE images SET path=? WHERE run_id=? AND idx=1", (str(tmp_path / "loose.png"), runs[1].id))
    return {"traversal": TRAVERSAL, "outside": runs[1].id, "plain": runs[2].id, "ledger": str(ledger.path)}


def test_a_run_id_is_never_a_path() -> None:
    assert file_stem("0a1b2c3d4e5f") == "0a1b2c3d4e5f"
    for hostile in (TRAVERSAL, "../../../../tmp/x/PWNED", "a/b", "..", "x" * 65, "C:\\x", "a\x00b", "\u202egnp.exe"):
        stem = file_stem(hostile)
        assert stem.startswith("run-") and len(stem) == 20 and stem.replace("-", "").isalnum()
    assert file_stem("../a") != file_stem("../b")
    assert frame_file("../../../../tmp/x/PWNED", 0, 2).startswith("run-") and "/" not in frame_file("../x", 1, 2)


def test_export_writes_only_inside_its_folder_reads_only_cached_images_and_goes_on(
    seqnb_client: seqnb.Client, hostile: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert main(["export", str(out), "--ledger", hostile["ledger"]]) == 0  # it used to abort on the secret file
    said = capsys.readouterr().out
    assert "wrote 4 image(s) and runs.csv" in said and "2 frame(s) had no image to write" in said
    assert files_under(tmp_path / "escaped") == set()  # nothing written beside the folder named
    written = files_under(out)
    assert all(p.parent == out for p in written)
    assert {p.name for p in written} >= {frame_file(TRAVERSAL, 0, 2), frame_file(hostile["plain"], 1, 2)}
    assert not any(p.name.startswith(hostile["outside"]) for p in written)  # neither the text nor the loose PNG
    blob = b"".join(p.read_bytes() for p in written)
    assert SECRET.encode() not in blob


@pytest.mark.parametrize("full", ["embed", "beside"])
def test_a_report_writes_only_inside_its_folder_and_embeds_no_file_outside_the_cache(
    seqnb_client: seqnb.Client, hostile: dict[str, str], tmp_path: Path, full: str
) -> None:
    ledger = seqnb_client.ledger
    assert ledger is not None
    target = report_ledger(ledger, tmp_path / "site" / "r.html", full=full)  # type: ignore[arg-type]
    assert files_under(tmp_path / "escaped") == set()
    for path in files_under(tmp_path / "site"):
        assert path.parent in (tmp_path / "site", tmp_path / "site" / "r_files")
    page = target.read_text()
    for secret in (SECRET, base64.b64encode(SECRET.encode()).decode(), str(tmp_path)):
        assert secret not in page
    assert base64.b64encode((tmp_path / "loose.png").read_bytes()).decode() not in page  # nor the loose PNG
    (outside,) = [r for r in page_data(page)["runs"] if r["id"] == hostile["outside"]]
    assert [(f["state"], f["reason"], "full" in f) for f in outside["frames"]] == [("outside", OUTSIDE, False)] * 2
    if full == "beside":
        names = {p.name for p in (tmp_path / "site" / "r_files").iterdir()}
        assert frame_file(TRAVERSAL, 0, 2) in names and len(names) == 4 + 1  # 4 frames and seqnb's mark


def test_gallery_save_of_a_restored_hostile_run_stays_in_its_folder(
    seqnb_client: seqnb.Client, hostile: dict[str, str], tmp_path: Path
) -> None:
    ledger, gallery = seqnb_client.ledger, seqnb_client.gallery
    assert ledger is not None and gallery is not None
    saved = gallery.save(ledger.restore(TRAVERSAL), tmp_path / "saved")  # what `seqnb run --out` calls
    assert [p.name for p in saved] == [frame_file(TRAVERSAL, 0, 2), frame_file(TRAVERSAL, 1, 2)]
    assert all(p.parent == tmp_path / "saved" for p in saved) and files_under(tmp_path / "escaped") == set()


def test_a_files_folder_seqnb_did_not_make_is_never_deleted(
    seqnb_client: seqnb.Client, hostile: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ledger = seqnb_client.ledger
    assert ledger is not None
    mine = tmp_path / "page_files"
    mine.mkdir()
    (mine / "saved-by-the-browser.css").write_text("body{}")
    (mine / "x-01of02.png").write_bytes(b"a user's file named like a frame")
    with pytest.raises(SeqnbError, match="page_files already exists and seqnb did not make it") as refused:
        report_ledger(ledger, tmp_path / "page.html", full="beside", ids=[hostile["plain"]])
    assert "another name" in str(refused.value) and "remove that folder" in str(refused.value)
    assert sorted(p.name for p in mine.iterdir()) == ["saved-by-the-browser.css", "x-01of02.png"]
    assert not (tmp_path / "page.html").exists()
    cli = ["report", str(tmp_path / "page.html"), "--full", "--ledger", hostile["ledger"], "--ids", hostile["plain"]]
    assert main(cli) == 2
    assert "page_files already exists and seqnb did not make it" in capsys.readouterr().err
    assert sorted(p.name for p in mine.iterdir()) == ["saved-by-the-browser.css", "x-01of02.png"]
    (tmp_path / "file_files").write_text("a file, not a folder")
    with pytest.raises(SeqnbError, match="file_files already exists"):
        report_ledger(ledger, tmp_path / "file.html", full="beside", ids=[hostile["plain"]])


def test_seqnbs_own_files_folder_is_written_again_keeping_what_a_user_added(
    seqnb_client: seqnb.Client, hostile: dict[str, str], tmp_path: Path
) -> None:
    ledger = seqnb_client.ledger
    assert ledger is not None
    report_ledger(ledger, tmp_path / "r.html", full="beside", ids=[hostile["plain"]])
    folder = tmp_path / "r_files"
    (folder / "notes.txt").write_text("mine")
    report_ledger(ledger, tmp_path / "r.html", full="beside", ids=[TRAVERSAL])
    names = sorted(p.name for p in folder.iterdir())
    assert names == sorted([".seqnb-report", "notes.txt", frame_file(TRAVERSAL, 0, 2), frame_file(TRAVERSAL, 1, 2)])
