"""Install files a ComfyUI user relies on: requirements.txt must never pull torch (it would
replace ComfyUI's CUDA build) and must list every other runtime dependency of pyproject.toml;
the LICENSE is the one pyproject names."""

from __future__ import annotations

from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]


def test_requirements_txt_is_pyproject_without_torch():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [d for d in project["dependencies"]
              if d.split(">")[0].split("=")[0].split("<")[0].strip() not in ("torch",
                                                                            "torchvision")]
    lines = [ln.strip() for ln in (ROOT / "requirements.txt").read_text().splitlines()
             if ln.strip() and not ln.lstrip().startswith("#")]
    assert not any(ln.startswith(("torch", "torchvision")) for ln in lines), lines
    assert sorted(lines) == sorted(wanted)


def test_license_file_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"]["text"] == "Apache-2.0"
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0" in text
