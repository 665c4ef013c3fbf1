"""Reenact (all-in-one, streamed): the whole method in one node that reads ComfyUI's VIDEO
frame by frame and writes the MP4 it returns; the same frames as the CLI on the same input."""

from __future__ import annotations

import numpy as np
import pytest
from test_one_path import _sliding_astronaut
from test_workflows import FakeVideo, Files, node_of, run

from dance_reenact.models.io.video import encode_mp4, probe_video, read_video
from dance_reenact.nodes.reenact import ReenactStreamed, VideoFile
from dance_reenact.nodes.runtime import NodeInputError
from dance_reenact.nodes.sockets import rgb_uint8_to_image
from dance_reenact.pipeline import PipelineConfig, reenact

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def driver_file(astronaut, tmp_path_factory):
    frames = _sliding_astronaut(astronaut, n=5, empty=3)
    path = tmp_path_factory.mktemp("drv") / "driver.mp4"
    encode_mp4(iter(frames), path, 12.0)
    return path


def test_streamed_node_writes_the_cli_frames(astronaut, driver_file, tmp_path, monkeypatch):
    import dance_reenact.nodes.reenact as mod

    monkeypatch.setattr(mod, "_output_dir", lambda: tmp_path)
    written: list[np.ndarray] = []

    def recording(frames, *a, **kw):  # the frames the node hands the encoder
        return encode_mp4((written.append(f) or f for f in frames), *a, **kw)
    monkeypatch.setattr(mod, "encode_mp4", recording)
    target = astronaut[::2, ::2].copy()
    video, report = ReenactStreamed().run(rgb_uint8_to_image(target), VideoFile(driver_file),
                                          "target_inpainted")
    out = list(read_video(video.get_stream_source()))
    assert probe_video(video.get_stream_source()).fps == pytest.approx(12.0)
    assert len(out) == 5 and out[0].shape == (192, 192, 3)
    assert "5 frames at 192x192" in report and "no driver person in 1 frame(s) (3)" in report
    assert "the driver has no audio" in report
    # the CLI on the same decoded driver: bit-identical frames before encoding
    cli, _ = reenact(target, driver_frames=lambda: read_video(driver_file), fps=12.0,
                     cfg=PipelineConfig())
    cli = list(cli)
    assert len(written) == len(cli) == 5
    for a, b in zip(written, cli):
        assert np.array_equal(a, b)
    # the person is there: the output differs from the target's inpainted background
    assert np.abs(out[0].astype(int) - out[-1].astype(int)).mean() > 2


def test_streamed_workflow_runs_through_the_executor(astronaut, monkeypatch, tmp_path):
    monkeypatch.setattr("dance_reenact.nodes.reenact._output_dir", lambda: tmp_path)
    frames = _sliding_astronaut(astronaut, n=3)
    target = rgb_uint8_to_image(astronaut[::2, ::2].copy())
    api, out = run("long_video_streamed.json", {"target.png": target},
                   {"driver.mp4": FakeVideo(rgb_uint8_to_image(np.stack(frames)), 8.0)})
    (prefix, video), = Files.saved_videos
    assert prefix == "dance_reenact/streamed"
    assert len(list(read_video(video.get_stream_source()))) == 3
    node = node_of(api, "DanceReenactReenactStreamed")
    assert "a driver person in every frame" in out[node][1]


def test_streamed_node_bad_inputs(astronaut, driver_file):
    node = ReenactStreamed()
    target = rgb_uint8_to_image(astronaut[::2, ::2].copy())
    with pytest.raises(NodeInputError, match="background_image.*no image is connected"):
        node.run(target, VideoFile(driver_file), "image")
    with pytest.raises(NodeInputError, match="expected a VIDEO"):
        node.run(target, object(), "target_inpainted")
    blank = rgb_uint8_to_image(np.full((128, 128, 3), 200, np.uint8))
    with pytest.raises(NodeInputError, match="no person found in the target photo"):
        node.run(blank, VideoFile(driver_file), "target_inpainted")


def test_streamed_node_reads_an_in_memory_video(astronaut, driver_file, tmp_path, monkeypatch):
    """A VIDEO whose source is a BytesIO (ComfyUI allows it) is copied once into the temp
    folder and read from there."""
    import io

    monkeypatch.setattr("dance_reenact.nodes.reenact._output_dir", lambda: tmp_path)

    class InMemory:
        def get_stream_source(self) -> io.BytesIO:
            return io.BytesIO(driver_file.read_bytes())

    target = rgb_uint8_to_image(astronaut[::2, ::2].copy())
    video, report = ReenactStreamed().run(target, InMemory(), "target_inpainted",
                                          face_refine=False)
    assert "5 frames at 192x192" in report
    assert len(list(read_video(video.get_stream_source()))) == 5
    assert [p.name for p in tmp_path.glob("driver_*.mp4")]  # the copy is in the temp folder
