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
