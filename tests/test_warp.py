"""The warp geometry: retargeted limb lengths, part assignment, body shape kept (paper Fig. 6)."""

from __future__ import annotations

import numpy as np
import pytest

from dance_reenact.models.core.schema import BODY, LABEL, Person
from dance_reenact.models.geometry import warp as W
from dance_reenact.training import synthetic as S


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))


def test_retarget_keeps_target_limb_lengths_and_driver_directions() -> None:
    rng = np.random.default_rng(0)
    short = S.random_body(rng)
    tall = S.SyntheticBody(upper_arm=0.2, forearm=0.18, thigh=0.3, shin=0.28)
    t = S.render(short, S.random_pose(rng, short), 256, 160).person
    d = S.render(tall, S.random_pose(rng, tall), 256, 160).person
    jt, jr, s = W.retarget_skeleton(t, d, scale=1.0)
    jd = W.joints(d)
    for a, b in (("right_shoulder", "right_elbow"), ("left_elbow", "left_wrist"),
                 ("left_hip", "left_knee"), ("right_knee", "right_ankle")):
        if not all(k in jr for k in (a, b)):
            continue
        lt = np.hypot(*(jt[b] - jt[a]))
        lr = np.hypot(*(jr[b] - jr[a]))
        assert abs(lr - lt) < 1e-3 * max(1, lt)
        assert W.angle_between(jr[b] - jr[a], jd[b] - jd[a]) < 1e-6
    np.testing.assert_allclose(jr["neck"], jd["neck"])


def test_identity_warp_reproduces_the_parsing() -> None:
    rng = np.random.default_rng(1)
    body = S.random_body(rng)
    smp = S.render(body, S.random_pose(rng, body), 256, 160)
    tf = W.part_transforms(smp.person, smp.person)
    for m in tf.values():
        np.testing.assert_allclose(m, [[1, 0, 0], [0, 1, 0]], atol=1e-9)
    out = W.warp_parsing(smp.labels, smp.person, smp.person, (256, 160))
    assert (out == smp.labels).mean() > 0.98


def test_assign_parts_follows_labels() -> None:
    rng = np.random.default_rng(2)
    body = S.random_body(rng)
    smp = S.render(body, S.random_pose(rng, body), 256, 160)
    parts = W.assign_parts(smp.labels, smp.person)
    assert ((parts > 0) == (smp.labels > 0)).all()
    left_arm = smp.labels == LABEL["left_arm"]
    assert np.isin(parts[left_arm], [W.PART_ID["left_upper_arm"],
                                     W.PART_ID["left_forearm"]]).all()
    assert (parts[smp.labels == LABEL["face"]] == W.PART_ID["head"]).all()
    # the forearm gets the pixels near the wrist
    wx, wy = np.round(smp.person.body[BODY["left_wrist"], :2]).astype(int)
    assert parts[wy - 1:wy + 2, wx - 1:wx + 2].max() in (W.PART_ID["left_forearm"],
                                                           W.PART_ID["left_hand"])


def test_warp_beats_copy_on_same_body_new_pose() -> None:
    rng = np.random.default_rng(4)
    wins = 0
    for _ in range(4):
        body, src, drv = S.random_pair(rng, 256, 160)
        out = W.warp_parsing(src.labels, src.person, drv.person, (256, 160))
        if _iou(out > 0, drv.mask) > _iou(src.mask, drv.mask) + 0.1:
            wins += 1
        assert _iou(out > 0, drv.mask) > 0.6
    assert wins >= 3


def test_warp_keeps_different_torso_widths() -> None:
    """Two targets that differ only in width, each driven by the same (third) person's pose:
    the torso width ratio of the outputs is the targets' ratio, not 1 (paper Fig. 6)."""
    tid = W.PART_ID["torso"]
    for seed in range(3):
        rng = np.random.default_rng(seed)
        body = S.random_body(rng)
        pose = S.SyntheticPose(right_upper_arm=-1.2, left_upper_arm=1.2, right_forearm=-1.4,
                               left_forearm=1.4)
        targets = [S.render(b, pose, 256, 160) for b in (body, S.with_width(body, 1.45))]
        driver_body = S.random_body(rng)
        driver = S.render(driver_body, S.random_pose(rng, driver_body), 256, 160)
        src, out = [], []
        for t in targets:
            parts = W.assign_parts(t.labels, t.person)
            src.append(W.torso_width(parts == tid, t.person))
            tf = W.part_transforms(t.person, driver.person)
            labels, drawn = W.warp_by_parts(t.labels, parts, tf, (256, 160), person=t.person,
                                            order=("torso",))
            skel = W.person_from_joints(W.retarget_skeleton(t.person, driver.person)[1])
            out.append(W.torso_width(drawn == tid, skel))
            full = W.warp_parsing(t.labels, t.person, driver.person, (256, 160))
            assert (full == LABEL["face"]).sum() > 20
        src_ratio, out_ratio = src[1] / src[0], out[1] / out[0]
        assert src_ratio > 1.2
        assert abs(out_ratio - src_ratio) / src_ratio < 0.08, (seed, src_ratio, out_ratio)


def test_waist_up_target_leaves_legs_absent() -> None:
    rng = np.random.default_rng(5)
    body = S.random_body(rng)
    target = S.render(body, S.random_pose(rng, body, "upper"), 256, 160)
    driver = S.render(body, S.random_pose(rng, body, "full"), 256, 160)
    out = W.warp_parsing(target.labels, target.person, driver.person, (256, 160))
    assert not np.isin(out, [LABEL["left_shoe"], LABEL["right_shoe"]]).any()
    assert (out == LABEL["face"]).sum() > 20


def test_warp_any_array_and_bad_inputs() -> None:
    rng = np.random.default_rng(6)
    body, src, drv = S.random_pair(rng, 128, 80)
    parts = W.assign_parts(src.labels, src.person)
    tf = W.part_transforms(src.person, drv.person)
    rgb, drawn = W.warp_by_parts(src.image, parts, tf, (100, 90), person=src.person,
                                 nearest=False)
    assert rgb.shape == (100, 90, 3) and rgb.dtype == np.uint8 and drawn.shape == (100, 90)
    many = np.repeat(src.labels[..., None], 7, axis=2)
    out7, _ = W.warp_by_parts(many, parts, tf, (128, 80), person=src.person)
    assert out7.shape == (128, 80, 7)
    np.testing.assert_array_equal(out7[..., 3], out7[..., 0])
    with pytest.raises(ValueError, match="outside"):
        W.assign_parts(np.full((10, 10), 30, np.uint8), src.person)
    with pytest.raises(ValueError, match="keypoints"):
        W.assign_parts(src.labels, Person())
