"""No node keeps more than its outputs plus about one frame: peak memory at a small size.

Torch CPU allocations are counted with the profiler (each op's own allocations and every
free, replayed in time order); numpy buffers with tracemalloc. The sum of the two peaks is
an upper bound on what the call held at once beyond what existed before it.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from torch.profiler import ProfilerActivity, profile

from dance_reenact.models.compositing.blend import blend_frames
from dance_reenact.nodes.sockets import check_image, check_mask, rgb_frames_to_image

N, H, W = 12, 96, 128
FRAME = H * W * 3 * 4  # one float32 RGB frame
VIDEO = N * FRAME  # one video-sized float32 IMAGE
SLACK = 6 * FRAME  # one frame's temporaries and the target photo's checks (measured 2-4)


_PROFILER_READY = []


def _warm_profiler() -> None:
    """The profiler's first start imports and allocates a lot: do it once, untraced."""
    if not _PROFILER_READY:
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True):
            torch.ones(1)
        _PROFILER_READY.append(True)


def peak_bytes(fn: Callable[[], Any]) -> tuple[int, Any]:
    """(peak bytes allocated during ``fn`` and not freed before the peak, fn's result).
    ``fn`` runs once unmeasured first: lazy one-time set-up (kernels, imports, the
    profiler's own) is not what a video costs."""
    fn()
    _warm_profiler()
    result = None

    def run() -> None:
        nonlocal result
        result = fn()

    tracemalloc.start()
    try:
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            run()
        _, numpy_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    events = []
    for e in prof.events():
        if e.name == "[memory]":  # frees (and allocations outside an op)
            events.append((e.time_range.start, e.cpu_memory_usage))
        elif e.self_cpu_memory_usage:
            events.append((e.time_range.start, e.self_cpu_memory_usage))
    cur = torch_peak = 0
    for _, b in sorted(events):
        cur += b
        torch_peak = max(torch_peak, cur)
    return torch_peak + numpy_peak, result


def test_the_probe_sees_a_doubling():
    """The measure itself: a list of frames then a stack costs two videos; writing into the
    output costs one."""
    x = torch.rand(N, H, W, 3)

    def doubled():
        return torch.stack([x[i] * 1.0 for i in range(N)])

    def direct():
        out = torch.empty_like(x)
        for i in range(N):
            torch.mul(x[i], 1.0, out=out[i])
        return out

    assert peak_bytes(doubled)[0] >= 1.9 * VIDEO
    assert peak_bytes(direct)[0] <= 1.05 * VIDEO


def test_input_checks_make_no_video_sized_temporaries():
    x = torch.rand(N, H, W, 3)
    peak, out = peak_bytes(lambda: check_image(x, "T", "image"))
    assert out is x and peak <= 0.02 * VIDEO  # no isfinite() bool copy, no float() copy
    m = torch.rand(N, H, W)
    peak, out = peak_bytes(lambda: check_mask(m, "T", "mask"))
    assert out is m and peak <= 0.02 * VIDEO  # in range already: not clamped into a copy
    with pytest.raises(ValueError, match="NaN"):
        bad = x.clone()
        bad[3, 5, 7, 1] = float("nan")
        check_image(bad, "T", "image")


def test_previews_are_written_frame_by_frame():
    labels = np.random.default_rng(0).integers(0, 22, (N, H, W), dtype=np.uint8)
    palette = np.random.default_rng(1).integers(0, 256, (22, 3), dtype=np.uint8)
    peak, out = peak_bytes(lambda: rgb_frames_to_image(N, lambda i: palette[labels[i]]))
    assert out.shape == (N, H, W, 3) and out.dtype == torch.float32
    assert torch.equal(out[5], torch.from_numpy(palette[labels[5]]).float() / 255)
    assert peak <= 1.1 * VIDEO


def test_mask_blend_holds_only_its_outputs():
    z, m, bg = torch.rand(N, H, W, 3), torch.rand(N, H, W), torch.rand(3, H + 10, W + 6, 3)
    outputs = VIDEO * (1 + 4 / 3 + 1 / 3)  # composite, RGBA, alpha
    peak, (comp, rgba, alpha) = peak_bytes(
        lambda: blend_frames(z, m, bg, fit="cover", erode=2, feather=1.5))
    assert comp.shape == (N, H, W, 3) and rgba.shape == (N, H, W, 4)
    assert peak <= outputs + SLACK


@pytest.fixture(scope="module")
def face_model():
    from dance_reenact.nodes.face import LoadFaceRefine

    return LoadFaceRefine().load("weightless", "mediapipe")[0]


def test_face_refine_without_a_target_face_does_not_copy_the_video_twice(face_model):
    """No face in the target: every frame passes through. Float RGB frames come back as
    they are; gray frames are converted straight into one output."""
    from dance_reenact.nodes.face import FaceRefine

    target = torch.zeros(1, 64, 64, 3)  # nobody
    gray = torch.rand(N, H, W, 1)
    peak, (out, missing, _) = peak_bytes(lambda: FaceRefine().refine(face_model, gray, target))
    assert out.shape == (N, H, W, 3) and missing == N
    assert torch.allclose(out[4], gray[4].expand(-1, -1, 3), atol=1 / 255)
    assert peak <= VIDEO + SLACK  # the output, not a list of frames and then a stack
    rgb = torch.rand(N, H, W, 3)
    peak, (out, missing, _) = peak_bytes(lambda: FaceRefine().refine(face_model, rgb, target))
    assert out is rgb and missing == N and peak <= SLACK
