"""Synthetic people: labels, keypoints and DensePose agree with each other and are reproducible."""

from __future__ import annotations

import time

import numpy as np
import pytest

from dance_reenact.models.core.schema import BODY, LABEL, NUM_LABELS
from dance_reenact.training import synthetic as S


def _sample(seed: int, kind: str = "full", h: int = 256, w: int = 160) -> S.SyntheticSample:
    rng = np.random.default_rng(seed)
    body = S.random_body(rng)
    return S.render(body, S.random_pose(rng, body, kind), h, w, seed=seed)


def test_render_shapes_dtypes_and_schema() -> None:
    smp = _sample(0)
    assert smp.image.shape == (256, 160, 3) and smp.image.dtype == np.uint8
    assert smp.labels.shape == (256, 160) and smp.labels.dtype == np.uint8
    assert int(smp.labels.max()) < NUM_LABELS
    assert smp.densepose_i.dtype == np.uint8 and int(smp.densepose_i.max()) <= 24
    assert smp.densepose_u.dtype == np.float32 and 0 <= smp.densepose_u.min()
    assert smp.densepose_u.max() <= 1 and smp.densepose_v.max() <= 1
    np.testing.assert_array_equal(smp.mask, smp.labels > 0)
    # the person occupies a sensible share of a full-body frame
    assert 0.08 < smp.mask.mean() < 0.6
    for name in ("face", "left_hand", "right_hand"):
        assert (smp.labels == LABEL[name]).sum() > 5, name
    # DensePose covers the body, not the background
    assert (smp.densepose_i[~smp.mask] == 0).mean() > 0.99


def test_deterministic_and_seed_dependent() -> None:
    a, b, c = _sample(5), _sample(5), _sample(6)
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.person.body, b.person.body)
    assert not np.array_equal(a.labels, c.labels)


def test_keypoints_lie_on_their_labels() -> None:
    for seed in range(6):
        smp = _sample(seed)
        lab = smp.labels
        body = smp.person.body
        # the nose is on the face (or hair/sunglasses), wrists near arm/hand pixels
        x, y = np.round(body[BODY["nose"], :2]).astype(int)
        assert lab[y, x] in (LABEL["face"], LABEL["sunglasses"], LABEL["hair"]), seed
        for side in ("left", "right"):
            wx, wy, wc = body[BODY[f"{side}_wrist"]]
            if wc == 0:
                continue
            win = lab[max(0, int(wy) - 2):int(wy) + 3, max(0, int(wx) - 2):int(wx) + 3]
            assert win.any(), (seed, side)
        # face landmarks: the pupils are inside the head
        for idx in (68, 69):
            px, py, c = smp.person.face[idx]
            if c > 0:
                assert lab[int(py), int(px)] in (LABEL["face"], LABEL["sunglasses"],
                                                  LABEL["hair"]), seed


def test_left_is_image_right_for_a_facing_person() -> None:
    smp = _sample(1)
    xs_left = np.nonzero(smp.labels == LABEL["left_hand"])[1].mean()
    kp = smp.person.left_hand
    assert abs(kp[kp[:, 2] > 0, 0].mean() - xs_left) < 8
    assert smp.person.body[BODY["left_shoulder"], 0] > smp.person.body[BODY["right_shoulder"], 0]


def test_upper_framing_drops_legs_out_of_frame() -> None:
    smp = _sample(2, "upper")
    assert smp.person.body[BODY["left_ankle"], 2] == 0
    assert smp.person.body[BODY["right_ankle"], 2] == 0
    assert (smp.labels == LABEL["face"]).sum() > 200


def test_width_changes_torso_only_in_width() -> None:
    from dance_reenact.models.geometry.warp import torso_width

    rng = np.random.default_rng(3)
    body = S.random_body(rng)
    pose = S.random_pose(rng, body)
    narrow = S.render(body, pose, 256, 160)
    wide = S.render(S.with_width(body, 1.4), pose, 256, 160)
    ratio = torso_width(wide.labels, wide.person) / torso_width(narrow.labels, narrow.person)
    assert 1.2 < ratio < 1.6


def test_bad_sizes_and_kinds() -> None:
    rng = np.random.default_rng(0)
    body = S.random_body(rng)
    with pytest.raises(ValueError, match="kind"):
        S.random_pose(rng, body, "sideways")
    with pytest.raises(ValueError, match="at least 8x8"):
        S.render(body, S.random_pose(rng, body), 4, 4)
    with pytest.raises(ValueError, match="background"):
        S.render(body, S.random_pose(rng, body), 64, 40, np.zeros((10, 10, 3), np.uint8))


def test_fast_enough() -> None:
    rng = np.random.default_rng(0)
    t = time.perf_counter()
    for _ in range(20):
        body = S.random_body(rng)
        S.render(body, S.random_pose(rng, body), 256, 160)
    per = (time.perf_counter() - t) / 20
    assert per < 0.05, f"{per * 1000:.1f} ms per 256x160 sample"


def _pin_cases() -> dict[str, tuple[S.SyntheticBody, S.SyntheticPose]]:
    """One body per drawing branch of render: hair long/short/bald, pants/shorts/skirt/dress,
    shirt/coat, sleeves none/short/long, neckline, hat, sunglasses; two poses."""
    bent = S.SyntheticPose(right_upper_arm=1.2, right_forearm=2.0, left_thigh=-0.3, head=0.2,
                           finger_spread=0.5)
    return {"default": (S.SyntheticBody(), S.SyntheticPose()),
            "long_hair_skirt_hat": (S.SyntheticBody(hair_style="long", bottom="skirt", hat=True,
                                                    sleeve=1.0, neckline=0.0), bent),
            "bald_dress_sunglasses": (S.SyntheticBody(hair_style="bald", top="dress",
                                                      bottom="none", sleeve=0.0,
                                                      sunglasses=True), S.SyntheticPose()),
            "coat_shorts": (S.SyntheticBody(top="coat", bottom="shorts", sleeve=1.0), bent)}


def _pin_values(smp: S.SyntheticSample) -> tuple[dict[str, int], dict[int, int], list[float]]:
    """Pixels per label and per DensePose part; sums of the image, U, V and keypoints."""
    names = {v: k for k, v in LABEL.items()}
    c = np.bincount(smp.labels.ravel(), minlength=NUM_LABELS)
    d = np.bincount(smp.densepose_i.ravel(), minlength=25)
    return ({names[i]: int(c[i]) for i in np.nonzero(c)[0] if i},
            {int(i): int(d[i]) for i in np.nonzero(d)[0] if i},
            [float(smp.image.astype(np.int64).sum()), round(float(smp.densepose_u.sum()), 2),
             round(float(smp.densepose_v.sum()), 2),
             round(float(smp.person.all_points()[:, :2].sum()), 2)])


# _pin_values of render(body, pose, 128, 80, seed=1) for _pin_cases() before render was split
# into helpers (C901).
_DP_STILL = {2: 777, 3: 58, 4: 61, 5: 63, 6: 60, 9: 230, 10: 225, 13: 214, 14: 212, 15: 133,
             16: 132, 19: 104, 20: 105, 23: 113, 24: 97}
_DP_BENT = {2: 665, 3: 62, 4: 63, 5: 62, 6: 60, 9: 230, 10: 222, 13: 214, 14: 226, 15: 133,
            16: 143, 19: 104, 20: 67, 23: 100, 24: 104}
PINNED = {
    "default": (
        {"hair": 69, "upper_clothes": 1018, "pants": 1132, "torso_skin": 44, "face": 165,
         "left_arm": 118, "right_arm": 119, "left_shoe": 56, "right_shoe": 54,
         "left_hand": 61, "right_hand": 58},
        _DP_STILL, [3370998.0, 1182.17, 1292.5, 10239.69]),
    "long_hair_skirt_hat": (
        {"hat": 127, "hair": 83, "upper_clothes": 1165, "torso_skin": 13, "skirt": 461,
         "face": 156, "left_arm": 1, "left_leg": 254, "right_leg": 240, "left_shoe": 69,
         "right_shoe": 72, "left_hand": 63, "right_hand": 62},
        _DP_BENT, [3555143.0, 1161.9, 1261.24, 10176.36]),
    "bald_dress_sunglasses": (
        {"sunglasses": 24, "dress": 1492, "torso_skin": 44, "face": 186, "left_arm": 237,
         "right_arm": 237, "left_leg": 183, "right_leg": 185, "left_shoe": 74,
         "right_shoe": 72, "left_hand": 61, "right_hand": 58},
        _DP_STILL, [3702648.0, 1182.17, 1292.5, 10239.69]),
    "coat_shorts": (
        {"hair": 82, "upper_clothes": 125, "coat": 1296, "pants": 403, "torso_skin": 28,
         "face": 158, "left_arm": 1, "left_leg": 169, "right_leg": 161, "left_shoe": 69,
         "right_shoe": 72, "left_hand": 63, "right_hand": 62},
        _DP_BENT, [3574234.0, 1161.9, 1261.24, 10176.36]),
}


@pytest.mark.parametrize("name", sorted(PINNED))
def test_render_output_is_pinned(name) -> None:
    """Characterisation: exact label and DensePose areas and image/keypoint sums of small
    renders, so any change of what render draws shows here."""
    body, pose = _pin_cases()[name]
    labels, parts, sums = _pin_values(S.render(body, pose, 128, 80, seed=1))
    want_labels, want_parts, want_sums = PINNED[name]
    assert labels == want_labels and parts == want_parts
    np.testing.assert_allclose(sums, want_sums, atol=0.011)
