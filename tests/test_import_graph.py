"""The code has the shape docs/DESIGN.md draws: every module in a layer and in the table, no import of a higher layer
(under TYPE_CHECKING too), no cycle, lazy, for type checkers or not."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).parents[1]
PACKAGE = ROOT / "seqnb"


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def imports(name: str, path: Path, known: dict[str, Path]) -> tuple[set[str], set[str], set[str]]:
    """(module-level imports, imports inside functions, imports for type checkers only) of seqnb modules."""
    tree = ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    top: set[str] = set()
    inner: set[str] = set()
    typing: set[str] = set()

    def target(node: ast.ImportFrom, alias: ast.alias) -> str:
        base = node.module or ""
        if node.level:
            parts = package.split(".")
            base = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
        full = f"{base}.{alias.name}"
        return full if full in known else base

    def visit(node: ast.AST, into: set[str]) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                visit(child, typing)
                continue
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                visit(child, inner)
                continue
            if isinstance(child, ast.ImportFrom):
                into.update(t for a in child.names if (t := target(child, a)).split(".")[0] == "seqnb")
            elif isinstance(child, ast.Import):
                into.update(a.name for a in child.names if a.name.split(".")[0] == "seqnb")
            visit(child, into)

    visit(tree, top)
    return top - {name}, inner - {name} - top, typing - {name} - top - inner


def design() -> tuple[dict[str, int], set[tuple[str, str]]]:
    text = (ROOT / "docs" / "DESIGN.md").read_text()
    layers_block = re.search(r"```layers\n(.*?)```", text, re.S)
    allowed_block = re.search(r"```allowed-upward\n(.*?)```", text, re.S)
    assert layers_block and allowed_block, "docs/DESIGN.md lost its layers or allowed-upward block"
    layers = {}
    for line in layers_block.group(1).strip().splitlines():
        number, _, rest = line.partition(" ")
        for entry in rest.partition(":")[2].split():
            layers[entry if entry == "seqnb" else f"seqnb.{entry}"] = int(number)
    allowed = set()
    for line in filter(None, allowed_block.group(1).strip().splitlines()):
        source, _, rest = line.partition("->")
        allowed.add((f"seqnb.{source.strip()}", f"seqnb.{rest.split()[0]}"))
    return layers, allowed


def layer_of(name: str, layers: dict[str, int]) -> int | None:
    """The layer of a module: its own entry, else its package's (``seqnb.ui.studio`` is in ``ui``)."""
    while name:
        if name in layers:
            return layers[name]
        name = name.rpartition(".")[0]
    return None


def test_every_module_is_placed_and_no_import_goes_up_unlisted() -> None:
    known = modules()
    layers, allowed = design()
    unplaced = sorted(n for n in known if layer_of(n, layers) is None)
    assert not unplaced, f"add these modules to the layers in docs/DESIGN.md: {unplaced}"
    upward = []
    for name, path in known.items():
        top, inner, typing = imports(name, path, known)
        for dep in top | inner | typing:
            mine, theirs = layer_of(name, layers), layer_of(dep, layers)
            assert mine is not None and theirs is not None, dep
            if theirs > mine and not any(name.startswith(src) and dep.startswith(dst) for src, dst in allowed):
                where = " (inside a function)" if dep in inner else " (for type checkers)" if dep in typing else ""
                upward.append(f"{name} -> {dep}{where}")
            if theirs > mine and dep in top:
                upward.append(f"{name} -> {dep} at module level (allowed only inside a function)")
    assert not upward, "imports that go up, not listed in docs/DESIGN.md:\n" + "\n".join(sorted(upward))


def test_every_listed_upward_import_is_made() -> None:
    """A line in allowed-upward that no module uses any more is a stale excuse: remove it."""
    known = modules()
    _, allowed = design()
    made = {(name, dep) for name, path in known.items() for dep in set().union(*imports(name, path, known))}
    stale = sorted(
        f"{src} -> {dst}" for src, dst in allowed if not any(n.startswith(src) and d.startswith(dst) for n, d in made)
    )
    assert not stale, f"docs/DESIGN.md lists upward imports nobody makes: {stale}"


def test_every_module_has_a_row_in_the_design_table() -> None:
    table = re.search(r"## Modules\n(.*?)\n## ", (ROOT / "docs" / "DESIGN.md").read_text(), re.S)
    assert table, "docs/DESIGN.md lost its modules table"
    named = set(re.findall(r"`([\w/]+(?:\.py|/))`", table.group(1)))
    missing = []
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE)
        if rel.name in ("__init__.py", "__main__.py") and len(rel.parts) > 1:
            continue
        if rel.name == "__init__.py":
            continue
        folders = {"/".join(rel.parts[:i]) + "/" for i in range(1, len(rel.parts))}
        if str(rel) not in named and not folders & named:
            missing.append(str(rel))
    assert not missing, f"say in the modules table of docs/DESIGN.md what these do: {sorted(missing)}"


def test_the_picture_of_the_layers_shows_every_module() -> None:
    text = (ROOT / "docs" / "DESIGN.md").read_text()
    picture = re.search(r"```\n( +\d+ cli .*?)```", text, re.S)
    assert picture, "docs/DESIGN.md lost its picture of the layers"
    drawn = set(re.findall(r"[\w]+", picture.group(1)))
    stems = {p.stem if p.name != "__init__.py" else p.parent.name for p in PACKAGE.rglob("*.py")} - {
        "__main__",
        "seqnb",
    }
    missing = sorted(stems - drawn)
    assert not missing, f"draw these modules in the picture in docs/DESIGN.md: {missing}"


def test_a_module_lists_in_all_only_what_it_defines() -> None:
    """No re-export shims: a name is imported from where it is defined (package ``__init__`` files excepted)."""
    shims = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "__init__.py":
            continue
        tree = ast.parse(path.read_text())
        imported = {
            (a.asname or a.name)
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("seqnb"))
            for a in node.names
        }
        for node in tree.body:
            if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "__all__" for t in node.targets):
                listed = {e.value for e in getattr(node.value, "elts", []) if isinstance(e, ast.Constant)}
                shims += [f"{path.relative_to(ROOT)}: {n}" for n in sorted(listed & imported)]
    assert not shims, "these modules re-export names defined elsewhere; import them from their home:\n" + "\n".join(
        shims
    )


def test_no_cycle_lazy_or_not() -> None:
    """No two modules import each other, at module level, inside a function or for type checkers only (a module that
    needs the type of its caller states what it uses as a Protocol)."""
    known = modules()
    graph = {name: set().union(*imports(name, path, known)) for name, path in known.items()}
    done: set[str] = set()

    def visit(name: str, trail: list[str]) -> None:
        if name in trail:
            raise AssertionError("import cycle: " + " -> ".join([*trail[trail.index(name) :], name]))
        if name in done:
            return
        for dep in sorted(graph.get(name, ())):
            visit(dep, [*trail, name])
        done.add(name)

    for name in sorted(graph):
        visit(name, [])


def test_the_graph_test_sees_upward_and_circular_imports(tmp_path: Path) -> None:
    """The checks above can fail: fed a made-up package with a cycle and an upward import, they find both."""
    pkg = tmp_path / "seqnb"
    (pkg / "model").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "model" / "__init__.py").write_text("")
    (pkg / "model" / "spec.py").write_text("from ..cli import main\n")
    (pkg / "cli.py").write_text("from .model.spec import x\n")
    known = {"seqnb.model.spec": pkg / "model" / "spec.py", "seqnb.cli": pkg / "cli.py"}
    top, _, _ = imports("seqnb.model.spec", pkg / "model" / "spec.py", known)
    assert top == {"seqnb.cli"}  # the model (layer 1) importing cli (layer 10): upward, and a cycle with cli -> model
    assert imports("seqnb.cli", pkg / "cli.py", known)[0] == {"seqnb.model.spec"}
    layers, _ = design()
    assert layer_of("seqnb.cli", layers) > layer_of("seqnb.model.spec", layers)  # type: ignore[operator]
