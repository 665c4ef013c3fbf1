"""Shared fixtures: a loopback Hugging Face Hub, an isolated weight folder, the test executor.

The pack is imported under its installed name ``dance_reenact``; tests/ is put on sys.path so
helper modules here (``hub_server``, ``executor``) import by plain name.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "scripts"))

from hub_server import HubServer  # noqa: E402


@pytest.fixture(autouse=True)
def _isolated_weights(tmp_path_factory, monkeypatch):
    """Every test gets its own empty weight folder and never talks to the real Hub."""
    root = tmp_path_factory.mktemp("weights")
    monkeypatch.setenv("DANCE_REENACT_MODELS", str(root))
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # discard port: nothing answers
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.setenv("HF_HOME", str(root / ".hf_home"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("DANCE_REENACT_OFFLINE", raising=False)
    yield root


@pytest.fixture
def weights_dir(_isolated_weights) -> Path:
    return _isolated_weights


@pytest.fixture
def hub(monkeypatch):
    """A loopback HTTP server speaking the Hub's resolve protocol; HF_ENDPOINT points at it."""
    server = HubServer()
    server.start()
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def astronaut():
    """skimage's astronaut photo, uint8 (512, 512, 3): a real, licence-free person."""
    from skimage import data

    return data.astronaut()


# Packages the suite needs (the `test` extra installs them). A missing one fails the run at
# start instead of silently skipping every test file that uses it.
REQUIRED_FOR_TESTS = ("mediapipe", "onnx", "onnxruntime")


def pytest_configure(config):
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    import importlib.util

    missing = [m for m in REQUIRED_FOR_TESTS if importlib.util.find_spec(m) is None]
    if missing:
        raise pytest.UsageError(
            f"the test suite needs {', '.join(missing)}: install the test extra "
            "(pip install -e '.[offline,test]', or bash scripts/dev.sh test)")


def pytest_collection_modifyitems(config, items):
    """``real_weights`` tests are opt-in: without ``-m`` naming them they are skipped at
    once (they would skip anyway without the files, but only after loading MediaPipe)."""
    if "real_weights" in (config.getoption("-m") or ""):
        return
    skip = pytest.mark.skip(reason="opt-in: run with -m real_weights")
    for item in items:
        if item.get_closest_marker("real_weights") is not None:
            item.add_marker(skip)
