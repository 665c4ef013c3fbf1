"""One path through the method: the shipped ``offline_weightless.json`` graph (run by the test
executor through the real node classes) and the ``reenact`` CLI's pipeline give the SAME frames
on the same inputs, because both run the stage functions of ``models/stages.py`` with the same
defaults (``PipelineConfig`` = the workflow's widget values)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from test_workflows import FakeVideo, node_of, run

from dance_reenact.nodes.sockets import frame_to_rgb_uint8, rgb_uint8_to_image
from dance_reenact.pipeline import PipelineConfig, reenact

pytestmark = pytest.mark.slow


def _sliding_astronaut(astronaut: np.ndarray, n: int = 4, empty: int | None = None
                       ) -> list[np.ndarray]:
    """A real person MediaPipe finds (so poses, parsing and the face paste all run), sliding
    over a textured plate; frame ``empty`` shows the plate alone."""
    h, w = 192, 192
    small = cv2.resize(astronaut, (150, 150), interpolation=cv2.INTER_AREA)
    yy, xx = np.mgrid[0:h, 0:w]
    plate = np.stack([40 + 60 * xx / w, 90 + 40 * yy / h, 150 - 50 * xx / w], -1)
    plate = plate.astype(np.uint8)
    frames = []
    for i in range(n):
        f = plate.copy()
        x = 8 + (30 * i) // max(1, n - 1)
        if i != empty:
            f[42:192, x:x + 150] = small
        frames.append(f)
    return frames


@pytest.mark.parametrize("empty", [None, 2], ids=["person_in_every_frame", "one_frame_empty"])
def test_offline_workflow_and_the_cli_give_the_same_frames(astronaut, empty):
    target = astronaut[::2, ::2].copy()  # 256x256
    frames = _sliding_astronaut(astronaut, empty=empty)
    fps = 12.0
    api, out = run("offline_weightless.json", {"target.png": rgb_uint8_to_image(target)},
                   {"driver.mp4": FakeVideo(rgb_uint8_to_image(np.stack(frames)), fps)})
    face = node_of(api, "DanceReenactFaceRefine")
    graph = out[face][0]
    # the whole chain ran, the face stage too (the empty frame's pose is interpolated)
    assert "refined the face in 4 of 4 frames" in out[face][2]
    pose = node_of(api, "DanceReenactOpenPose", 1)
    assert ("no person found in 1" in out[pose][4]) == (empty is not None)

    cli, info = reenact(target, driver_frames=lambda: iter(frames), fps=fps,
                        cfg=PipelineConfig())
    cli = list(cli)
    assert info["count"] == len(frames) == graph.shape[0]
    assert info["missing_frames"] == ([] if empty is None else [empty])
    for i, f in enumerate(cli):
        g = frame_to_rgb_uint8(graph[i])
        diff = np.abs(g.astype(int) - f.astype(int))
        # bit-identical: the same functions, the same float steps, the same rounding
        assert diff.max() == 0, (i, int(diff.max()), int((diff > 0).sum()))
    # and not trivially so: the person moves, and the frames differ from the plain background
    assert not np.array_equal(cli[0], cli[-1])


def test_changing_a_shared_default_breaks_the_equality(astronaut):
    """The check above can fail: the CLI with another mask feather than the workflow's B2F
    Loader gives other frames."""
    target = astronaut[::2, ::2].copy()
    frames = _sliding_astronaut(astronaut, n=2)
    api, out = run("offline_weightless.json", {"target.png": rgb_uint8_to_image(target)},
                   {"driver.mp4": FakeVideo(rgb_uint8_to_image(np.stack(frames)), 12.0)})
    graph = out[node_of(api, "DanceReenactFaceRefine")][0]
    cli, _ = reenact(target, driver_frames=lambda: iter(frames), fps=12.0,
                     cfg=PipelineConfig(feather=3.0, face="none"))
    first = next(iter(cli))
    assert not torch.equal(torch.from_numpy(first), torch.from_numpy(frame_to_rgb_uint8(graph[0])))
