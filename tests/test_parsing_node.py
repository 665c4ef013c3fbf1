"""Human Parse node: every bad or odd input a user can connect, and video streaming."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_parsing_geometric import drawn_person

from dance_reenact.models.core.schema import BODY, LABEL, people_to_frame
from dance_reenact.nodes.parsing import HumanParse
from dance_reenact.nodes.runtime import NodeInputError
from dance_reenact.nodes.sockets import Parsing

L = LABEL


def _img(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(rgb)).float()[None] / 255


def _run(image, **kw):
    return HumanParse().parse(image, **kw)


@pytest.fixture(scope="module")
def mediapipe():
    import mediapipe  # a hard test requirement (conftest checks it)

    return mediapipe


def test_no_person_is_an_error_or_empty(mediapipe):
    blank = torch.full((1, 96, 128, 3), 0.5)
    with pytest.raises(NodeInputError) as err:
        _run(blank)
    msg = str(err.value)
    assert "[Human Parse]" in msg and "no person found in frame 0" in msg and "empty" in msg
    parsing, preview, mask, report = _run(blank, if_no_person="empty")
    assert "no person in 1 frame(s) (0): left as background" in report
    assert isinstance(parsing, Parsing) and parsing.labels.shape == (1, 96, 128)
    assert parsing.labels.dtype == torch.uint8 and int(parsing.labels.max()) == 0
    assert preview.shape == (1, 96, 128, 3) and float(preview.max()) == 0.0
    assert mask.shape == (1, 96, 128) and float(mask.max()) == 0.0


def test_pose_keypoint_with_empty_people():
    img, _, _ = drawn_person()
    pose = [{"people": [], "canvas_width": 256, "canvas_height": 320}]
    with pytest.raises(NodeInputError, match="no person found in frame 0"):
        _run(_img(img), pose_keypoint=pose)
    parsing, _, _, _ = _run(_img(img), pose_keypoint=pose, if_no_person="empty")
    assert int(parsing.labels.max()) == 0


def _two_people():
    """A large person on the left and a small one on the right of one 320x384 frame."""
    a, _, pa = drawn_person(dx=-70)
    b, _, pb = drawn_person(dx=80, dy=60, scale=0.55)
    big = np.full((320, 384, 3), 150, np.uint8)
    big[:, :256] = a
    region = b[:, 128:]
    keep = np.abs(region.astype(int) - b[0, 0].astype(int)).sum(-1) > 30
    big[:, 256:][keep] = region[keep]
    pb = pb.scaled(1, 1, dx=128)
    return big, pa, pb


def test_two_people_largest_or_by_index():
    rgb, pa, pb = _two_people()
    pose = [people_to_frame([pb, pa], 384, 320, normalized=True)]  # small one listed first
    labels_big = _run(_img(rgb), pose_keypoint=pose)[0].labels[0].numpy()
    labels_small = _run(_img(rgb), pose_keypoint=pose, person="index",
                        person_index=0)[0].labels[0].numpy()
    for person, labels, other in ((pa, labels_big, pb), (pb, labels_small, pa)):
        x, y = person.body[BODY["nose"], :2].astype(int)
        assert labels[y, x] == L["face"]
        ox, oy = other.body[BODY["neck"], :2].astype(int)
        assert labels[oy - 3:oy + 4, ox - 3:ox + 4].max() == 0  # the other person is left out
    with pytest.raises(NodeInputError, match="person_index.*out of range"):
        _run(_img(rgb), pose_keypoint=pose, person="index", person_index=5)


def test_grayscale_and_rgba_inputs(astronaut, mediapipe):
    gray = np.asarray(astronaut.mean(-1), np.float32)[None, :, :, None] / 255
    parsing, preview, _, _ = _run(torch.from_numpy(gray))
    labels = parsing.labels[0].numpy()
    assert labels.shape == (512, 512) and preview.shape == (1, 512, 512, 3)
    assert (labels == L["face"]).sum() > 3000 and (labels == L["hair"]).sum() > 1000
    rgb = _img(astronaut)
    rgba = torch.cat([rgb, torch.ones_like(rgb[..., :1])], -1)
    # an opaque alpha changes nothing (MediaPipe's face landmarks jitter by ~2 px from call to
    # call even on the same photo, so compare agreement rather than bit equality)
    agree = (_run(rgba)[0].labels == _run(rgb)[0].labels).float().mean()
    assert float(agree) > 0.99


def test_tiny_16x16():
    img, _, person = drawn_person()
    import cv2

    tiny = cv2.resize(img, (16, 20), interpolation=cv2.INTER_AREA)
    pose = [people_to_frame([person], 256, 320, normalized=True)]  # rescaled to 16x20
    parsing, _, mask, _ = _run(_img(tiny), pose_keypoint=pose, mask_group="person")
    assert parsing.labels.shape == (1, 20, 16)
    assert 20 < float(mask.sum()) < 200  # the figure covers part of the tiny frame
    noise = torch.rand(1, 16, 16, 3)
    assert int(_run(noise, if_no_person="empty")[0].labels.max()) == 0


@pytest.mark.slow
def test_huge_6000x4000(astronaut, mediapipe):
    import cv2

    canvas = np.full((4000, 6000, 3), 200, np.uint8)
    canvas[:, 1000:5000] = cv2.resize(astronaut, (4000, 4000), interpolation=cv2.INTER_LINEAR)
    parsing, _, mask, _ = _run(_img(canvas), mask_group="face")
    labels = parsing.labels[0].numpy()
    assert labels.shape == (4000, 6000)
    # the astronaut's nose (222, 128 in the 512 photo) is inside the face label
    nx, ny = int(1000 + 222 * 4000 / 512), int(128 * 4000 / 512)
    assert labels[ny, nx] == L["face"] and mask[0, ny, nx] == 1.0
    assert labels[:, :900].max() == 0 and labels[:, 5100:].max() == 0


def test_one_frame_video_and_mismatched_pose_lengths():
    img, _, person = drawn_person()
    frame = people_to_frame([person], 256, 320)
    parsing, _, _, _ = _run(_img(img), pose_keypoint=[frame])
    assert parsing.labels.shape == (1, 320, 256)
    video = _img(img).repeat(3, 1, 1, 1)
    with pytest.raises(NodeInputError, match="1 pose frame for a 3-frame video"):
        _run(video, pose_keypoint=[frame])
    with pytest.raises(NodeInputError, match="different lengths"):
        _run(video, pose_keypoint=[frame, frame])


def test_video_streams_and_follows_the_person():
    frames, poses = [], []
    for dx in (-30, 0, 30):
        img, _, person = drawn_person(dx=dx)
        frames.append(img)
        poses.append(people_to_frame([person], 256, 320, normalized=True))
    video = torch.from_numpy(np.stack(frames)).float() / 255
    parsing, preview, mask, _ = _run(video, pose_keypoint=poses, mask_group="upper_clothes")
    assert parsing.labels.shape == (3, 320, 256) and preview.shape == (3, 320, 256, 3)
    xs = [np.nonzero(parsing.labels[i].numpy() == L["face"])[1].mean() for i in range(3)]
    assert xs[0] + 20 < xs[1] < xs[2] - 20  # the face moves with the person
    assert torch.equal(mask > 0, parsing.labels == L["upper_clothes"])


def test_bad_options_and_missing_weights(monkeypatch):
    img, _, person = drawn_person()
    pose = [people_to_frame([person], 256, 320)]
    with pytest.raises(NodeInputError, match="mask_group"):
        _run(_img(img), pose_keypoint=pose, mask_group="shoes")
    with pytest.raises(NodeInputError, match="pose_keypoint"):
        _run(_img(img), pose_keypoint=[{"people": [{"pose_keypoints_2d": [1, 2]}],
                                        "canvas_width": 256, "canvas_height": 320}])
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(NodeInputError) as err:
        _run(_img(img), backend="schp_lip", pose_keypoint=pose)
    msg = str(err.value)
    assert "schp_lip" in msg and "exp-schp-201908261155-lip.pth" in msg and "geometric" in msg


def test_workflow_human_parse_into_parsing_preview():
    from executor import run_workflow

    from dance_reenact.nodes import NODE_CLASS_MAPPINGS

    img, _, person = drawn_person()

    class Source:
        @classmethod
        def INPUT_TYPES(cls):
            return {"required": {}}
        RETURN_TYPES = ("IMAGE", "POSE_KEYPOINT")
        FUNCTION = "run"
        CATEGORY = "test"

        def run(self):
            return _img(img), [people_to_frame([person], 256, 320, normalized=True)]

    prompt = {
        "1": {"class_type": "Source", "inputs": {}},
        "2": {"class_type": "DanceReenactHumanParse",
              "inputs": {"image": ["1", 0], "pose_keypoint": ["1", 1], "backend": "geometric",
                         "person": "largest", "person_index": 0, "mask_group": "person",
                         "if_no_person": "error"}},
        "3": {"class_type": "DanceReenactParsingPreview",
              "inputs": {"parsing": ["2", 0], "group": "face_hair"}},
    }
    out = run_workflow(prompt, {**NODE_CLASS_MAPPINGS, "Source": Source})
    labels = out["2"][0].labels
    assert torch.equal(out["3"][1] > 0, (labels == L["face"]) | (labels == L["hair"]))
    assert torch.allclose(out["3"][0], out["2"][1])


def test_pose_backend_without_its_weights_is_a_clear_error(monkeypatch):
    img, _, _ = drawn_person()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(NodeInputError) as err:
        _run(_img(img), pose_backend="openpose")
    msg = str(err.value)
    assert "input 'pose_backend'" in msg and "body_pose_model.pth" in msg
    assert "mediapipe" in msg.split("Fix:")[1]
