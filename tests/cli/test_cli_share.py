"""`seqnb report` and `seqnb export` as a user runs them: real processes on a ledger the emulator filled."""

from __future__ import annotations

from pathlib import Path

import seqnb

from .test_cli_run import seqnb_cli


def test_report_and_export_from_the_command_line(seqnb_client: seqnb.Client, tmp_path: Path) -> None:
    runs = seqnb_client.sweep(prompts=["Generate 2 images of a heron"], seeds=[1, 2, 3], quiet=True)
    seqnb_client.wait_all(runs, timeout=30)
    seqnb_client.settle()
    runs[2].pick()
    assert seqnb_client.ledger is not None
    ledger = str(seqnb_client.ledger.location)
    proc = seqnb_cli("report", str(tmp_path / "r.html"), "--ledger", ledger, "--sweep", str(runs[0].sweep_id))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"wrote {tmp_path / 'r.html'} (") and "no network needed" in proc.stdout
    page = (tmp_path / "r.html").read_text()
    assert all(r.id in page for r in runs)
    proc = seqnb_cli("export", str(tmp_path / "picked"), "--ledger", ledger, "--picked")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"wrote 2 image(s) and runs.csv into {tmp_path / 'picked'}"
    assert sorted(p.name for p in (tmp_path / "picked").iterdir()) == [
        f"{runs[2].id}-01of02.png", f"{runs[2].id}-02of02.png", "runs.csv"
    ]  # fmt: skip
    proc = seqnb_cli("report", str(tmp_path / "none.html"), "--ledger", ledger, "--since", "2099-01-01")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert proc.stderr.startswith("error: no run in ") and "since='2099-01-01'" in proc.stderr
    assert not (tmp_path / "none.html").exists()


def test_a_report_with_its_images_beside_names_their_folder(seqnb_client: seqnb.Client, tmp_path: Path) -> None:
    runs = seqnb_client.sweep(prompts=["Generate 2 images of a heron"], seeds=[1, 2], quiet=True)
    seqnb_client.wait_all(runs, timeout=30)
    seqnb_client.settle()
    runs[1].pick()
    assert seqnb_client.ledger is not None
    page = tmp_path / "x.html"
    proc = seqnb_cli("report", str(page), "--picked", "--full", "beside", "--ledger", str(seqnb_client.ledger.location))
    assert proc.returncode == 0, proc.stderr
    folder = tmp_path / "x_files"
    pngs = sorted(p.name for p in folder.glob("*.png"))
    assert len(pngs) == 2 and all(f'"x_files/{name}"' in page.read_text() for name in pngs)  # what the page shows
    assert f"and its full-size images in {folder}/ (2 PNGs, " in proc.stdout
    assert "keep it beside the page" in proc.stdout
