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


def test_import_is_light_and_the_cli_answers_without_the_heavy_parts() -> None:
    import subprocess
    import sys

    heavy = ("pandas", "ipywidgets", "httpx", "PIL", "uvicorn", "numpy")
    code = (
        "import sys, seqnb, seqnb.cli; seqnb.cli.build_parser().format_help(); "
        f"print(sorted(m for m in {heavy!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    assert seqnb.Studio.__module__ == "seqnb.ui.studio"  # and every name still loads on first use
