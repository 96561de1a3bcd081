"""A faceted matrix in a notebook executed by a real kernel (nbclient), then converted as GitHub or nbviewer would
show it (nbconvert): every series of every table is in the copy, with its marks, its frames in order."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.notebook_cells import run_offline

pytestmark = pytest.mark.slow

SESSION = [
    "import seqnb\n\n"
    "client = seqnb.connect(ledger='saved-ledger.sqlite')\n"
    "runs = client.sweep(prompts=['Generate 3 images of a kite, in ink', 'Generate 3 images of a kite, in oil'],\n"
    "                    seeds=[1, 2], models=['seedream-4.0', 'seedream-4.5'], quiet=True)\n"
    "client.wait_all(runs, timeout=120)\n"
    "client.settle()\n"
    "runs[0].pick(); runs[0].rate(4); runs[0].rate(5, frame=2); runs[5].reject(); runs[6].pick()",
    'seqnb.matrix(runs, rows="prompt", cols="seed", facet="model")',
]


def test_the_saved_copy_of_a_two_facet_matrix_holds_every_series_and_its_marks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nbconvert import HTMLExporter

    nb = run_offline(SESSION, tmp_path, monkeypatch, store_widget_state=False)
    assert not [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    (output,) = nb.cells[-1].outputs
    assert {"application/vnd.jupyter.widget-view+json", "text/html"} <= set(output["data"])
    page, _ = HTMLExporter().from_notebook_node(nb)  # as nbviewer shows it: no kernel, no widget state
    assert "model: seedream-4.0" in page and "model: seedream-4.5" in page  # both tables, not the page shown
    strips = re.findall(r"<table><tr>((?:<td><img [^>]*/?><br/?><small>[^<]*</small></td>)+)</tr></table>", page)
    assert len(strips) == 8  # every series of both tables, each a row of frames that cannot wrap
    assert all(re.findall(r"<small>(\d)/3", strip) == ["1", "2", "3"] for strip in strips)  # in order
    assert page.count("✔ picked") == 2 and page.count("✘ rejected") == 1 and "★★★★☆" in page and "3/3 ★5" in page
    assert "8 series in 2 tables (model), all 2 shown" in page
