"""The suite's hard requirements: a missing mediapipe / onnx / onnxruntime stops the run at
start (tests/conftest.py) instead of skipping the files that need them."""

from __future__ import annotations

import sys

import pytest


@pytest.mark.parametrize("name", ["mediapipe", "onnx", "onnxruntime"])
def test_a_missing_test_requirement_fails_the_run(monkeypatch, name):
    import conftest

    monkeypatch.setitem(sys.modules, name, None)  # find_spec now reports it absent
    with pytest.raises(pytest.UsageError, match=f"the test suite needs {name}"):
        conftest.pytest_configure(None)


def test_no_test_file_skips_on_a_missing_package():
    from pathlib import Path

    for f in Path(__file__).parent.glob("test_*.py"):
        if f.name != Path(__file__).name:
            assert "importorskip" not in f.read_text(), f.name
