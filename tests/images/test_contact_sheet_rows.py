"""A contact sheet's row is as high as its pictures: a 16:9 series has its captions right under it (issue #23)."""

from __future__ import annotations

from pathlib import Path

import seqnb
from seqnb import Gallery, ImageCache
from seqnb.emulator import Faults
from seqnb.testing import emulator


def test_a_wide_row_has_no_gap_above_its_captions(tmp_path: Path) -> None:
    with emulator(queue_wait=0, service_time=0.05, faults=Faults(short=1.0, seed=2)) as emu:
        client = seqnb.connect(emu.token, emu.base_url, ledger=False, download=False)
        wide = client.submit(seqnb.Request("seedream-4.0", "Generate 4 images of a dune", count=4, size="16:9", seed=1))
        square = client.submit(
            seqnb.Request("seedream-4.0", "Generate 2 images of a dune", count=2, size="1:1", seed=2)
        )
        client.wait_all(timeout=30)
        gallery = Gallery(ImageCache(tmp_path / "c"))
        assert len(wide.images) < 4  # the short fault: the missing frames are placeholders in the wide row
        size, label_h, caption_h, pad = 96, 16, 14, 4
        one = gallery.sheet(wide, size=size)
        assert one.height == pad + label_h + 54 + caption_h + pad  # 96 x 54 tiles, placeholders as wide as them
        top = pad + label_h + 54
        band = [one.getpixel((x, y)) for x in range(pad, pad + size) for y in range(top, top + caption_h)]
        assert any(p != (255, 255, 255) for p in band)  # the captions are right under the pictures
        both = gallery.sheet([wide, square], size=size)
        assert both.height == pad + (label_h + 54 + caption_h + pad) + (label_h + 96 + caption_h + pad)
        client.close()
