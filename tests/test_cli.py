"""The `reenact` command line: inputs are never overwritten, outputs never clash, bad inputs
are reported in seconds with the file, its role and a fix, and Ctrl-C leaves nothing half."""

from __future__ import annotations

import logging
import os

import av
import numpy as np
import pytest
from PIL import Image

from dance_reenact import pipeline
from dance_reenact.cli import _read_image, main
from dance_reenact.models.io.video import read_video, write_mp4


def test_weights_list_and_offline_fetch_error(capsys, monkeypatch):
    assert main(["weights", "list"]) == 0
    assert "openpose_body" in capsys.readouterr().out
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(["weights", "fetch", "lpips_alex"]) == 1


@pytest.fixture
def photo(tmp_path, astronaut):
    path = tmp_path / "me.png"
    Image.fromarray(astronaut).save(path)
    return path


@pytest.fixture
def driver(tmp_path):
    """A 3-frame video (noise: nobody in it)."""
    path = tmp_path / "driver.mp4"
    rng = np.random.default_rng(0)
    write_mp4([rng.integers(0, 255, (96, 64, 3), dtype=np.uint8) for _ in range(3)], path)
    return path


def _errors(caplog) -> str:
    return "\n".join(r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR)


def _no_driver_pass(monkeypatch):
    def fail(*a, **k):
        raise AssertionError("the driver pose pass ran before the quick checks")
    monkeypatch.setattr(pipeline, "driver_people_from_video", fail)


def test_out_equal_to_an_input_is_refused(tmp_path, photo, driver, caplog, monkeypatch):
    _no_driver_pass(monkeypatch)
    before = driver.read_bytes()
    for out in (driver, tmp_path / "driver.mov"):  # .mov: the video would be driver.mp4
        caplog.clear()
        assert main(["--target", str(photo), "--driver", str(driver), "--out", str(out)]) == 1
        msg = _errors(caplog)
        assert "is the --driver video" in msg and "refusing to write over an input" in msg
        assert "Fix: choose another --out" in msg
    assert driver.read_bytes() == before


def test_existing_output_is_kept_unless_overwrite(tmp_path, photo, capsys, caplog):
    out = tmp_path / "o.mp4"
    args = ["--target", str(photo), "--max-frames", "1", "--face", "none", "--out", str(out)]
    assert main(args) == 0
    first = out.read_bytes()
    sheet = tmp_path / "o_contact_sheet.png"
    sheet.write_bytes(b"my notes")  # a file the user keeps next to it
    capsys.readouterr()
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert f"video: {tmp_path / 'o-1.mp4'}" in printed
    assert f"contact sheet: {tmp_path / 'o-1_contact_sheet.png'}" in printed
    assert "pass --overwrite to replace it" in caplog.text
    assert out.read_bytes() == first and sheet.read_bytes() == b"my notes"
    assert len(list(read_video(tmp_path / "o-1.mp4"))) == 1
    assert main(args + ["--overwrite"]) == 0
    assert f"video: {out}\n" in capsys.readouterr().out
    assert sheet.read_bytes()[:4] == b"\x89PNG"


def test_target_weights_and_output_are_checked_before_the_driver_pass(
        tmp_path, driver, caplog, monkeypatch):
    _no_driver_pass(monkeypatch)
    blank = tmp_path / "cat.png"
    Image.fromarray(np.full((256, 256, 3), 128, np.uint8)).save(blank)
    assert main(["--target", str(blank), "--driver", str(driver), "--face", "none",
                 "--out", str(tmp_path / "o.mp4")]) == 1
    assert "no person found in the target photo" in _errors(caplog)
    caplog.clear()
    assert main(["--target", str(blank), "--driver", str(driver), "--p2b",
                 str(tmp_path / "p2b.safetensors"), "--out", str(tmp_path / "o.mp4")]) == 1
    assert f"--p2b {tmp_path / 'p2b.safetensors'}: no such file" in _errors(caplog)
    caplog.clear()
    assert main(["--target", str(blank), "--driver", str(driver), "--face",
                 str(tmp_path / "face.safetensors"), "--out", str(tmp_path / "o.mp4")]) == 1
    assert f"--face {tmp_path / 'face.safetensors'}: no such file" in _errors(caplog)
    assert "reenact train face" in _errors(caplog)
    caplog.clear()
    (tmp_path / "afile").write_text("x")
    assert main(["--target", str(blank), "--driver", str(driver),
                 "--out", str(tmp_path / "afile" / "o.mp4")]) == 1
    assert f"{tmp_path / 'afile'} is a file, not a folder" in _errors(caplog)


def test_unwritable_output_folder_is_reported_first(tmp_path, photo, driver, caplog,
                                                    monkeypatch):
    import tempfile

    _no_driver_pass(monkeypatch)
    ro = tmp_path / "ro"
    ro.mkdir()

    def denied(*a, dir=None, **k):
        if dir is not None and os.path.samefile(dir, ro):
            raise PermissionError(13, "Permission denied", str(dir))
        return real(*a, dir=dir, **k)

    real = tempfile.mkstemp
    monkeypatch.setattr(tempfile, "mkstemp", denied)  # root ignores chmod: simulate it
    assert main(["--target", str(photo), "--driver", str(driver),
                 "--out", str(ro / "o.mp4")]) == 1
    msg = _errors(caplog)
    assert f"cannot write in the folder {ro} (Permission denied)" in msg and "Fix:" in msg


def test_driver_pose_pass_shows_progress(tmp_path, photo, driver, capsys):
    assert main(["--target", str(photo), "--driver", str(driver), "--face", "none",
                 "--out", str(tmp_path / "o.mp4")]) == 1  # noise: nobody to follow
    err = capsys.readouterr().err
    assert "--driver video" in err and "3/3" in err


def _audio_only(path):
    with av.open(str(path), "w") as c:
        s = c.add_stream("aac", rate=44100)
        for i in range(4):
            f = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp",
                                           layout="mono")
            f.sample_rate, f.pts = 44100, i * 1024
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode():
            c.mux(p)


def test_audio_only_driver_or_background(tmp_path, photo, driver, caplog):
    song = tmp_path / "song.m4a"
    _audio_only(song)
    assert main(["--target", str(photo), "--driver", str(song),
                 "--out", str(tmp_path / "o.mp4")]) == 1
    assert f"the --driver video {song} has no video stream (audio)" in _errors(caplog)
    caplog.clear()
    song_mp4 = tmp_path / "song.mp4"
    os.replace(song, song_mp4)
    assert main(["--target", str(photo), "--driver", str(driver), "--background",
                 str(song_mp4), "--out", str(tmp_path / "o.mp4")]) == 1
    assert f"the --background video {song_mp4} has no video stream" in _errors(caplog)


def _truncated(tmp_path):
    """An MP4 with its index first (faststart), cut in half: 12 of 30 frames decode."""
    path = tmp_path / "cut.mp4"
    rng = np.random.default_rng(0)
    with av.open(str(path), "w", options={"movflags": "faststart"}) as c:
        s = c.add_stream("libx264", rate=24)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        for _ in range(30):
            frame = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
            for p in s.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def test_truncated_video_names_the_file_and_the_good_frames(tmp_path, photo, caplog):
    cut = _truncated(tmp_path)
    with pytest.raises(ValueError, match=r"cut\.mp4 is truncated or damaged: \d+ frames "
                       r"decoded fine"):
        list(read_video(cut, "--driver video"))
    assert main(["--target", str(photo), "--driver", str(cut), "--face", "none",
                 "--out", str(tmp_path / "o.mp4")]) == 1
    assert f"the --driver video {cut} is truncated or damaged" in _errors(caplog)
    assert not (tmp_path / "o.mp4").exists()


def test_ctrl_c_prints_one_line_and_leaves_no_partial_file(tmp_path, photo, capsys,
                                                           monkeypatch):
    def interrupted(*a, **k):
        def frames():
            for _ in range(3):
                yield np.zeros((64, 48, 3), np.uint8)
            raise KeyboardInterrupt
        return frames(), {"count": 10, "height": 64, "width": 48, "fps": 24.0}

    monkeypatch.setattr(pipeline, "reenact", interrupted)
    out = tmp_path / "out" / "o.mp4"
    assert main(["--target", str(photo), "--out", str(out)]) == 130
    err = capsys.readouterr().err
    said = [ln for ln in err.splitlines() if ln.strip() and "frame/s]" not in ln]  # no bars
    assert said == [f"interrupted: nothing was written to {out} (its partial file was removed)"]
    assert os.listdir(out.parent) == []


def test_rgba_target_is_composited_over_white_like_the_nodes(tmp_path):
    import torch

    from dance_reenact.nodes.sockets import frame_to_rgb_uint8

    rgba = np.zeros((40, 40, 4), np.uint8)
    rgba[..., 0] = 200           # red under a transparent area
    rgba[:20, :, 3] = 255        # top half opaque, bottom half fully transparent
    rgba[20:30, :, 3] = 128
    Image.fromarray(rgba, "RGBA").save(tmp_path / "t.png")
    cli = _read_image(str(tmp_path / "t.png"))
    node = frame_to_rgb_uint8(torch.from_numpy(rgba).float() / 255)
    assert np.abs(cli.astype(int) - node.astype(int)).max() <= 1
    assert tuple(cli[35, 5]) == (255, 255, 255)


def test_missing_and_empty_driver_videos(tmp_path, photo, caplog):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    expected = {tmp_path / "nope.mp4": "the --driver video {} does not exist",
                empty: "cannot read the --driver video {}",
                tmp_path: "the --driver video {} is not a file"}
    for path, said in expected.items():
        caplog.clear()
        assert main(["--target", str(photo), "--driver", str(path), "--face", "none",
                     "--out", str(tmp_path / "o.mp4")]) == 1
        assert said.format(path) in _errors(caplog)
        assert "Fix:" in _errors(caplog)
