"""The layering rules, read from the source (ast), so a violation anywhere (even an import inside
a function) fails: models/ never imports nodes/, training/, the CLI or evaluate; nodes/ never
imports training/; and neither imports ComfyUI at module level outside nodes' guarded hooks."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "dance_reenact"


def imported_modules(py: Path, root: Path = ROOT) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in ``py``, relative ones resolved."""
    rel = py.relative_to(root).with_suffix("")
    parts = [PACKAGE] + list(rel.parts)
    pkg = parts[:-1] if parts[-1] != "__init__" else parts[:-1]
    out = []
    for node in ast.walk(ast.parse(py.read_text(), str(py))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg[:len(pkg) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            out.append((node.lineno, name))
            if node.module is None:  # from . import x: x may be a module
                out += [(node.lineno, f"{name}.{a.name}") for a in node.names]
    return out


def violations(folder: str, forbidden: tuple[str, ...], root: Path = ROOT) -> list[str]:
    bad = []
    for py in sorted((root / folder).rglob("*.py")):
        for line, mod in imported_modules(py, root):
            for f in forbidden:
                if mod == f or mod.startswith(f + "."):
                    bad.append(f"{py.relative_to(root)}:{line} imports {mod}")
    return bad


def test_the_resolver_sees_relative_imports():
    # a known import of the library, relative two levels up from models/perception/
    mods = [m for _, m in imported_modules(ROOT / "models" / "perception" / "pose.py")]
    assert any(m.startswith("dance_reenact.models.") for m in mods), mods


def test_models_import_no_nodes_training_cli_or_pipeline():
    forbidden = tuple(f"{PACKAGE}.{m}" for m in ("nodes", "training", "cli", "pipeline"))
    assert violations("models", forbidden) == []


def test_nodes_never_import_training_or_the_cli():
    assert violations("nodes", (f"{PACKAGE}.training", f"{PACKAGE}.cli")) == []


def test_the_pipeline_driver_uses_only_the_library():
    # pipeline.py (the CLI's and the streaming node's driver) chains library functions
    forbidden = tuple(f"{PACKAGE}.{m}" for m in ("nodes", "training", "cli"))
    mods = [m for _, m in imported_modules(ROOT / "pipeline.py")]
    assert not [m for m in mods if any(m == f or m.startswith(f + ".") for f in forbidden)]
    assert any(m.startswith(f"{PACKAGE}.models.") for m in mods)


def test_library_rooms_exist():
    # the library is grouped by role; no loose module besides the stage functions
    loose = sorted(p.name for p in (ROOT / "models").glob("*.py"))
    assert loose == ["__init__.py", "stages.py"], loose
    for room in ("core", "networks", "perception", "compositing", "geometry", "metrics", "io"):
        assert (ROOT / "models" / room / "__init__.py").is_file(), room


def test_a_violation_is_caught(tmp_path):
    # the checker itself: a models file importing the nodes inside a function is reported
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "probe.py").write_text("def f():\n    from ..nodes import sockets\n")
    bad = violations("models", (f"{PACKAGE}.nodes",), root=tmp_path)
    assert bad == ["models/probe.py:2 imports dance_reenact.nodes"]
