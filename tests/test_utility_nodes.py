"""Render Pose and Parsing Preview nodes, and the test executor running them as a workflow."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from executor import WorkflowError, run_workflow

from dance_reenact.models.core.schema import (
    BODY,
    BODY_COLORS,
    LABEL_COLORS,
    Person,
    people_to_frame,
)
from dance_reenact.nodes import NODE_CLASS_MAPPINGS
from dance_reenact.nodes.runtime import NodeInputError
from dance_reenact.nodes.sockets import Parsing
from dance_reenact.nodes.utility import ParsingPreview, RenderPose


def _standing(w=320, h=512) -> Person:
    body = np.zeros((18, 3), np.float32)
    xy = {"nose": (160, 60), "neck": (160, 110), "right_shoulder": (120, 110),
          "right_elbow": (100, 180), "right_wrist": (95, 250), "left_shoulder": (200, 110),
          "left_elbow": (220, 180), "left_wrist": (225, 250), "right_hip": (135, 270),
          "right_knee": (135, 370), "right_ankle": (135, 470), "left_hip": (185, 270),
          "left_knee": (185, 370), "left_ankle": (185, 470)}
    for k, (x, y) in xy.items():
        body[BODY[k]] = (x * w / 320, y * h / 512, 1.0)
    return Person(body=body)


@pytest.mark.parametrize("normalized", [False, True])
def test_render_pose_draws_limbs_in_openpose_colours(normalized):
    frame = people_to_frame([_standing()], 320, 512, normalized=normalized)
    (img,) = RenderPose().render([frame, frame])
    assert img.shape == (2, 512, 320, 3) and img.dtype == torch.float32
    px = (img[0].numpy() * 255).round().astype(int)
    # the right-shoulder joint dot has OpenPose's colour for joint 2
    np.testing.assert_array_equal(px[110, 120], BODY_COLORS[BODY["right_shoulder"]])
    # the middle of the neck->right-hip limb (index 6) is drawn at 60% of its colour
    mid = px[190, 147]
    np.testing.assert_allclose(mid, (BODY_COLORS[6] * 0.6).astype(int), atol=1)
    assert px[5, 5].sum() == 0  # background stays black
    assert torch.equal(img[0], img[1])


def test_render_pose_rescales_to_requested_size_and_handles_empty_frames():
    frame = people_to_frame([_standing()], 320, 512)
    empty = {"people": [], "canvas_width": 320, "canvas_height": 512}
    (img,) = RenderPose().render([frame, empty], width=160, height=256)
    assert img.shape == (2, 256, 160, 3)
    assert img[1].sum() == 0 and img[0].sum() > 0
    px = (img[0].numpy() * 255).round().astype(int)
    np.testing.assert_array_equal(px[55, 60], BODY_COLORS[BODY["right_shoulder"]])


def test_render_pose_bad_input():
    with pytest.raises(NodeInputError, match=r"\[Render Pose\] input 'pose_keypoint'"):
        RenderPose().render([])
    with pytest.raises(NodeInputError, match="OpenPose layout"):
        RenderPose().render([{"people": [{"pose_keypoints_2d": [1, 2]}], "canvas_width": 8,
                              "canvas_height": 8}])


def test_parsing_preview_colours_and_masks():
    labels = torch.tensor([[[0, 13], [2, 5]], [[9, 9], [0, 21]]], dtype=torch.uint8)
    preview, mask = ParsingPreview().preview(Parsing(labels), "face_hair")
    assert preview.shape == (2, 2, 2, 3) and mask.shape == (2, 2, 2)
    np.testing.assert_allclose(preview[0, 0, 1].numpy() * 255, LABEL_COLORS[13], atol=0.5)
    assert mask[0].tolist() == [[0, 1], [1, 0]] and mask[1].sum() == 0
    _, custom = ParsingPreview().preview(Parsing(labels), "custom", "9, 21")
    assert custom[1].tolist() == [[1, 1], [0, 1]]
    with pytest.raises(NodeInputError, match="custom_labels"):
        ParsingPreview().preview(Parsing(labels), "custom", "99")
    with pytest.raises(NodeInputError, match="expected PARSING"):
        ParsingPreview().preview(torch.zeros(1, 2, 2), "person")


def test_parsing_payload_rejects_labels_outside_schema():
    with pytest.raises(ValueError, match="outside the 22-label schema"):
        Parsing(torch.full((1, 2, 2), 40, dtype=torch.uint8))


def test_executor_runs_an_api_workflow_in_dependency_order():
    frame = people_to_frame([_standing()], 320, 512)

    class PoseSource:
        @classmethod
        def INPUT_TYPES(cls):
            return {"required": {}}
        RETURN_TYPES = ("POSE_KEYPOINT",)
        FUNCTION = "run"
        CATEGORY = "test"

        def run(self):
            return ([frame] * 3,)

    mappings = {**NODE_CLASS_MAPPINGS, "PoseSource": PoseSource}
    prompt = {
        "2": {"class_type": "DanceReenactRenderPose",
              "inputs": {"pose_keypoint": ["1", 0], "people": "all", "person_index": 0,
                         "draw_body": True, "draw_hands": True, "draw_face": False}},
        "1": {"class_type": "PoseSource", "inputs": {}},
    }
    out = run_workflow(prompt, mappings)
    assert out["2"][0].shape == (3, 512, 320, 3) and out["2"][0].sum() > 0
    bad = {"1": prompt["1"], "3": {"class_type": "DanceReenactParsingPreview",
                                   "inputs": {"parsing": ["1", 0], "group": "person"}}}
    with pytest.raises(WorkflowError, match="wants PARSING"):
        run_workflow(bad, mappings)
    cyc = {"a": {"class_type": "DanceReenactRenderPose", "inputs": {"pose_keypoint": ["b", 0]}},
           "b": {"class_type": "DanceReenactRenderPose", "inputs": {"pose_keypoint": ["a", 0]}}}
    with pytest.raises(WorkflowError, match="cycle"):
        run_workflow(cyc, mappings)


def test_shipped_motion_clip_is_a_ten_second_upper_body_dance():
    from dance_reenact.models.core.schema import frame_to_people
    from dance_reenact.nodes.utility import LoadMotionClip

    frames, fps, n = LoadMotionClip().load("upper_body_dance")
    assert fps == 24 and n == len(frames) >= 240
    wrists = []
    for f in frames:
        (p,) = frame_to_people(f)
        assert p.body[BODY["neck"], 2] > 0 and p.body[BODY["nose"], 2] > 0
        assert p.body[BODY["right_hip"], 2] == 0  # waist-up framing: hips below the frame
        assert (p.face[:, 2] > 0).sum() >= 60
        wrists.append(p.body[BODY["right_wrist"], :2].copy())
    wrists = np.array(wrists)
    assert np.ptp(wrists[:, 1]) > 150  # the arm really goes up and down
    (img,) = RenderPose().render(frames[:2])
    assert img.shape == (2, 320, 512, 3)
    with pytest.raises(NodeInputError, match="Load Motion Clip"):
        LoadMotionClip().load("no_such_dance")
    _, _, n2 = LoadMotionClip().load("upper_body_dance", max_frames=5)
    assert n2 == 5
