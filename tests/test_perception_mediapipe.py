"""MediaPipe Holistic mapped onto the OpenPose layouts, checked on the astronaut photo."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("mediapipe")

from dance_reenact.models.perception.base import Detection, derive_hand  # noqa: E402
from dance_reenact.models.perception.mediapipe_holistic import (  # noqa: E402
    FACE68_FROM_MESH,
    detect_people,
)
from dance_reenact.models.schema import BODY, FACE_REGIONS  # noqa: E402


@pytest.fixture(scope="module")
def astro_det():
    from skimage import data

    dets = detect_people(data.astronaut(), with_mask=True)
    assert len(dets) == 1
    return dets[0]


def _pt(det: Detection, name: str) -> np.ndarray:
    p = det.person.body[BODY[name]]
    assert p[2] > 0, f"{name} missing"
    return p


def test_astronaut_body_geometry(astro_det):
    d = astro_det
    assert isinstance(d, Detection) and 0 < d.score <= 1
    nose, neck = _pt(d, "nose"), _pt(d, "neck")
    rs, ls = _pt(d, "right_shoulder"), _pt(d, "left_shoulder")
    # The astronaut faces the camera: her right shoulder is on the image's left.
    assert rs[0] < neck[0] < ls[0]
    assert nose[1] < neck[1] - 40  # nose clearly above the neck
    assert 150 < abs(ls[0] - rs[0]) < 300  # shoulder width for a 512 px half-body shot
    # Neck is the shoulder midpoint.
    assert np.allclose(neck[:2], (rs[:2] + ls[:2]) / 2, atol=1e-3)
    # Eyes above the nose, right eye on the image's left.
    re, le = _pt(d, "right_eye"), _pt(d, "left_eye")
    assert re[0] < le[0] and max(re[1], le[1]) < nose[1]
    # Everything detected lies inside the frame.
    ok = d.person.body[:, 2] > 0
    assert (d.person.body[ok, :2] >= -12).all() and (d.person.body[ok, :2] <= 524).all()


def test_astronaut_mask_covers_body(astro_det):
    m = astro_det.mask
    assert m is not None and m.shape == (512, 512) and m.dtype == np.float32
    assert 0 <= m.min() and m.max() <= 1
    for name in ("nose", "neck", "right_shoulder", "left_shoulder", "right_eye", "left_eye"):
        x, y, _ = _pt(astro_det, name)
        assert m[int(y), int(x)] > 0.5, name
    # The top-left corner (sky/flag background) is not the person.
    assert m[:40, :40].mean() < 0.1
    assert 0.15 < (m > 0.5).mean() < 0.7


def test_astronaut_face_70(astro_det):
    face = astro_det.person.face
    assert face.shape == (70, 3) and (face[:, 2] == 1).all()
    nose = _pt(astro_det, "nose")
    fx0, fy0 = face[:, :2].min(0)
    fx1, fy1 = face[:, :2].max(0)
    assert fx0 < nose[0] < fx1 and fy0 < nose[1] < fy1
    jaw = face[list(FACE_REGIONS["jaw"])]
    # Jaw runs from the subject's right (image left) to her left; the chin is the lowest.
    assert jaw[0, 0] < jaw[16, 0] and np.argmax(jaw[:, 1]) in range(6, 11)
    brows = face[list(FACE_REGIONS["right_eyebrow"] + FACE_REGIONS["left_eyebrow"])]
    eyes = face[list(FACE_REGIONS["right_eye"] + FACE_REGIONS["left_eye"])]
    lips = face[list(FACE_REGIONS["outer_lips"])]
    assert brows[:, 1].mean() < eyes[:, 1].mean() < lips[:, 1].mean()
    # Pupils inside their eyes.
    for pupil, eye in ((68, "right_eye"), (69, "left_eye")):
        e = face[list(FACE_REGIONS[eye])]
        assert e[:, 0].min() <= face[pupil, 0] <= e[:, 0].max()
    assert len(FACE68_FROM_MESH) == 68


def test_astronaut_hands_derived_when_undetected(astro_det):
    p = astro_det.person
    for side in ("left", "right"):
        hand = getattr(p, f"{side}_hand")
        w = p.body[BODY[f"{side}_wrist"]]
        if w[2] == 0:
            continue
        assert hand.shape == (21, 3) and (hand[:, 2] > 0).all()
        assert np.allclose(hand[0, :2], w[:2], atol=1.0)  # the hand starts at the wrist
        assert (hand[:, 2] <= 1).all()


def test_derive_hand_follows_forearm():
    hand = derive_hand(np.array([100.0, 100.0]), np.array([100.0, 200.0]),
                       thumb_towards=np.array([150.0, 200.0]))
    assert np.allclose(hand[0, :2], [100, 200])
    # Fingers point further down the forearm, 0.75 x forearm long; thumb on the +x side.
    assert np.isclose(hand[12, 1], 275.0, atol=0.5) and abs(hand[12, 0] - 100) < 10
    assert hand[4, 0] > 100 > hand[20, 0]
    assert np.allclose(hand[:, 2], 0.2)
    assert (derive_hand(np.zeros(2), np.zeros(2)) == 0).all()


def test_blank_image_no_person():
    assert detect_people(np.zeros((256, 256, 3), np.uint8)) == []


@pytest.mark.parametrize("shape", [(16, 16, 3), (4000, 6000, 3)])
def test_tiny_and_huge_images(shape, astronaut):
    import cv2

    img = cv2.resize(astronaut, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)
    dets = detect_people(img)
    if shape[0] == 16:
        # Nothing recognisable at 16 px: no person, or one inside the frame.
        for d in dets:
            assert d.mask.shape == (16, 16)
        return
    assert len(dets) == 1
    d = dets[0]
    assert d.mask.shape == (4000, 6000)
    # Same pose as at 512 px, scaled.
    small = detect_people(cv2.resize(astronaut, (600, 400)))[0]
    for name in ("nose", "neck"):
        a = d.person.body[BODY[name], :2] / 10
        b = small.person.body[BODY[name], :2]
        assert np.hypot(*(a - b)) < 8, name


def test_hand_gap_filler_bridges_short_gaps():
    from dance_reenact.models.perception.base import HandGapFiller, fill_missing_hands
    from dance_reenact.models.schema import Person

    def frame(wrist_x: float, with_hand: bool) -> Detection:
        body = np.zeros((18, 3), np.float32)
        body[BODY["neck"]] = (50, 20, 1)
        body[BODY["left_elbow"]] = (wrist_x, 40, 1)
        body[BODY["left_wrist"]] = (wrist_x, 60, 1)
        p = Person(body=body)
        if with_hand:
            p.left_hand[:] = (wrist_x + 3, 70, 0.9)
        det = Detection(person=p, mask=None, score=1.0)
        det.derived_hands |= fill_missing_hands(p)
        return det

    filler = HandGapFiller(max_gap=2)
    filler(frame(100, True))
    d1 = filler(frame(110, False))  # the wrist moved 10 px: the hand follows, half confidence
    assert "left" not in d1.derived_hands
    assert np.allclose(d1.person.left_hand[:, :2], (113, 70)) and np.allclose(
        d1.person.left_hand[:, 2], 0.45)
    filler(frame(110, False))
    d3 = filler(frame(110, False))  # gap longer than 2 frames: the derived hand stays
    assert "left" in d3.derived_hands and np.allclose(d3.person.left_hand[:, 2], 0.2)
