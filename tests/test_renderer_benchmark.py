"""benchmarks/renderer.py's command: which inputs it analyses, what it measures on which pairs
and the markdown it writes, with every measurement replaced by a stand-in (the real ones need
the dev clips, MediaPipe and minutes)."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = Path(__file__).parent / "data" / "renderer_benchmark.md"


def _load():
    spec = importlib.util.spec_from_file_location("bench_renderer",
                                                  ROOT / "benchmarks" / "renderer.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["bench_renderer"] = mod
    spec.loader.exec_module(mod)
    return mod


def _stand_ins(mod, monkeypatch, calls):
    """Deterministic stand-ins for the analyses and measurements; ``calls`` records them."""

    def read_frames(path, limit=None):
        calls.append(("read", path.name, limit))
        value = len(path.stem)
        return [np.full((6, 8, 3), value + i, np.uint8) for i in range(3)]

    def analyse_driver(name, frames):
        return mod.Driver(name, frames, [None, object(), object()])

    def analyse_target(name, rgb, hw):
        calls.append(("target", name, rgb.shape, hw))
        if name == "broken_photo":
            return None
        return mod.Target(name, rgb, np.zeros(rgb.shape[:2], np.uint8), None, rgb)

    def run_pair(d, t, sheet_dir):
        calls.append(("pair", d.name, t.name, sheet_dir is not None))
        k = len(d.name) + 3 * len(t.name)
        return [mod.PairResult(cls.name, d.name, t.name, whole_frames=k + i, torn=i,
                               bones_inside=0.9 - 0.01 * i, height_ok=0.5 + 0.1 * i,
                               area_ok=float("nan") if i else 0.75, fringe=0.97,
                               ms=10.0 * (i + 1) + k)
                for i, cls in enumerate(mod.RENDERERS)]

    def reconstruction(d, t):
        calls.append(("recon", d.name, t.name))
        return {"mesh": {"frames": 3, "psnr": 20.5, "ssim": 0.81234, "ssbs": 0.5, "ssis": 0.6},
                "still": {"frames": 3, "psnr": 15.25, "ssim": 0.7, "ssbs": 0.4, "ssis": 0.45}}

    def synthetic_sweep(n_bodies):
        return {cls.name: {pose: i + j for j, pose in enumerate(mod.EXTREMES)}
                for i, cls in enumerate(mod.RENDERERS)}

    def end_to_end(d, photo, tmp):
        calls.append(("e2e", d.name, int(photo[0, 0, 0])))
        return 12.5 + len(d.name), 3

    for name, fn in (("read_frames", read_frames), ("analyse_driver", analyse_driver),
                     ("analyse_target", analyse_target), ("run_pair", run_pair),
                     ("reconstruction", reconstruction), ("synthetic_sweep", synthetic_sweep),
                     ("end_to_end", end_to_end)):
        monkeypatch.setattr(mod, name, fn)
    monkeypatch.setattr(mod, "synthetic_speed",
                        lambda: {cls.name: 20.0 + 5 * i for i, cls in enumerate(mod.RENDERERS)})
    monkeypatch.setattr(os, "getloadavg", lambda: (1.25, 0.0, 0.0))
    monkeypatch.setattr(os, "cpu_count", lambda: 2)


@pytest.mark.filterwarnings("ignore:Mean of empty slice")  # a renderer whose area is all NaN
def test_report_of_a_run_with_stand_in_measurements(tmp_path, monkeypatch, capsys):
    mod = _load()
    calls: list = []
    _stand_ins(mod, monkeypatch, calls)
    clips = tmp_path / "clips"
    clips.mkdir()
    for name in ("salsa.webp", "hiphop.webp", "notes.txt"):
        (clips / name).write_bytes(b"")
    Image.fromarray(np.full((4, 4, 3), 77, np.uint8)).save(clips / "fashion_photo.png")
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(clips / "broken_photo.png")
    out = tmp_path / "docs"
    assert mod.main(["--clips", str(clips), "--out", str(out), "--frames", "5",
                     "--bodies", "3", "--no-sheets"]) == 0
    text = (out / "renderer_benchmark.md").read_text()
    assert capsys.readouterr().out == text
    assert text == GOLDEN.read_text().replace("CLIPS", clips.name)
    assert calls == [
        ("read", "hiphop.webp", 5), ("read", "salsa.webp", 5),
        ("target", "astronaut", (512, 512, 3), (6, 8)),
        ("target", "broken_photo", (4, 4, 3), (6, 8)),
        ("target", "fashion_photo", (4, 4, 3), (6, 8)),
        ("target", "hiphop_frame0", (6, 8, 3), (6, 8)),
        ("target", "salsa_frame0", (6, 8, 3), (6, 8)),
        *[("pair", d, t, False) for d in ("hiphop", "salsa")
          for t in ("astronaut", "fashion_photo", "hiphop_frame0", "salsa_frame0")],
        ("recon", "hiphop", "hiphop_frame0"), ("recon", "salsa", "salsa_frame0"),
        ("e2e", "hiphop", 77), ("e2e", "salsa", 77)]


def test_no_clips_is_an_error(tmp_path, caplog):
    assert _load().main(["--clips", str(tmp_path / "none"), "--out", str(tmp_path)]) == 2
    assert "no clips in" in caplog.text


@pytest.mark.slow  # MediaPipe on a real person
def test_the_real_analyses_run_on_the_pipeline_of_today(astronaut):
    """The stand-ins above hide analyse_target / analyse_driver: run them for real on a small
    driver (they call pipeline.py, whose functions change with it)."""
    from test_one_path import _sliding_astronaut

    mod = _load()
    frames = _sliding_astronaut(astronaut, n=3, empty=1)
    d = mod.analyse_driver("slide", frames)
    assert len(d.people) == 3 and all(p is not None for p in d.people)  # 1 interpolated
    t = mod.analyse_target("astronaut", astronaut[::2, ::2].copy(), (192, 192))
    assert t is not None and t.labels.shape == (256, 256) and t.labels.any()
    assert t.background.shape == (256, 256, 3) and t.person.bbox() is not None
