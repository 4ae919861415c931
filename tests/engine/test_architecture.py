"""engine/ never imports Qt, ui or app, and works where PySide6 is not installed."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = ("PySide6", "shiboken6", "PyQt5", "PyQt6", "ui", "app")


def test_engine_source_has_no_forbidden_imports() -> None:
    offenders = []
    for file in sorted((ROOT / "engine").rglob("*.py")):
        for node in ast.walk(ast.parse(file.read_text(), str(file))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            offenders += [
                f"{file.relative_to(ROOT)}: {n}" for n in names if n.split(".")[0] in FORBIDDEN
            ]
    assert not offenders


BLOCK_QT = """
import importlib.abc, pkgutil, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('PySide6', 'shiboken6', 'ui', 'app'):
            raise ImportError(f'{name} is blocked for this test')
sys.meta_path.insert(0, Block())
import engine
for mod in pkgutil.walk_packages(engine.__path__, 'engine.'):
    __import__(mod.name)
assert not any(m.split('.')[0] in ('PySide6', 'shiboken6') for m in sys.modules)
print('imported', len([m for m in sys.modules if m.startswith('engine')]))
"""


def test_every_engine_module_imports_without_pyside6() -> None:
    result = subprocess.run(
        [sys.executable, "-c", BLOCK_QT], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "imported" in result.stdout


# -- import circles and the models package's face ---------------------------------------------


def module_name(file: Path, root: Path) -> str:
    parts = list(file.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(file: Path, root: Path, known: set[str]) -> set[str]:
    """Every module of `known` that `file` imports, wherever the import stands (in a function,
    under TYPE_CHECKING): a circle hidden in a function is still a circle. Importing a package's
    module runs the package's __init__ first, so that counts too, except for the importer's
    own packages, unless named (a package's __init__ importing its modules is how packages
    work; a module importing its own package's face is a circle)."""
    me = module_name(file, root)
    package = me if file.name == "__init__.py" else me.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"), str(file))):
        if isinstance(node, ast.Import):
            targets.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                targets.add(sub if sub in known else base)
    found = {t for t in targets if t in known}
    mine = {".".join(me.split(".")[:i]) for i in range(1, me.count(".") + 2)}
    for target in targets:
        parts = target.split(".")
        for i in range(1, len(parts)):
            package_init = ".".join(parts[:i])
            if package_init in known and package_init not in mine:
                found.add(package_init)
    return found


def import_circles(root: Path, top: str) -> list[list[str]]:
    """The import circles among the modules of package `top` under `root` (Tarjan's strongly
    connected components with more than one module, or a module importing itself)."""
    files = {module_name(f, root): f for f in sorted((root / top).rglob("*.py"))}
    known = set(files)
    graph = {m: imports_of(f, root, known) for m, f in files.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(m: str) -> None:
        index[m] = low[m] = len(index)
        stack.append(m)
        on_stack.add(m)
        for n in sorted(graph[m]):
            if n not in index:
                visit(n)
                low[m] = min(low[m], low[n])
            elif n in on_stack:
                low[m] = min(low[m], index[n])
        if low[m] == index[m]:
            component = []
            while True:
                n = stack.pop()
                on_stack.discard(n)
                component.append(n)
                if n == m:
                    break
            if len(component) > 1 or m in graph[m]:
                circles.append(sorted(component))

    for m in sorted(graph):
        if m not in index:
            visit(m)
    return circles


def test_the_circle_finder_finds_circles_in_functions_and_through_packages(tmp_path) -> None:
    pkg = tmp_path / "demo"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from demo.sub import inner\n")
    (pkg / "sub" / "inner.py").write_text("X = 1\n")
    (pkg / "a.py").write_text("def f():\n    from demo import b\n")
    (pkg / "b.py").write_text("from . import a\n")
    (pkg / "c.py").write_text("from demo.sub import inner\n")  # runs demo.sub's __init__
    assert import_circles(tmp_path, "demo") == [["demo.a", "demo.b"]]
    (pkg / "sub" / "inner.py").write_text("import demo.c\n")
    assert sorted(import_circles(tmp_path, "demo")) == [
        ["demo.a", "demo.b"],
        ["demo.c", "demo.sub", "demo.sub.inner"],
    ]


def test_the_engine_has_no_import_circle() -> None:
    assert import_circles(ROOT, "engine") == []


FACE_USERS = ("app", "ui", "engine")


def test_only_engine_models_itself_reaches_past_its_face() -> None:
    """ui/, app/ and the rest of the engine import `engine.models`, never its modules."""
    known = {module_name(f, ROOT) for f in (ROOT / "engine" / "models").rglob("*.py")}
    offenders = []
    for top in FACE_USERS:
        for file in sorted((ROOT / top).rglob("*.py")):
            if file.is_relative_to(ROOT / "engine" / "models"):
                continue
            for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"), str(file))):
                names: list[str] = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module:
                    names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
                offenders += [
                    f"{file.relative_to(ROOT)}: {n}"
                    for n in names
                    if n in known and n != "engine.models"
                ]
    assert not offenders
