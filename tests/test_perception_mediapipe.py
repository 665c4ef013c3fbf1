"""MediaPipe Holistic mapped onto the OpenPose layouts, checked on the astronaut photo."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dance_reenact.models.core.schema import BODY, FACE_REGIONS  # noqa: E402
from dance_reenact.models.perception.base import Detection, derive_hand  # noqa: E402
from dance_reenact.models.perception.mediapipe_holistic import (  # noqa: E402
    FACE68_FROM_MESH,
    detect_people,
)


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
    from dance_reenact.models.core.schema import Person
    from dance_reenact.models.perception.base import HandGapFiller, fill_missing_hands

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


# --------------------------------------------------------------------------------------------
# Video: no ghosts, small people, reported gaps (models/perception/pose.py)
# --------------------------------------------------------------------------------------------

DEV_CLIPS = Path("/work/shared/dev_clips")


def _clip(name: str, frames) -> list[np.ndarray]:
    path = DEV_CLIPS / name
    if not path.is_file():
        pytest.skip(f"{path} is not on this machine")
    from PIL import Image

    im = Image.open(path)
    out = []
    for i in frames:
        im.seek(i)
        out.append(np.array(im.convert("RGB")))
    return out


def _astronaut_video(astronaut, n: int) -> list[np.ndarray]:
    """The astronaut moving a few pixels per frame (a 'video' the tracker follows)."""
    import cv2

    out = []
    for t in range(n):
        m = np.float32([[1, 0, 3 * t], [0, 1, t]])
        out.append(cv2.warpAffine(astronaut, m, (512, 512), borderMode=cv2.BORDER_REPLICATE))
    return out


def test_video_tracking_keeps_no_ghost_through_empty_frames(astronaut):
    from dance_reenact.models.perception.pose import PoseEstimator

    real = _astronaut_video(astronaut, 5)
    # A fade to black (3 % and 2 %: black to the eye; MediaPipe's tracker still follows "her")
    # then a plain frame and noise.
    rng = np.random.default_rng(0)
    empty = [(real[-1] * 0.03).astype(np.uint8), (real[-1] * 0.02).astype(np.uint8),
             np.full_like(real[0], 128), rng.integers(0, 256, real[0].shape).astype(np.uint8)]
    with PoseEstimator("mediapipe", video=True) as est:
        found = [len(est(f)) for f in real + empty]
    assert found == [1] * 5 + [0] * 4, found
    assert est.stats.missing == [5, 6, 7, 8]
    assert set(est.stats.ghosts) <= {5, 6} and est.stats.ghosts  # the fade was a ghost
    assert "no person in 4 (5, 6, 7, 8)" in str(est.stats)


def test_video_keeps_real_frames_the_static_detector_misses():
    # pisa_dancer frames 4-7: the dancer is plainly there but a static detection misses her;
    # the clear, tracked person must not be second-guessed away.
    from dance_reenact.models.perception.pose import PoseEstimator

    frames = _clip("pisa_dancer.webp", range(0, 9))
    with PoseEstimator("mediapipe", video=True) as est:
        found = [len(est(f)) for f in frames]
    assert found == [1] * 9 and est.stats.ghosts == []


@pytest.mark.parametrize("video", [False, True])
def test_small_person_is_found_in_an_enlarged_crop(video):
    import cv2

    from dance_reenact.models.perception.pose import PoseEstimator

    frames = _clip("pisa_dancer.webp", (0, 10))
    height = 263.0  # the dancer's keypoint height at 350 px (frame 0)
    boxes, canvases = [], []
    for f in frames:
        s = 52 / height
        small = cv2.resize(f, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
        canvas = np.full((350, 350, 3), (150, 160, 170), np.uint8)
        canvas[200:200 + small.shape[0], 60:60 + small.shape[1]] = small
        canvases.append(canvas)
        # the dancer's box in the canvas (her keypoint box at 350 px was ~38..238 x 54..318)
        boxes.append((60 + 30 * s, 200 + 45 * s, 60 + 245 * s, 200 + 325 * s))
    with PoseEstimator("mediapipe", video=video) as est:
        dets = [est(c) for c in canvases]
    assert est.stats.missing == [] and est.stats.enlarged == [0, 1]
    for d, (x0, y0, x1, y1) in zip(dets, boxes):
        assert len(d) == 1
        body = d[0].person.body
        ok = body[:, 2] > 0.3
        assert ok.sum() >= 10
        assert (body[ok, 0] >= x0 - 4).all() and (body[ok, 0] <= x1 + 4).all(), body[ok, :2]
        assert (body[ok, 1] >= y0 - 4).all() and (body[ok, 1] <= y1 + 4).all(), body[ok, :2]
        assert body[ok, 1].max() - body[ok, 1].min() > 35  # a whole person, not a fragment
        mask = d[0].mask
        assert mask.shape == (350, 350) and mask[:150].max() < 0.5  # mapped back, not spread
        assert mask[int(y0):int(y1), int(x0):int(x1)].mean() > 0.2
