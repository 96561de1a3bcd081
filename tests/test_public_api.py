from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path
from types import ModuleType

import pytest

import seqnb
import seqnb.emulator


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

    heavy = ("pandas", "ipywidgets", "httpx", "aiohttp", "PIL", "uvicorn", "numpy")
    code = (
        "import sys, seqnb, seqnb.cli; seqnb.cli.build_parser().format_help(); "
        f"print(sorted(m for m in {heavy!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    assert seqnb.Studio.__module__ == "seqnb.ui.studio"  # and every name still loads on first use


def _type_checking_imports(path: Path) -> dict[str, str]:
    """name -> relative module, from the ``if TYPE_CHECKING:`` block of a package's ``__init__``."""
    tree = ast.parse(path.read_text())
    found: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for imp in node.body:
                assert isinstance(imp, ast.ImportFrom), ast.unparse(imp)
                for alias in imp.names:
                    assert alias.asname == alias.name, f"{alias.name}: write 'import X as X' (an explicit re-export)"
                    found[alias.name] = "." * imp.level + (imp.module or "")
    return found


@pytest.mark.parametrize("package", [seqnb, seqnb.emulator], ids=["seqnb", "seqnb.emulator"])
def test_the_public_surface_is_written_once(package: ModuleType) -> None:
    """``_EXPORTS`` is the list; ``__all__`` is made from it, and the type-checking imports must agree with it."""
    exports: dict[str, str] = package._EXPORTS
    assert set(package.__all__) - {"__version__"} == set(exports)
    assert _type_checking_imports(Path(package.__file__)) == exports  # same names, same modules
    for name, module in exports.items():
        value = getattr(package, name)
        home = importlib.import_module(module, package.__name__)
        assert getattr(home, name) is value
        defined = getattr(value, "__module__", None)
        if defined and defined.startswith("seqnb"):
            assert defined == home.__name__, f"{name} is defined in {defined}, not in {home.__name__}: no shims"


def test_the_agreement_check_sees_a_name_missing_from_the_type_checking_block(tmp_path: Path) -> None:
    init = tmp_path / "__init__.py"
    init.write_text("if TYPE_CHECKING:\n    from .a import X as X\n")
    assert _type_checking_imports(init) == {"X": ".a"} != {"X": ".a", "Y": ".b"}


def test_the_surface_is_small_and_old_names_still_work_for_a_release_with_a_warning() -> None:
    assert len(seqnb._EXPORTS) <= 40, "the public surface is at most 40 names (issue #29)"
    assert not set(seqnb._RENAMED) & set(seqnb._EXPORTS)
    for old, (module, new, instead) in seqnb._RENAMED.items():
        with pytest.warns(DeprecationWarning, match=rf"seqnb\.{old} is deprecated .* use {re.escape(instead)}"):
            value = getattr(seqnb, old)
        assert value is getattr(importlib.import_module(module), new), old
        assert old not in dir(seqnb) and old not in seqnb.__all__
    with pytest.warns(DeprecationWarning, match="use seqnb.WaitTimeout"):
        assert seqnb.errors.Timeout is seqnb.WaitTimeout  # the errors module keeps its own old names too
    with pytest.raises(AttributeError, match="no attribute 'Nonesuch'"):
        seqnb.Nonesuch  # noqa: B018


def test_the_error_tree_has_one_of_each_kind() -> None:
    """One "not found", one "refused by the service", one "invalid before sending", one "timed out waiting"."""
    assert issubclass(seqnb.errors.UnknownModelError, seqnb.NotFound) and issubclass(
        seqnb.errors.ModelNotFound, seqnb.NotFound
    )
    assert issubclass(seqnb.errors.RequestNotFound, seqnb.NotFound)
    for refusal in ("InputRejected", "InsufficientBalance", "PermissionDenied"):
        assert issubclass(getattr(seqnb.errors, refusal), seqnb.Refused)
    assert issubclass(seqnb.errors.SweepInvalid, seqnb.RequestInvalid)
    assert issubclass(seqnb.WaitTimeout, TimeoutError) and seqnb.WaitTimeout.__name__ != "Timeout"
    assert issubclass(seqnb.errors.CallTimeout, seqnb.TransportError)
    for name in ("DuplicateSubmitWarning",):
        assert issubclass(getattr(seqnb, name), seqnb.SeqnbWarning)


def test_the_docs_and_notebooks_use_no_name_that_left_the_surface() -> None:
    root = Path(__file__).parents[1]
    texts = [root / "README.md", *(root / "docs").glob("*.md"), *(root / "notebooks").glob("*.ipynb")]
    old = "|".join(map(re.escape, seqnb._RENAMED))
    found = [
        f"{path.name}: {m.group(0)}"
        for path in texts
        for m in re.finditer(rf"\bseqnb\.(?:{old})\b", path.read_text(encoding="utf-8"))
    ]
    assert not found, f"a reader would copy a deprecated name: {found}"
