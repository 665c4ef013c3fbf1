"""OpenPose and DensePose nodes on the real astronaut photo (MediaPipe + weightless backends):
the geometry a person would check, POSE_KEYPOINT round trips, and bad inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dance_reenact.models.core.schema import (  # noqa: E402
    BODY,
    DENSEPOSE_PART,
    Person,
    frame_to_people,
)
from dance_reenact.models.perception.densepose import densepose_from_keypoints  # noqa: E402
from dance_reenact.nodes import NODE_CLASS_MAPPINGS  # noqa: E402
from dance_reenact.nodes.perception import DensePoseNode, OpenPose  # noqa: E402
from dance_reenact.nodes.runtime import NodeInputError  # noqa: E402
from dance_reenact.nodes.sockets import DensePose, rgb_uint8_to_image  # noqa: E402
from dance_reenact.nodes.utility import RenderPose  # noqa: E402


@pytest.fixture(scope="module")
def astro_image():
    from skimage import data

    return rgb_uint8_to_image(data.astronaut())


@pytest.fixture(scope="module")
def astro_pose(astro_image):
    return OpenPose().detect(astro_image, backend="mediapipe")


def _body(frame: dict, person: int = 0) -> np.ndarray:
    return np.asarray(frame["people"][person]["pose_keypoints_2d"], np.float32).reshape(18, 3)


def test_nodes_registered():
    assert "DanceReenactOpenPose" in NODE_CLASS_MAPPINGS
    assert "DanceReenactDensePose" in NODE_CLASS_MAPPINGS


def test_openpose_astronaut_geometry(astro_pose):
    frames, stick, mask, counts, _ = astro_pose
    assert counts == "1" and len(frames) == 1
    f = frames[0]
    assert (f["canvas_width"], f["canvas_height"]) == (512, 512)
    body = _body(f)
    nose, neck = body[BODY["nose"]], body[BODY["neck"]]
    rs, ls = body[BODY["right_shoulder"]], body[BODY["left_shoulder"]]
    assert min(nose[2], neck[2], rs[2], ls[2]) > 0.5
    assert nose[1] < neck[1] - 40 and abs(nose[0] - neck[0]) < 60
    assert rs[0] < neck[0] < ls[0] and abs(rs[1] - ls[1]) < 60
    # Person mask covers the body keypoints and leaves the top corners (flag/sky) out.
    m = mask[0].numpy()
    assert mask.shape == (1, 512, 512)
    for name in ("nose", "neck", "right_shoulder", "left_shoulder", "right_elbow"):
        x, y, c = body[BODY[name]]
        if c > 0:
            assert m[int(y), int(x)] > 0.5, name
    assert m[:30, :30].max() < 0.5 and m[:30, -30:].max() < 0.5
    # Wrists, when found, are below the elbows' shoulders: the arms hang down.
    for side in ("right", "left"):
        w = body[BODY[f"{side}_wrist"]]
        if w[2] > 0:
            assert w[1] > body[BODY[f"{side}_shoulder"], 1] + 100
    # Face 70 and (derived) hands present; the stick figure is drawn where the body is.
    assert len(f["people"][0]["face_keypoints_2d"]) == 210
    st = stick[0].numpy()
    assert st.shape == (512, 512, 3)
    x, y = neck[:2].astype(int)
    assert st[y - 3:y + 4, x - 3:x + 4].max() > 0.3
    assert st[:40, :40].max() == 0.0


@pytest.mark.parametrize("coordinates", ["pixels", "normalized"])
def test_pose_keypoint_round_trip_through_render(astro_image, coordinates):
    frames, stick, _, _, _ = OpenPose().detect(astro_image, coordinates=coordinates)
    body = _body(frames[0])
    if coordinates == "normalized":
        ok = body[:, 2] > 0
        assert body[ok, :2].max() <= 1.0
    people = frame_to_people(frames[0])
    assert people[0].body[BODY["nose"], 0] > 100  # back in pixels either way
    (rendered,) = RenderPose().render(frames)
    assert rendered.shape == stick.shape
    assert torch.allclose(rendered, stick)


def test_densepose_weightless_astronaut(astro_image, astro_pose):
    frames, _, mask, _, _ = astro_pose
    dp, preview, _ = DensePoseNode().estimate(astro_image, backend="weightless")
    assert isinstance(dp, DensePose) and dp.index.shape == (1, 512, 512)
    assert preview.shape == (1, 512, 512, 3)
    idx = dp.index[0].numpy()
    body = _body(frames[0])

    def at(name: str) -> int:
        x, y, _ = body[BODY[name]]
        return int(idx[int(y), int(x)])

    assert at("nose") in (DENSEPOSE_PART["head_right"], DENSEPOSE_PART["head_left"])
    # Chest: a bit below the neck, between the shoulders -> torso front (she faces us).
    neck = body[BODY["neck"]]
    assert idx[int(neck[1]) + 60, int(neck[0])] == DENSEPOSE_PART["torso_front"]
    # Middle of her right upper arm -> upper_arm_right_front.
    rs, re = body[BODY["right_shoulder"]], body[BODY["right_elbow"]]
    mid = ((rs[:2] + re[:2]) / 2).astype(int)
    assert idx[mid[1], mid[0]] == DENSEPOSE_PART["upper_arm_right_front"]
    # Face halves: the image's left half of the head is her right.
    nose = body[BODY["nose"]]
    assert idx[int(nose[1]), int(nose[0]) - 25] == DENSEPOSE_PART["head_right"]
    assert idx[int(nose[1]), int(nose[0]) + 25] == DENSEPOSE_PART["head_left"]
    # Background is zero, the body non-zero; U, V in 0..1 and zero off the body.
    m = mask[0].numpy() > 0.5
    assert (idx[~m] == 0).all() and (idx[m] > 0).mean() > 0.99
    assert idx[:30, :30].max() == 0
    u, v = dp.u[0].numpy(), dp.v[0].numpy()
    assert 0 <= u.min() and u.max() <= 1 and 0 <= v.min() and v.max() <= 1
    assert (u[idx == 0] == 0).all()
    # Along the upper arm U grows from shoulder to elbow.
    a = (rs[:2] * 0.8 + re[:2] * 0.2).astype(int)
    b = (rs[:2] * 0.2 + re[:2] * 0.8).astype(int)
    assert u[a[1], a[0]] < u[b[1], b[0]]
    # The same result from the OpenPose node's keypoints and mask.
    dp2, _, _ = DensePoseNode().estimate(astro_image, pose_keypoint=frames, person_mask=mask)
    assert (dp2.index == dp.index).float().mean() > 0.99


def test_densepose_weightless_back_view_uses_back_parts():
    # A synthetic person seen from behind: their right shoulder is on the image's right.
    body = np.zeros((18, 3), np.float32)
    pts = {"neck": (50, 30), "right_shoulder": (70, 30), "left_shoulder": (30, 30),
           "right_elbow": (75, 60), "left_elbow": (25, 60), "right_hip": (62, 90),
           "left_hip": (38, 90), "right_knee": (62, 130), "left_knee": (38, 130),
           "nose": (50, 12)}
    for k, (x, y) in pts.items():
        body[BODY[k]] = (x, y, 1.0)
    dp = densepose_from_keypoints(Person(body=body), None, 150, 100)
    assert dp.index[60, 50] == DENSEPOSE_PART["torso_back"]
    assert dp.index[45, 72] == DENSEPOSE_PART["upper_arm_right_back"]
    assert dp.index[110, 62] == DENSEPOSE_PART["upper_leg_right_back"]
    assert dp.index[0, 0] == 0


# --------------------------------------------------------------------------------------------
# Bad inputs
# --------------------------------------------------------------------------------------------

def test_no_person_blank_image():
    blank = torch.zeros(1, 128, 160, 3)
    with pytest.raises(NodeInputError, match=r"\[OpenPose\] input 'image': no person was "
                       r"found in the image.*on_no_person"):
        OpenPose().detect(blank)
    frames, stick, mask, counts, _ = OpenPose().detect(blank, on_no_person="empty")
    assert counts == "0" and frames[0]["people"] == []
    assert float(stick.max()) == 0 and float(mask.max()) == 0
    with pytest.raises(NodeInputError, match=r"\[DensePose\].*no person"):
        DensePoseNode().estimate(blank)
    dp, _, _ = DensePoseNode().estimate(blank, on_no_person="empty")
    assert int(dp.index.max()) == 0


def test_video_names_the_frame_without_person(astro_image):
    import cv2

    small = cv2.resize((astro_image[0].numpy() * 255).astype(np.uint8), (256, 256))
    video = rgb_uint8_to_image([small, np.zeros_like(small), small])
    with pytest.raises(NodeInputError, match="frame 1 of 3"):
        OpenPose().detect(video, on_no_person="error")
    frames, stick, mask, counts, report = OpenPose().detect(video, on_no_person="empty")
    assert counts == "1,0,1" and len(frames) == 3 and stick.shape == (3, 256, 256, 3)
    assert float(mask[1].max()) == 0 and float(mask[0].max()) > 0.5
    assert frames[1]["people"] == [] and "no person found in 1 (1): left empty" in report
    # The default: the missing frame gets the pose of its neighbours (the video goes on), and
    # the report says so.
    frames, stick, mask, counts, report = OpenPose().detect(video)
    assert counts == "1,0,1" and "1 interpolated (1)" in report
    b0, b1 = _body(frames[0]), _body(frames[1])
    ok = (b0[:, 2] > 0.5) & (b1[:, 2] > 0)
    assert ok.sum() >= 8 and np.abs(b1[ok, :2] - b0[ok, :2]).max() < 3  # same still frames
    assert float(stick[1].max()) > 0 and float(mask[1].max()) > 0.5
    dp, _, report = DensePoseNode().estimate(video)
    assert int((dp.index[1] > 0).sum()) > 0.5 * int((dp.index[0] > 0).sum())
    assert "no person in 1 frame(s) (1): interpolated from the neighbouring frames" in report
    with pytest.raises(NodeInputError, match="frame 1 of 3"):
        DensePoseNode().estimate(video, on_no_person="error")


def test_a_video_with_nobody_at_all_is_a_clear_error():
    blank = torch.zeros(3, 128, 160, 3)
    with pytest.raises(NodeInputError, match=r"\[OpenPose\] input 'image': no person was found "
                       r"in any of the 3 frames.*on_no_person"):
        OpenPose().detect(blank)
    with pytest.raises(NodeInputError, match=r"\[DensePose\] input 'image': no person was "
                       r"found in any of the 3 frames"):
        DensePoseNode().estimate(blank)
    frames, _, _, counts, report = OpenPose().detect(blank, on_no_person="empty")
    assert counts == "0,0,0" and "no person found in 3" in report


def test_two_people_side_by_side(astro_image):
    two = torch.cat([astro_image, astro_image], dim=2)  # 512 x 1024, astronaut twice
    frames, stick, mask, counts, _ = OpenPose().detect(two, people="all")
    # MediaPipe finds at most one person: one whole person, not a chimera of the two.
    assert counts == "1"
    body = _body(frames[0])
    xs = body[body[:, 2] > 0.5, 0]
    assert xs.max() - xs.min() < 400 and (xs.max() < 512 or xs.min() > 512)
    with pytest.raises(NodeInputError, match="person_index"):
        OpenPose().detect(two, people="index", person_index=1)


@pytest.mark.parametrize("channels", [1, 4])
def test_grayscale_and_rgba(astro_image, astro_pose, channels):
    if channels == 1:
        img = astro_image.mean(dim=-1, keepdim=True)
    else:
        img = torch.cat([astro_image, torch.ones_like(astro_image[..., :1])], dim=-1)
    frames, stick, mask, counts, _ = OpenPose().detect(img)
    assert counts == "1" and stick.shape == (1, 512, 512, 3)
    ref = _body(astro_pose[0][0])[BODY["nose"], :2]
    got = _body(frames[0])[BODY["nose"], :2]
    assert np.hypot(*(ref - got)) < 10
    dp, preview, _ = DensePoseNode().estimate(img)
    assert preview.shape == (1, 512, 512, 3) and int(dp.index.max()) > 0


def test_tiny_16x16_image():
    tiny = torch.rand(1, 16, 16, 3, generator=torch.Generator().manual_seed(0))
    frames, stick, mask, counts, _ = OpenPose().detect(tiny, on_no_person="empty")
    assert stick.shape == (1, 16, 16, 3) and mask.shape == (1, 16, 16)
    assert counts in ("0", "1") and len(frames) == 1
    dp, preview, _ = DensePoseNode().estimate(tiny, on_no_person="empty")
    assert dp.index.shape == (1, 16, 16)


@pytest.mark.slow
def test_huge_6000x4000_image(astro_image):
    import cv2

    big = cv2.resize((astro_image[0].numpy() * 255).astype(np.uint8), (6000, 4000))
    img = rgb_uint8_to_image(big)
    del big
    frames, stick, mask, counts, _ = OpenPose().detect(img)
    assert counts == "1" and stick.shape == (1, 4000, 6000, 3) and mask.shape == (1, 4000, 6000)
    nose = _body(frames[0])[BODY["nose"]]
    assert 2000 < nose[0] < 3500 and 500 < nose[1] < 1500  # astronaut's nose, scaled
    # Weightless DensePose labels huge frames at 1024 px and scales the result back.
    dp = densepose_from_keypoints(frame_to_people(frames[0])[0], mask[0].numpy(), 4000, 6000)
    assert dp.index.shape == (4000, 6000)
    assert int(dp.index[int(nose[1]), int(nose[0])]) in (23, 24)
    assert int(dp.index[:300, :300].max()) == 0


def test_one_frame_video(astro_image):
    frames, stick, mask, counts, _ = OpenPose().detect(astro_image[:1])
    assert len(frames) == 1 and counts == "1"


def test_empty_keypoints_input(astro_image):
    empty = [{"people": [], "canvas_width": 512, "canvas_height": 512}]
    with pytest.raises(NodeInputError, match="no person"):
        DensePoseNode().estimate(astro_image, pose_keypoint=empty)
    dp, _, _ = DensePoseNode().estimate(astro_image, pose_keypoint=empty, on_no_person="empty")
    assert int(dp.index.max()) == 0
    (rendered,) = RenderPose().render(empty)
    assert rendered.shape == (1, 512, 512, 3) and float(rendered.max()) == 0


def test_densepose_input_mismatches(astro_image, astro_pose):
    frames, _, mask, _, _ = astro_pose
    with pytest.raises(NodeInputError, match="person_mask.*but the image is 512x512"):
        DensePoseNode().estimate(astro_image, person_mask=mask[:, :100, :100])
    two = torch.cat([astro_image, astro_image])
    three = frames * 3
    with pytest.raises(NodeInputError, match="3 pose frames for 2 image frames"):
        DensePoseNode().estimate(two, pose_keypoint=three)
    with pytest.raises(NodeInputError, match="backend"):
        DensePoseNode().estimate(astro_image, backend="nope")
    with pytest.raises(NodeInputError, match="backend"):
        OpenPose().detect(astro_image, backend="nope")


def _dp_people() -> dict[str, Person]:
    """A front-view person with hands, and variants missing what _segments falls back on."""
    pts = {"neck": (50, 30), "right_shoulder": (30, 30), "left_shoulder": (70, 31),
           "right_elbow": (24, 58), "left_elbow": (77, 60), "right_wrist": (20, 84),
           "left_wrist": (83, 85), "right_hip": (40, 88), "left_hip": (61, 89),
           "right_knee": (38, 120), "left_knee": (63, 121), "right_ankle": (37, 146),
           "left_ankle": (65, 147), "nose": (51, 13), "right_eye": (47, 10),
           "left_eye": (55, 10)}
    body = np.zeros((18, 3), np.float32)
    for k, (x, y) in pts.items():
        body[BODY[k]] = (x, y, 1.0)
    hand = np.zeros((21, 3), np.float32)
    hand[:, 0], hand[:, 1], hand[:, 2] = np.linspace(84, 90, 21), np.linspace(86, 98, 21), 1.0

    def without(*names: str) -> Person:
        b = body.copy()
        b[[BODY[n] for n in names], 2] = 0.0
        return Person(body=b, left_hand=hand)

    return {"front": Person(body=body.copy(), left_hand=hand),
            "no_shoulders_no_neck": without("right_shoulder", "left_shoulder", "neck"),
            "no_hips_no_elbow": without("right_hip", "left_hip", "right_elbow"),
            "no_hips_no_nose": without("right_hip", "left_hip", "nose"),
            "legs_only": without("neck", "right_shoulder", "left_shoulder", "right_elbow",
                                 "left_elbow", "right_wrist", "left_wrist", "right_hip",
                                 "left_hip", "nose", "right_eye", "left_eye"),
            "nose_on_the_neck": Person(body=np.where(np.arange(18)[:, None] == BODY["nose"],
                                                     body[BODY["neck"]], body))}


# Weightless DensePose of _dp_people() on a 150x100 frame before _segments was split into
# helpers (C901): pixels per part, and the sums of U and V.
DP_PINNED = {
    "front": ({2: 2104, 3: 64, 4: 132, 5: 9, 6: 16, 9: 555, 10: 575, 13: 370, 14: 373,
               15: 523, 16: 456, 19: 367, 20: 350, 23: 369, 24: 392}, 3375.19, 3275.74),
    "no_shoulders_no_neck": ({3: 83, 4: 168, 5: 9, 6: 16, 9: 719, 10: 702, 13: 415, 14: 415,
                              19: 550, 20: 547, 23: 554, 24: 587}, 2333.99, 2321.26),
    "no_hips_no_elbow": ({2: 616, 4: 132, 5: 9, 6: 16, 13: 494, 14: 495, 15: 531, 19: 370,
                          23: 369, 24: 392}, 1479.97, 1719.04),
    "no_hips_no_nose": ({2: 1321, 3: 64, 4: 132, 5: 9, 6: 16, 13: 494, 14: 495, 15: 525,
                         16: 456, 19: 367, 20: 346}, 1485.49, 2057.93),
    "legs_only": ({5: 5, 6: 4, 13: 138, 14: 179}, 140.31, 113.94),
    "nose_on_the_neck": ({2: 2136, 3: 64, 4: 66, 5: 9, 6: 16, 9: 555, 10: 575, 13: 370,
                          14: 373, 15: 523, 16: 456, 19: 367, 20: 350, 23: 336, 24: 351},
                         3478.92, 3208.99),
}


@pytest.mark.parametrize("name", sorted(DP_PINNED))
def test_densepose_weightless_output_is_pinned(name):
    """Characterisation: the body scale, torso, hand, foot and head fallbacks of the
    weightless DensePose, each reached by one person; any change of its output shows here."""
    dp = densepose_from_keypoints(_dp_people()[name], None, 150, 100)
    counts = np.bincount(dp.index.ravel(), minlength=25)
    want_counts, want_u, want_v = DP_PINNED[name]
    assert {int(i): int(counts[i]) for i in np.nonzero(counts)[0] if i} == want_counts
    assert float(dp.u.sum()) == pytest.approx(want_u, abs=0.01)
    assert float(dp.v.sum()) == pytest.approx(want_v, abs=0.01)
