"""Bad values on node inputs: each gives a NodeInputError naming the node, the input, what was
seen and the fix (never a silent clamp, NaN frames or a raw AttributeError/ValueError)."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from dance_reenact.nodes.blend import MaskBlend
from dance_reenact.nodes.p2b import P2B
from dance_reenact.nodes.runtime import NodeInputError
from dance_reenact.nodes.sockets import (
    FaceRefineModel,
    P2BModel,
    Parsing,
    check_image,
    check_mask,
    check_pose_frames,
)
from dance_reenact.nodes.utility import RenderPose


@pytest.mark.parametrize("image, seen", [
    (torch.full((1, 8, 8, 3), 200, dtype=torch.uint8), "uint8 with values 200..200"),
    (torch.linspace(0, 255, 192).reshape(1, 8, 8, 3), "from 0 to 255"),
    (torch.linspace(-1, 1, 192).reshape(1, 8, 8, 3), "from -1 to 1"),
    (torch.ones((1, 8, 8, 3), dtype=torch.bool), "bool"),
])
def test_image_outside_zero_one_is_an_error_not_a_clamp(image, seen):
    with pytest.raises(NodeInputError) as err:
        check_image(image, "Mask Blend", "background")
    msg = str(err.value)
    assert msg.startswith("[Mask Blend] input 'background'") and seen in msg
    assert "Fix:" in msg


def test_image_range_tolerates_float_rounding():
    img = torch.full((1, 4, 4, 3), 1.0004)
    img[0, 0, 0, 0] = -0.0004
    assert check_image(img, "n", "image") is img


def test_range_error_suggests_the_right_conversion():
    with pytest.raises(NodeInputError, match=r"divide by 255"):
        check_image(torch.full((1, 4, 4, 3), 128.0), "n", "image")
    with pytest.raises(NodeInputError, match=r"\(x \+ 1\) / 2"):
        check_image(torch.full((1, 4, 4, 3), -0.5), "n", "image")


def test_mask_with_nan_is_an_error_in_mask_blend():
    z = torch.rand(2, 8, 8, 3)
    m = torch.rand(2, 8, 8)
    m[1, 3, 3] = float("nan")
    with pytest.raises(NodeInputError, match=r"\[Mask Blend\] input 'mask'.*NaN.*frame 1"):
        MaskBlend().blend(z, m, torch.rand(1, 8, 8, 3))
    with pytest.raises(NodeInputError, match="NaN"):
        check_mask(torch.full((1, 4, 4), float("inf")), "n", "mask")


def _p2b_inputs(pose):
    labels = torch.zeros((1, 32, 24), dtype=torch.uint8)
    labels[0, 8:24, 8:16] = 5
    return dict(p2b_model=P2BModel("warp"), target_parsing=Parsing(labels),
                target_pose=pose, driver_pose=pose)


@pytest.mark.parametrize("pose, seen", [
    ([None], "frame 0 is NoneType"),
    ([{"people": [], "canvas_width": float("nan"), "canvas_height": 64}], "canvas_width=nan"),
    ([{"people": [], "canvas_width": float("inf"), "canvas_height": 64}], "canvas_width=inf"),
    ([{"people": [], "canvas_width": 64, "canvas_height": -5}], "canvas_height=-5"),
    ([{"people": [], "canvas_width": "wide", "canvas_height": 64}], "canvas_width='wide'"),
])
def test_bad_pose_frames_name_the_frame_and_value(pose, seen):
    with pytest.raises(NodeInputError) as err:
        P2B().run(**_p2b_inputs(pose))
    assert str(err.value).startswith("[P2B] input 'driver_pose'") and seen in str(err.value)
    with pytest.raises(NodeInputError, match=r"\[Render Pose\] input 'pose_keypoint'"):
        RenderPose().render(pose)


def test_good_pose_frames_pass():
    frames = [{"people": [], "canvas_width": np.int64(64), "canvas_height": 48.0}]
    assert check_pose_frames(frames, "n", "pose") == frames


def test_inpaint_reduces_a_huge_still_and_keeps_unmasked_pixels(monkeypatch):
    """A 6000x4000 still took 268 s in cv2.inpaint at full size with no progress: the fill
    now runs on a copy of at most MAX_FILL_SIDE pixels, pasted into the masked pixels only."""
    from dance_reenact.nodes import inpaint as node

    seen = []

    def fake_fill(rgb, mask, backend, **kw):
        seen.append(rgb.shape[:2])
        return np.where(mask[..., None] > 0, np.uint8(77), rgb)

    monkeypatch.setattr(node, "inpaint_still", fake_fill)
    h, w = 2000, 3000
    image = torch.rand(1, h, w, 3)
    mask = torch.zeros(1, h, w)
    mask[0, 500:1500, 1000:2000] = 1
    out, _ = node.Inpaint().inpaint(image, "opencv_telea", dilate=0, mask=mask)
    assert seen and max(seen[0]) <= node.MAX_FILL_SIDE
    assert out.shape == (1, h, w, 3)
    assert torch.equal(out[0, :400], image[0, :400])  # unmasked: bit-identical
    assert abs(float(out[0, 1000, 1500, 0]) - 77 / 255) < 1e-6


def test_face_refine_says_the_real_cause_when_no_face_is_found(astronaut):
    """A scaled-twice (near black) target and a photo of two people are not "no face"."""
    from dance_reenact.nodes.face import FaceRefine, why_no_face

    handle = FaceRefineModel("weightless")
    frames = torch.from_numpy(astronaut[None]).float() / 255
    twice = frames / 255  # 0..1 data divided by 255 again: in range, but black
    # the graph goes on (frames pass through) and the report names the cause
    out, missing, report = FaceRefine().refine(handle, frames, twice)
    assert missing == 1 and torch.equal(out, frames)
    assert re.search(r"skipped.*almost uniform.*scaled twice", report), report
    problem, fix = why_no_face(np.concatenate([astronaut, astronaut], axis=1))
    assert "2 face-like regions" in problem and "several people" in problem
    assert fix == "crop the photo to the one target person"


def test_nan_or_inf_image_is_an_error():
    for bad in (float("nan"), float("inf")):
        img = torch.rand(2, 4, 4, 3)
        img[1, 0, 0, 0] = bad
        with pytest.raises(NodeInputError, match=r"\[Mask Blend\] input 'image': .*NaN or "
                           r"infinite"):
            MaskBlend().blend(img, torch.ones(2, 4, 4), torch.rand(1, 4, 4, 3))
