"""The pack as ComfyUI sees it: imported from its folder under a foreign module name."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parents[1]


def _load_like_comfyui():
    """What ComfyUI's load_custom_node does: spec_from_file_location on <folder>/__init__.py
    with the folder path as module name and the folder as submodule search location."""
    name = str(ROOT).replace("/", "_").replace(".", "_x_")  # a foreign, odd module name
    spec = importlib.util.spec_from_file_location(
        name, ROOT / "__init__.py", submodule_search_locations=[str(ROOT)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def pack():
    return _load_like_comfyui()


def test_every_node_is_well_formed(pack):
    mappings = pack.NODE_CLASS_MAPPINGS
    assert len(mappings) >= 2
    for key, cls in mappings.items():
        types = cls.INPUT_TYPES()
        assert set(types) <= {"required", "optional", "hidden"}, key
        for section in ("required", "optional"):
            for name, spec in types.get(section, {}).items():
                assert isinstance(spec, tuple) and 1 <= len(spec) <= 2, (key, name)
                kind = spec[0]
                assert isinstance(kind, (str, list)), (key, name)
                if isinstance(kind, list):
                    assert kind and all(isinstance(v, str) for v in kind), (key, name)
                if len(spec) == 2:
                    assert isinstance(spec[1], dict), (key, name)
                    if "default" in spec[1] and isinstance(kind, list):
                        assert spec[1]["default"] in kind, (key, name)
        assert isinstance(cls.RETURN_TYPES, tuple), key
        names = getattr(cls, "RETURN_NAMES", None)
        if names is not None:
            assert len(names) == len(cls.RETURN_TYPES), key
        assert callable(getattr(cls, cls.FUNCTION)), key
        assert isinstance(cls.CATEGORY, str) and cls.CATEGORY.startswith("dance_reenact"), key
        assert key in pack.NODE_DISPLAY_NAME_MAPPINGS, key


def test_import_is_light_and_downloads_nothing(pack, weights_dir):
    assert list(weights_dir.iterdir()) == []


def test_comfyui_folder_paths_registration(monkeypatch, tmp_path):
    """Inside ComfyUI the pack adds models/dance_reenact, keeping existing extensions."""
    import types

    from dance_reenact.models.io import weights
    from dance_reenact.nodes import runtime

    fp = types.ModuleType("folder_paths")
    fp.models_dir = str(tmp_path)
    fp.folder_names_and_paths = {"dance_reenact": (["/elsewhere"], {".gguf"})}
    monkeypatch.setitem(sys.modules, "folder_paths", fp)
    before = list(weights._extra_roots)
    try:
        path = runtime.register_model_folder()
        paths, exts = fp.folder_names_and_paths["dance_reenact"]
        assert path == str(tmp_path / "dance_reenact")
        assert paths == ["/elsewhere", path]
        assert ".gguf" in exts and ".safetensors" in exts
        assert Path(path) in weights.search_roots()
    finally:
        weights._extra_roots[:] = before


def test_pyproject_lists_every_subpackage_and_needed_fields():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    listed = set(meta["tool"]["setuptools"]["packages"])
    found = {"dance_reenact"}
    for init in ROOT.rglob("__init__.py"):
        rel = init.parent.relative_to(ROOT)
        if rel.parts and rel.parts[0] in {"tests", ".venv", "build", "benchmarks"}:
            continue
        if rel.parts:
            found.add("dance_reenact." + ".".join(rel.parts))
    assert found == listed, f"pyproject packages differ: missing {found - listed}, " \
                            f"extra {listed - found}"
    assert {"PublisherId", "DisplayName", "Icon"} <= set(meta["tool"]["comfy"])
    assert "reenact" in meta["project"]["scripts"]
    deps = " ".join(meta["project"]["dependencies"])
    for dep in ("torch", "torchvision", "numpy", "pillow", "opencv-python", "safetensors",
                "huggingface-hub", "controlnet-aux"):
        assert dep in deps, dep
    assert any(d.startswith("mediapipe==0.10.21") for d in
               meta["project"]["optional-dependencies"]["offline"])


def test_no_absolute_imports_of_the_pack_inside_it():
    """ComfyUI has its own top-level `models`: the pack must import itself relatively."""
    bad = []
    for py in ROOT.rglob("*.py"):
        rel = py.relative_to(ROOT)
        if rel.parts[0] in {"tests", ".venv", "build", "benchmarks", "scripts", "training"}:
            continue
        for n, line in enumerate(py.read_text().splitlines(), 1):
            if re.match(r"\s*(from|import)\s+(models|nodes|dance_reenact)\b", line):
                bad.append(f"{rel}:{n}: {line.strip()}")
    assert not bad, "\n".join(bad)


def test_models_never_import_comfyui():
    for py in (ROOT / "models").rglob("*.py"):
        text = py.read_text()
        assert not re.search(r"^\s*(import|from)\s+(comfy|folder_paths)\b", text, re.M), py


def test_readme_and_node_reference_name_every_node():
    """The README's node table lists each node by display name; docs/nodes.md by display name
    and class name. Weights are checked against docs/weights.md in test_docs.py."""
    from dance_reenact.nodes import NODE_DISPLAY_NAME_MAPPINGS

    readme = (ROOT / "README.md").read_text()
    reference = (ROOT / "docs" / "nodes.md").read_text()
    for key, display in NODE_DISPLAY_NAME_MAPPINGS.items():
        short = display.replace(" (Dance Reenact)", "")
        assert f"| {short} |" in readme, f"node {short!r} missing from the README's node table"
        assert f"| {short} | `{key}` |" in reference, f"node {key} missing from docs/nodes.md"
    # CI runs .ci/run: it must be the README's test command
    assert "bash scripts/dev.sh demo" in readme and "bash scripts/dev.sh test" in readme
    assert "bash scripts/dev.sh test" in (ROOT / ".ci" / "run").read_text()


def test_ruff_is_clean():
    import shutil
    import subprocess

    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    res = subprocess.run([ruff, "check", str(ROOT)], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def test_every_output_of_every_node_has_a_tooltip_and_a_weightless_default():
    from dance_reenact.nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

    for key, cls in NODE_CLASS_MAPPINGS.items():
        tips = getattr(cls, "OUTPUT_TOOLTIPS", None)
        assert tips is not None and len(tips) == len(cls.RETURN_TYPES), key
        assert all(isinstance(t, str) and len(t) > 10 for t in tips), key
        assert key in NODE_DISPLAY_NAME_MAPPINGS, key
        # a node added from the menu downloads nothing until the user picks a learned backend
        spec = cls.INPUT_TYPES()
        for name in ("backend", "source"):
            entry = spec.get("required", {}).get(name)
            if entry and isinstance(entry[0], list):
                default = entry[1].get("default", entry[0][0])
                assert default in ("warp", "mediapipe", "geometric", "weightless",
                                   "opencv_telea", "patchmatch"), (key, default)
    # the display names say what a node does, after the paper's name
    names = NODE_DISPLAY_NAME_MAPPINGS
    assert names["DanceReenactP2B"].startswith("P2B · Body layout in the driver's pose")
    assert names["DanceReenactB2F"].startswith("B2F · Render the target in that pose")
