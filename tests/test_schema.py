"""Label schema, keypoint layouts and POSE_KEYPOINT conversion."""

from __future__ import annotations

import numpy as np
import pytest

from dance_reenact.models.core import schema
from dance_reenact.models.core.schema import Person, frame_to_people, people_to_frame


def _person(seed: int = 0, w: int = 640, h: int = 480) -> Person:
    rng = np.random.default_rng(seed)
    def pts(n):
        a = np.zeros((n, 3), np.float32)
        a[:, 0] = rng.uniform(5, w - 5, n)
        a[:, 1] = rng.uniform(5, h - 5, n)
        a[:, 2] = rng.uniform(0.3, 1.0, n)
        a[rng.random(n) < 0.2] = 0  # some missing
        return a
    return Person(pts(18), pts(70), pts(21), pts(21))


def test_label_schema_matches_spec():
    assert schema.NUM_LABELS == 22 and schema.NUM_B2F_CHANNELS == 27
    assert schema.LABEL["torso_skin"] == 10 and schema.LABEL["face"] == 13
    assert schema.LABEL["left_hand"] == 20 and schema.LABEL["right_hand"] == 21
    assert schema.LABEL_COLORS.shape == (22, 3)
    assert len({tuple(c) for c in schema.LABEL_COLORS}) == 22, "palette colours must differ"
    assert [n for n, _ in schema.PART_CROP_GROUPS] == [
        "face_hair", "upper_clothes", "lower_clothes", "shoes_socks", "skin"]


def test_body_layout_is_openpose_coco_order():
    assert schema.BODY_NAMES[:5] == ("nose", "neck", "right_shoulder", "right_elbow",
                                     "right_wrist")
    assert schema.BODY["left_ankle"] == 13 and schema.BODY["left_ear"] == 17
    assert len(schema.BODY_LIMBS) == 17 and len(schema.HAND_EDGES) == 20
    assert schema.HAND_COLORS.shape == (20, 3)


@pytest.mark.parametrize("normalized", [False, True])
def test_pose_keypoint_round_trip_both_conventions(normalized):
    people = [_person(1), _person(2)]
    frame = people_to_frame(people, 640, 480, normalized=normalized)
    assert schema.is_normalized(frame) == normalized
    back = frame_to_people(frame)
    assert len(back) == 2
    for a, b in zip(people, back):
        for part in ("body", "face", "left_hand", "right_hand"):
            pa, pb = getattr(a, part), getattr(b, part)
            ok = pa[:, 2] > 0
            np.testing.assert_allclose(pb[ok], pa[ok], atol=1e-3)
            assert (pb[~ok] == 0).all()


def test_controlnet_aux_style_frame_is_understood():
    # comfyui_controlnet_aux OpenPose: normalised coords, None for missing parts
    body = [0.0] * 54
    body[0:3] = [0.5, 0.25, 1.0]   # nose
    body[3:6] = [0.5, 0.4, 1.0]    # neck
    frame = {"people": [{"pose_keypoints_2d": body, "face_keypoints_2d": None,
                         "hand_left_keypoints_2d": None, "hand_right_keypoints_2d": None}],
             "canvas_width": 512, "canvas_height": 768}
    (p,) = frame_to_people(frame)
    np.testing.assert_allclose(p.body[0], [256, 192, 1.0])
    np.testing.assert_allclose(p.body[1], [256, 307.2, 1.0], rtol=1e-5)
    assert p.face[:, 2].sum() == 0 and p.left_hand.shape == (21, 3)
    # DWPose style: pixels, face with 68 points only is padded
    frame2 = {"people": [{"pose_keypoints_2d": [100, 50, 0.9] + [0] * 51,
                          "face_keypoints_2d": [10, 10, 1] * 68}],
              "canvas_width": 512, "canvas_height": 768}
    (q,) = frame_to_people(frame2)
    assert q.body[0, 0] == 100 and q.face[67, 2] == 1 and q.face[68, 2] == 0


def test_bad_pose_keypoint_frames_raise_clear_errors():
    with pytest.raises(ValueError, match="canvas_width"):
        frame_to_people({"people": []})
    with pytest.raises(ValueError, match="multiple of 3"):
        frame_to_people({"people": [{"pose_keypoints_2d": [1, 2]}], "canvas_width": 9,
                         "canvas_height": 9})
    with pytest.raises(ValueError, match="expected 18"):
        frame_to_people({"people": [{"pose_keypoints_2d": [1, 2, 1] * 25}],
                         "canvas_width": 9, "canvas_height": 9})
    assert frame_to_people({"people": [], "canvas_width": 5, "canvas_height": 5}) == []


def test_select_person_largest_and_index():
    small = Person(body=np.array([[10, 10, 1], [12, 12, 1]] + [[0, 0, 0]] * 16, np.float32))
    big = Person(body=np.array([[10, 10, 1], [200, 300, 1]] + [[0, 0, 0]] * 16, np.float32))
    assert schema.select_person([small, big]) is big
    assert schema.select_person([small, big], "index", 0) is small
    assert schema.select_person([]) is None
    with pytest.raises(ValueError, match="out of range"):
        schema.select_person([small], "index", 3)


def test_colorize_and_group_masks():
    labels = np.array([[0, 13, 2], [5, 9, 21]], np.uint8)
    rgb = schema.colorize_labels(labels)
    assert rgb.shape == (2, 3, 3) and (rgb[0, 0] == 0).all()
    np.testing.assert_array_equal(rgb[1, 2], schema.LABEL_COLORS[21])
    np.testing.assert_array_equal(schema.group_mask(labels, "face_hair"),
                                  [[False, True, True], [False, False, False]])
    np.testing.assert_array_equal(schema.group_mask(labels, "person"), labels > 0)
    with pytest.raises(ValueError, match="outside the schema"):
        schema.colorize_labels(np.array([[30]], np.uint8))
    with pytest.raises(ValueError, match="unknown label group"):
        schema.group_mask(labels, "wings")


# --------------------------------------------------------------------------------------------
# Normalised vs pixels: decided once per sequence
# --------------------------------------------------------------------------------------------


def _aux_frame(x_shift: float = 0.0, w: int = 512, h: int = 512) -> dict:
    """A controlnet_aux-style normalised frame (no convention key): a standing person 0.2..0.9
    of the canvas high, moved right by ``x_shift`` (a hand may leave the frame)."""
    body = np.zeros((18, 3), np.float32)
    body[:, 0] = np.linspace(0.35, 0.65, 18) + x_shift
    body[:, 1] = np.linspace(0.2, 0.9, 18)
    body[:, 2] = 0.9
    return {"people": [{"pose_keypoints_2d": body.reshape(-1).tolist()}],
            "canvas_width": w, "canvas_height": h}


def test_one_keypoint_outside_0_1_does_not_collapse_a_normalised_frame():
    from dance_reenact.models.geometry.pose_sequence import parse_sequence

    frames = [_aux_frame(), _aux_frame(0.0), _aux_frame()]
    # frame 1: the right wrist just right of the frame, an ankle just left of it
    frames[1]["people"][0]["pose_keypoints_2d"][3 * 4] = 1.03
    frames[1]["people"][0]["pose_keypoints_2d"][3 * 10] = -0.05
    assert schema.sequence_is_normalized(frames)
    assert schema.is_normalized(frames[1])  # within the tolerance band, even alone
    seq = parse_sequence(frames)
    heights = [p[0].bbox()[3] - p[0].bbox()[1] for p in seq.people]
    assert min(heights) > 300, heights  # 0.7 of 512 px in every frame, not ~1 px
    assert seq.normalized and seq.collapsed == []
    people = schema.frames_to_people(frames)
    assert people[1][0].body[4, 0] == pytest.approx(1.03 * 512, abs=0.1)


def test_sequence_decides_once_even_past_the_band():
    # One frame with a point at x = 1.4 (outside the band): the whole sequence is read as
    # pixels, and every frame's person is reported as collapsed rather than one silently.
    from dance_reenact.models.geometry.pose_sequence import parse_sequence

    frames = [_aux_frame(), _aux_frame()]
    frames[1]["people"][0]["pose_keypoints_2d"][3 * 4] = 1.4
    seq = parse_sequence(frames)
    assert not seq.normalized and seq.collapsed == [0, 1]


def test_declared_convention_wins_over_the_values():
    p = Person(body=np.array([[0.2, 0.3, 1.0], [0.8, 0.9, 1.0]] + [[0, 0, 0]] * 16, np.float32))
    pix = people_to_frame([p], 100, 100)  # a (tiny) person in pixels, declared as such
    assert pix["coordinates"] == "pixels" and not schema.is_normalized(pix)
    (q,) = frame_to_people(pix)
    np.testing.assert_allclose(q.body[1, :2], [0.8, 0.9])
    assert schema.collapsed_frames([[q]]) == [0]
    norm = people_to_frame([p.scaled(100, 100)], 100, 100, normalized=True)
    assert norm["coordinates"] == "normalized"
    # a declared normalised frame with a keypoint far outside 0..1 stays normalised
    norm["people"][0]["pose_keypoints_2d"][0] = 1.9
    assert schema.sequence_is_normalized([norm])
    (r,) = frame_to_people(norm)
    assert r.body[0, 0] == pytest.approx(190.0)
