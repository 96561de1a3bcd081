from __future__ import annotations

import seqnb


def test_all_is_complete() -> None:
    for name in seqnb.__all__:
        assert hasattr(seqnb, name), name
    public = {
        n
        for n in dir(seqnb)
        if not n.startswith("_") and n != "annotations" and not isinstance(getattr(seqnb, n), type(seqnb))
    }
    assert public - set(seqnb.__all__) == set(), "exported names missing from __all__"
