"""``--background driver``: the driver video's clean plate, streamed and registered."""

from __future__ import annotations

import tracemalloc

import cv2
import numpy as np
from pose_synth import bone_lengths, build_body

from dance_reenact.models.core.schema import Person
from dance_reenact.models.perception.base import mask_from_keypoints
from dance_reenact.pipeline import driver_plate

MAGENTA = np.array([230, 20, 210], np.uint8)


def person_at(x: float, y: float, scale: float) -> Person:
    return Person(body=build_body((x, y), bone_lengths(scale=scale)))


def scene(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A photo-like textured scene (scikit-image's coffee, resized): uint8 (h, w, 3)."""
    from skimage import data

    return cv2.resize(data.coffee(), (w, h), interpolation=cv2.INTER_AREA)


def paint(frame: np.ndarray, p: Person, loose: int = 0) -> np.ndarray:
    """Draw the person in magenta; ``loose`` grows it beyond the keypoint mask (a dress)."""
    m = mask_from_keypoints(p, *frame.shape[:2]) > 0.5
    if loose:
        k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * loose + 1,) * 2)
        m = cv2.dilate(m.astype(np.uint8), k) > 0
    out = frame.copy()
    out[m] = MAGENTA
    return out


def magenta_share(img: np.ndarray) -> float:
    d = np.abs(img.astype(int) - MAGENTA.astype(int)).sum(-1)
    return float((d < 90).mean())


def sharpness(img: np.ndarray) -> float:
    return float(cv2.Laplacian(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var())


def test_panning_camera_gives_a_sharp_plate_of_the_reference_view():
    h, w, n, step = 96, 128, 30, 2  # the camera pans 2 px per frame: 58 px in all
    world = scene(h + 8, w + step * n + 8)
    people = [person_at(30 + 2.2 * t, 20, 24) for t in range(n)]

    def frames():
        for t in range(n):
            yield paint(world[4:4 + h, step * t:step * t + w], people[t], loose=2)

    ref = n // 2  # 30 frames <= 48 are all sampled; the middle one is the reference
    truth = world[4:4 + h, step * ref:step * ref + w]
    plate = driver_plate(frames, people, h, w)
    still = driver_plate(frames, people, h, w, register=False)
    err = np.abs(plate.astype(int) - truth).mean()
    err_still = np.abs(still.astype(int) - truth).mean()
    assert err < 3.0, err  # the scene, in the reference frame's view
    assert err_still > 4 * err  # without registration: a smeared average of the pan
    assert sharpness(plate) > 0.8 * sharpness(truth)
    assert sharpness(still) < 0.6 * sharpness(truth)
    assert magenta_share(plate) == 0.0


def test_the_person_is_excluded_and_never_seen_pixels_are_filled():
    h, w, n = 160, 224, 24
    bg = scene(h, w)
    # a dancer (130 px tall) crossing the frame in loose clothes (9 px beyond the keypoint
    # mask: a fixed 7-pixel margin leaves a ghost) ...
    movers = [person_at(40 + 6 * t, 28, 40) for t in range(n)]
    # ... and, in a second video, one standing still: her pixels are never seen
    still = [person_at(112, 28, 40)] * n

    for people in (movers, still):
        def frames(people=people):
            for p in people:
                yield paint(bg, p, loose=9)

        plate = driver_plate(frames, people, h, w)
        assert magenta_share(plate) == 0.0  # no ghost of the person, nor of the dress
        covered = mask_from_keypoints(people[0], h, w) > 0.5
        if people is movers:
            assert np.abs(plate.astype(int) - bg).mean() < 2.0
        else:  # filled from the scene (PatchMatch): textured, not flat, not magenta
            assert plate[covered].std(0).mean() > 10
            far = cv2.dilate(covered.astype(np.uint8), np.ones((41, 41), np.uint8)) == 0
            assert np.abs(plate[far].astype(int) - bg[far]).mean() < 2.0


def test_memory_does_not_grow_with_the_number_of_frames():
    h, w = 48, 64
    bg = scene(h, w)

    def peak(n: int) -> int:
        people = [person_at(10 + 40 * (t % 50) / 50, 8, 12) for t in range(n)]

        def frames():
            for p in people:
                yield paint(bg, p)

        tracemalloc.start()
        try:
            plate = driver_plate(frames, people, h, w)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
            assert plate.shape == (h, w, 3)

    small, large = peak(100), peak(1000)
    # keeping every frame would add 900 x 9 KB = 8 MB; the sample is bounded (48 frames)
    assert large < 1.25 * small + 256 * 1024, (small, large)
    assert large < 4 << 20


def test_registration_recovers_a_shift_and_refuses_unrelated_frames():
    from dance_reenact.models.compositing.inpaint import Registrar

    ref = scene(120, 160)
    moved = cv2.warpAffine(ref, np.float32([[1, 0, 5], [0, 1, -3]]), (160, 120),
                           borderMode=cv2.BORDER_REFLECT)
    hom = Registrar(ref)(moved)
    assert hom is not None
    corners = np.float32([[0, 0], [160, 0], [0, 120], [160, 120]])[:, None]
    back = cv2.perspectiveTransform(corners + np.float32([5, -3]), hom)
    assert np.abs(back - corners).max() < 0.75  # the shift is undone to a fraction of a pixel
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    assert Registrar(noise)(rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)) is None
