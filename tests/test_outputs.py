"""Writing outputs: two runs with the same path each keep their result, a failed write leaves
nothing at the path, and nothing existing is replaced unless asked. Reading: an animated WebP
driver is read like a video."""

from __future__ import annotations

import os

import numpy as np
import pytest

from dance_reenact.models.io.video import encode_mp4, read_video, write_mp4
from dance_reenact.pipeline import write_outputs


def _frames(n, value):
    for _ in range(n):
        yield np.full((32, 48, 3), value, np.uint8)


def test_two_runs_writing_one_path_both_keep_their_video(tmp_path):
    """Run A is still encoding when run B writes the same path and finishes: A must neither
    vanish nor die on a shared .partial file; where each video ended up is returned."""
    out = tmp_path / "clip.mp4"
    where_b = {}

    def run_a():
        for i, f in enumerate(_frames(4, 40)):
            if i == 2:  # B starts and finishes while A is half way
                where_b["path"], _ = encode_mp4(_frames(3, 200), out, overwrite=False)
            yield f

    where_a, n_a = encode_mp4(run_a(), out, overwrite=False)
    assert where_b["path"] == out and where_a == tmp_path / "clip-1.mp4" and n_a == 4
    assert len(list(read_video(out))) == 3 and len(list(read_video(where_a))) == 4
    assert int(next(read_video(where_a)).mean()) in range(35, 46)
    assert sorted(os.listdir(tmp_path)) == ["clip-1.mp4", "clip.mp4"]  # no temporary left


def test_write_outputs_reports_where_the_sheet_went(tmp_path, caplog):
    out = tmp_path / "r.mp4"
    info = {"count": 2, "fps": 24.0}
    assert write_outputs(_frames(2, 90), info, out, overwrite=False)[0] == out
    video, sheet, n = write_outputs(_frames(2, 90), info, out, overwrite=False)
    assert (video, sheet, n) == (tmp_path / "r-1.mp4", tmp_path / "r-1_contact_sheet.png", 2)
    assert "this run's video is" in caplog.text


def test_a_failed_write_leaves_the_old_file_and_no_partial(tmp_path):
    out = tmp_path / "clip.mp4"
    write_mp4(_frames(2, 10), out)
    before = out.read_bytes()

    def broken():
        yield from _frames(2, 99)
        raise RuntimeError("a frame failed")

    with pytest.raises(RuntimeError, match="a frame failed"):
        write_mp4(broken(), out)
    assert out.read_bytes() == before and os.listdir(tmp_path) == ["clip.mp4"]


def test_output_under_a_file_is_a_clear_error(tmp_path):
    (tmp_path / "notes").write_text("x")
    with pytest.raises(ValueError, match=r"notes is a file, not a folder"):
        write_mp4(_frames(1, 0), tmp_path / "notes" / "clip.mp4")


def _video_with_audio(path, codec: str, seconds: float = 2.0) -> None:
    """12 frames at 12 fps (1 s of video) with ``seconds`` of a 440 Hz tone."""
    import av

    with av.open(str(path), "w") as c:
        vs = c.add_stream("libx264", rate=12)
        vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        a = c.add_stream(codec, rate=48000)
        for i in range(12):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 10 * i, np.uint8),
                                               format="rgb24")
            for p in vs.encode(frame):
                c.mux(p)
        for p in vs.encode(None):
            c.mux(p)
        t = np.arange(int(48000 * seconds)) / 48000
        tone = av.AudioFrame.from_ndarray((0.3 * np.sin(2 * np.pi * 440 * t))
                                          .astype(np.float32)[None], format="flt", layout="mono")
        tone.sample_rate = 48000
        for p in a.encode(tone):
            c.mux(p)
        for p in a.encode(None):
            c.mux(p)


@pytest.mark.parametrize("codec", ["aac", "mp3"])
def test_the_drivers_audio_goes_under_the_output(tmp_path, codec):
    import av

    from dance_reenact.models.io.video import copy_audio, encode_mp4, read_video

    driver = tmp_path / f"driver_{codec}.mp4"
    _video_with_audio(driver, codec)
    frames = [np.full((48, 64, 3), v, np.uint8) for v in range(0, 240, 20)]
    out, _ = encode_mp4(iter(frames), tmp_path / "out.mp4", 12.0)
    before = list(read_video(out))
    assert copy_audio(out, driver) is True
    with av.open(str(out)) as c:
        assert [s.type for s in c.streams] == ["video", "audio"]
        assert c.streams.audio[0].codec_context.name == "aac"  # mp3 re-encoded for MP4
        assert float(c.duration) / 1e6 < 1.2  # cut to the 1 s video, not the 2 s tone
    after = list(read_video(out))
    assert len(after) == 12 and all(np.array_equal(a, b) for a, b in zip(before, after))
    silent, _ = encode_mp4(iter(frames), tmp_path / "silent_src.mp4", 12.0)
    out2, _ = encode_mp4(iter(frames), tmp_path / "out2.mp4", 12.0)
    data = out2.read_bytes()
    assert copy_audio(out2, silent) is False and out2.read_bytes() == data  # untouched


def test_an_animated_webp_driver_is_read_frame_by_frame(tmp_path):
    """FFmpeg opens an animated WebP but decodes no frame of it ("truncated or damaged: 0
    frames decoded fine"); such drivers come from ComfyUI's own templates and the web."""
    from PIL import Image

    from dance_reenact.models.io.video import VideoError, probe_video

    colours = [(200, 30, 30), (30, 200, 30), (30, 30, 200)]
    frames = [Image.new("RGB", (40, 24), c) for c in colours]
    path = tmp_path / "dance.webp"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=50, lossless=True,
                   loop=0)
    info = probe_video(path, "--driver video")
    assert (info.fps, info.width, info.height, info.frames) == (20.0, 40, 24, 3)
    got = list(read_video(path, "--driver video"))
    assert [f.shape for f in got] == [(24, 40, 3)] * 3
    assert [tuple(int(v) for v in f[12, 20]) for f in got] == colours

    cut = tmp_path / "cut.webp"
    cut.write_bytes(path.read_bytes()[:60])
    with pytest.raises(VideoError, match=r"--driver video .*cut\.webp.*Fix: re-export"):
        list(read_video(cut, "--driver video"))
    with pytest.raises(VideoError, match="does not exist"):
        probe_video(tmp_path / "missing.webp", "--driver video")


@pytest.mark.parametrize("content", [b"", b"RIFF\x00\x00\x00\x00WEBPVP8X", b"not a webp at all"])
def test_a_broken_webp_driver_is_a_clear_error(tmp_path, content):
    from dance_reenact.models.io.video import VideoError, probe_video

    path = tmp_path / "broken.webp"
    path.write_bytes(content)
    for read in (lambda: probe_video(path, "--driver video"),
                 lambda: list(read_video(path, "--driver video"))):
        with pytest.raises(VideoError, match=r"--driver video .*broken\.webp.*Fix: re-"):
            read()
