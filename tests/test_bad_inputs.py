"""Bad values on node inputs: each gives a NodeInputError naming the node, the input, what was
seen and the fix (never a silent clamp, NaN frames or a raw AttributeError/ValueError)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dance_reenact.nodes.blend import MaskBlend
from dance_reenact.nodes.p2b import P2B
from dance_reenact.nodes.runtime import NodeInputError
from dance_reenact.nodes.sockets import (
    ModelHandle,
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
    return dict(p2b_model=ModelHandle("p2b", "warp"), target_parsing=Parsing(labels),
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
