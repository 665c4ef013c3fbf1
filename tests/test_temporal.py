"""Keypoint smoothing with gap filling, mask stabilisation, and their nodes' edge cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pose_synth import dance_sequence, with_face_and_hands

from dance_reenact.models.core.schema import (
    BODY,
    NUM_ALL_KEYPOINTS,
    Person,
    frame_to_people,
    people_to_frame,
)
from dance_reenact.models.geometry.temporal import (
    MaskStabilizer,
    OneEuroFilter,
    SmoothingOptions,
    fill_gaps,
    smooth_keypoints,
    smooth_pose_sequence,
    stabilize_masks,
)
from dance_reenact.nodes.runtime import NodeInputError
from dance_reenact.nodes.temporal import SmoothPose, StabilizeMask

# --------------------------------------------------------------------------------------------
# keypoint smoothing
# --------------------------------------------------------------------------------------------

R_WRIST, L_WRIST, R_ANKLE, R_ELBOW = (BODY["right_wrist"], BODY["left_wrist"],
                                      BODY["right_ankle"], BODY["right_elbow"])


def _accel_energy(xy: np.ndarray, ok: np.ndarray) -> float:
    """Mean squared second difference over frame triples where all three are present."""
    a = xy[2:] - 2 * xy[1:-1] + xy[:-2]
    m = ok[2:] & ok[1:-1] & ok[:-2]
    return float((np.linalg.norm(a, axis=-1) ** 2)[m].mean())


def _corrupted(seed: int = 0, n: int = 120):
    """A clean dance, jittered (sigma 3 px), with short gaps, low-confidence outliers, a long
    gap and a gap at the start."""
    rng = np.random.default_rng(seed)
    clean = dance_sequence(n)
    noisy = clean.copy()
    noisy[..., :2] += rng.normal(0.0, 3.0, noisy[..., :2].shape)
    noisy[20:23, R_WRIST] = 0.0                      # 3 frames dropped
    noisy[50:54, L_WRIST, :2] += 25.0                # 4 frames of low-confidence outliers
    noisy[50:54, L_WRIST, 2] = 0.05
    noisy[60:72, R_ANKLE] = 0.0                      # 12 frames dropped: too long to fill
    noisy[0:2, R_ELBOW] = 0.0                        # at the start: nothing to interpolate from
    return clean, noisy


@pytest.mark.parametrize("method", ["savgol", "one_euro"])
def test_smoothing_removes_jitter_and_fills_short_gaps(method):
    clean, noisy = _corrupted()
    opts = SmoothingOptions(method=method, max_gap=5)
    out, report = smooth_keypoints(noisy, opts)
    assert out.shape == noisy.shape

    ok_in = noisy[..., 2] >= opts.conf_threshold
    acc_in = _accel_energy(noisy[..., :2], ok_in)
    acc_out = _accel_energy(out[..., :2], ok_in)
    assert acc_out < 0.5 * acc_in, (acc_in, acc_out)
    err_in = np.linalg.norm(noisy[..., :2] - clean[..., :2], axis=-1)[ok_in].mean()
    err_out = np.linalg.norm(out[..., :2] - clean[..., :2], axis=-1)[ok_in].mean()
    assert err_out < err_in, (err_in, err_out)

    # short gaps filled close to the truth (confidence interpolated from the neighbours)
    for sl, k in ((slice(20, 23), R_WRIST), (slice(50, 54), L_WRIST)):
        assert (out[sl, k, 2] > 0.5).all()
        assert np.linalg.norm(out[sl, k, :2] - clean[sl, k, :2], axis=-1).max() < 12.0
    # the 25 px outliers are gone
    assert np.linalg.norm(out[50:54, L_WRIST, :2] - clean[50:54, L_WRIST, :2], axis=-1).max() \
        < np.linalg.norm(noisy[50:54, L_WRIST, :2] - clean[50:54, L_WRIST, :2], axis=-1).min()
    # the long gap and the gap at the start stay missing
    assert (out[60:72, R_ANKLE] == 0).all() and (out[0:2, R_ELBOW] == 0).all()
    assert report.filled == 3 + 4 and report.left_invalid == 12 + 2


def test_gap_length_limit_is_exact():
    pts = np.zeros((20, 1, 3))
    pts[:, 0, 0] = np.arange(20.0)
    pts[:, 0, 2] = 1.0
    pts[3:6, 0] = 0.0      # gap of 3
    pts[10:14, 0] = 0.0    # gap of 4
    valid = pts[..., 2] > 0
    out, filled = fill_gaps(pts, valid, max_gap=3)
    assert filled[3:6, 0].all() and not filled[10:14, 0].any()
    np.testing.assert_allclose(out[3:6, 0, 0], [3, 4, 5])
    np.testing.assert_allclose(out[3:6, 0, 2], 1.0)
    out, filled = fill_gaps(pts, valid, max_gap=4)
    np.testing.assert_allclose(out[10:14, 0, 0], [10, 11, 12, 13])
    _, filled = fill_gaps(pts, valid, max_gap=0)
    assert not filled.any()


def test_confident_keypoints_stay_close():
    """max_deviation bounds how far a confident keypoint may move; a sudden jump is a real
    move, not jitter, and must not be smeared beyond the limit."""
    _, noisy = _corrupted(seed=1)
    noisy[40:, :, 0] += 60.0  # the dancer jumps sideways
    for method in ("savgol", "one_euro"):
        opts = SmoothingOptions(method=method, max_deviation=0.02)
        out, _ = smooth_keypoints(noisy, opts)
        ok = noisy[..., 2] >= opts.conf_threshold
        body = noisy[0, :18]
        size = np.ptp(body[body[:, 2] > 0, :2], axis=0).max()
        moved = np.linalg.norm(out[..., :2] - noisy[..., :2], axis=-1)[ok]
        assert moved.max() <= 0.02 * size * 1.25 + 1e-6, (method, moved.max(), size)
        # without the clamp the jump is smeared much further
        free, _ = smooth_keypoints(noisy, SmoothingOptions(method=method, max_deviation=0))
        assert np.linalg.norm(free[..., :2] - noisy[..., :2], axis=-1)[ok].max() > moved.max()


def test_one_euro_filter_is_adaptive():
    """Still: strong smoothing; fast: little lag (the filter's defining property)."""
    f = OneEuroFilter(fps=30, min_cutoff=1.0, beta=0.0)
    g = OneEuroFilter(fps=30, min_cutoff=1.0, beta=1.0)
    lag_f = lag_g = 0.0
    for t in range(60):
        x = np.array([[10.0 * t, 0.0]])  # 300 units/s
        lag_f = x[0, 0] - f(x)[0, 0]
        lag_g = x[0, 0] - g(x)[0, 0]
    assert lag_g < 0.2 * lag_f
    f.reset()
    rng = np.random.default_rng(0)
    outs = [f(np.array([[rng.normal(), 0.0]]))[0, 0] for _ in range(200)]
    assert np.std(outs[20:]) < 0.5


def test_smoothing_options_are_validated():
    with pytest.raises(ValueError, match="window must be an odd"):
        smooth_keypoints(np.zeros((5, 1, 3)), SmoothingOptions(window=4))
    with pytest.raises(ValueError, match="order must be"):
        smooth_keypoints(np.zeros((5, 1, 3)), SmoothingOptions(window=5, order=5))
    with pytest.raises(ValueError, match="method 'kalman' is unknown"):
        smooth_keypoints(np.zeros((5, 1, 3)), SmoothingOptions(method="kalman"))


def _pose_frames(points: np.ndarray, w: int = 640, h: int = 512, normalized: bool = False):
    return [people_to_frame([with_face_and_hands(p)], w, h, normalized=normalized)
            for p in points]


@pytest.mark.parametrize("normalized", [False, True])
def test_smooth_pose_node_keeps_format_and_canvas(normalized):
    clean, noisy = _corrupted(n=40)
    frames = _pose_frames(noisy, normalized=normalized)
    out, report = SmoothPose().smooth(frames, max_gap=5)
    assert isinstance(out, list) and len(out) == 40 and "filled" in report
    for f in out:
        assert f["canvas_width"] == 640 and f["canvas_height"] == 512
        assert len(f["people"]) == 1
        assert len(f["people"][0]["pose_keypoints_2d"]) == 54
        assert len(f["people"][0]["face_keypoints_2d"]) == 210
    xs = np.asarray(out[10]["people"][0]["pose_keypoints_2d"]).reshape(18, 3)
    if normalized:
        assert xs[:, :2].max() <= 1.0
    back = frame_to_people(out[21])[0]
    assert back.body[R_WRIST, 2] > 0  # the dropped wrist was filled
    assert np.linalg.norm(back.body[R_WRIST, :2] - clean[21, R_WRIST, :2]) < 12.0
    # face and hands are smoothed too (the synthetic face rides on the jittered nose)
    truth = with_face_and_hands(clean[21])
    noisy_face = frame_to_people(frames[21])[0].face
    for got, ref, raw in ((back.face, truth.face, noisy_face),
                          (back.left_hand, truth.left_hand,
                           frame_to_people(frames[21])[0].left_hand)):
        assert np.abs(got[:, :2] - ref[:, :2]).mean() < np.abs(raw[:, :2] - ref[:, :2]).mean()


def test_smooth_pose_people_modes():
    a = dance_sequence(12)
    b = dance_sequence(12, cx=150, scale=50)
    frames = [people_to_frame([Person(body=pb.astype(np.float32)),
                               Person(body=pa.astype(np.float32))], 640, 512)
              for pa, pb in zip(a, b)]
    out, _ = smooth_pose_sequence(frames, person="largest")
    assert all(len(f["people"]) == 1 for f in out)
    got = frame_to_people(out[5])[0].body
    assert np.allclose(got[:, :2], a[5, :, :2], atol=2.0)  # the big dancer
    out, _ = smooth_pose_sequence(frames, person="index", index=0)
    assert np.allclose(frame_to_people(out[5])[0].body[:, :2], b[5, :, :2], atol=2.0)
    # all: two tracks kept apart, each close to its own dancer
    frames[6]["people"] = frames[6]["people"][:1]  # person 1 missing for one frame -> filled
    out, rep = smooth_pose_sequence(frames, person="all")
    assert all(len(f["people"]) == 2 for f in out)
    assert np.allclose(frame_to_people(out[6])[1].body[:, :2], a[6, :, :2], atol=4.0)
    assert rep.filled == 18
    with pytest.raises(NodeInputError, match=r"input 'person_index'.*at most 2 people"):
        SmoothPose().smooth(frames, person="index", person_index=2)


# edge cases ---------------------------------------------------------------------------------


def test_smooth_pose_edge_cases():
    node = SmoothPose()
    clean = dance_sequence(10)
    frames = _pose_frames(clean)
    # one frame: returned as is
    (one,), _ = node.smooth(frames[:1])
    np.testing.assert_allclose(frame_to_people(one)[0].body, frame_to_people(frames[0])[0].body,
                               atol=1e-4)
    # empty people lists: short runs are filled, the rest stay empty
    with_empty = [dict(f) for f in frames]
    with_empty[4] = {"people": [], "canvas_width": 640, "canvas_height": 512}
    out, _ = node.smooth(with_empty)
    assert len(out[4]["people"]) == 1
    out, _ = node.smooth(with_empty, max_gap=0)
    assert out[4]["people"] == []
    all_empty = [{"people": [], "canvas_width": 64, "canvas_height": 64}] * 3
    out, _ = node.smooth(all_empty)
    assert [f["people"] for f in out] == [[], [], []]
    # NaN coordinates: that keypoint is missing, and filled from its neighbours
    nan_frames = [dict(f, people=[dict(f["people"][0])]) for f in frames]
    flat = list(nan_frames[5]["people"][0]["pose_keypoints_2d"])
    flat[3 * R_WRIST] = float("nan")
    nan_frames[5]["people"][0]["pose_keypoints_2d"] = flat
    out, _ = node.smooth(nan_frames)
    wrist = frame_to_people(out[5])[0].body[R_WRIST]
    assert np.isfinite(wrist).all() and wrist[2] > 0
    assert np.linalg.norm(wrist[:2] - clean[5, R_WRIST, :2]) < 12.0
    _, rep = node.smooth(nan_frames, max_gap=0)
    assert "0 missing/low-confidence keypoints filled" in rep
    # canvases of another size but the same aspect: rescaled, each frame keeps its canvas
    mixed = list(frames)
    half = people_to_frame([Person(body=(clean[3] * [0.5, 0.5, 1]).astype(np.float32))], 320, 256)
    mixed[3] = half
    out, _ = node.smooth(mixed)
    assert (out[3]["canvas_width"], out[3]["canvas_height"]) == (320, 256)
    got = frame_to_people(out[3])[0].body
    assert np.abs(got[:, :2] - clean[3, :, :2] * 0.5).max() < 3.0
    # another aspect ratio: a clear error
    mixed[3] = dict(half, canvas_width=512, canvas_height=512)
    with pytest.raises(NodeInputError, match=r"\[Smooth Pose\] input 'pose_keypoint'.*aspect"):
        node.smooth(mixed)
    with pytest.raises(NodeInputError, match="non-empty list"):
        node.smooth([])
    with pytest.raises(NodeInputError, match=r"input 'window'.*odd"):
        node.smooth(frames, window=8)


def test_person_points_round_trip():
    p = with_face_and_hands(dance_sequence(1)[0])
    q = Person.from_points(p.all_points())
    assert p.all_points().shape == (NUM_ALL_KEYPOINTS, 3)
    np.testing.assert_array_equal(q.all_points(), p.all_points())


def test_nan_keypoint_is_missing_not_a_confident_origin():
    """A NaN x with confidence 1 must not become a confident point at (0, y)."""
    flat = [0.0] * 54
    flat[0:3] = [float("nan"), 40.0, 1.0]
    flat[3:6] = [50.0, 60.0, 0.9]
    frame = {"people": [{"pose_keypoints_2d": flat}], "canvas_width": 100,
             "canvas_height": 100}
    body = frame_to_people(frame)[0].body
    assert body[0].tolist() == [0.0, 0.0, 0.0] and body[1, 2] == pytest.approx(0.9)
    # and a NaN must not flip a normalised frame to "pixels"
    flat[3:6] = [0.5, 0.6, 0.9]
    body = frame_to_people(frame)[0].body
    assert body[1, :2].tolist() == pytest.approx([50.0, 60.0])


# --------------------------------------------------------------------------------------------
# mask stabilisation
# --------------------------------------------------------------------------------------------


def _mask_scene(n: int = 24, h: int = 64, w: int = 96, seed: int = 0):
    """A textured static background with a static blob whose mask flickers with noise, and a
    square that moves right 3 px per frame (its mask exact)."""
    rng = np.random.default_rng(seed)
    bg = rng.uniform(0.2, 0.8, (h, w, 3)).astype(np.float32)
    yy, xx = np.mgrid[:h, :w]
    blob = ((yy - 40) ** 2 + (xx - 70) ** 2) < 12 ** 2
    frames, masks, truth = [], [], []
    for t in range(n):
        f = bg.copy()
        x0 = 5 + 3 * t
        sq = (yy >= 8) & (yy < 28) & (xx >= x0) & (xx < x0 + 16)
        f[sq] = (0.95, 0.1, 0.1)
        m = np.clip(blob.astype(np.float32) + rng.normal(0, 0.25, (h, w)), 0, 1)
        m = np.maximum(m * ~sq, sq.astype(np.float32))
        frames.append(f)
        masks.append(m.astype(np.float32))
        truth.append(sq | blob)
    return frames, masks, truth, blob


def _flicker(masks, region):
    return float(np.mean([np.abs(a - b)[region].mean() for a, b in zip(masks[1:], masks[:-1])]))


def test_mask_stabilizer_removes_flicker_and_follows_motion():
    frames, masks, truth, blob = _mask_scene()
    out = stabilize_masks(masks, frames)
    h, w = blob.shape
    ever_moving = np.zeros((h, w), bool)
    ever_moving[4:32, :] = True  # rows the square ever touches, with a margin
    static = ~ever_moving
    before, after = _flicker(masks, static), _flicker(out, static)
    assert after < 0.5 * before, (before, after)
    ious = []
    for m, gt in zip(out[1:], truth[1:]):
        pred = m > 0.5
        ious.append((pred & gt).sum() / (pred | gt).sum())
    raw_iou = [((m > 0.5) & gt).sum() / ((m > 0.5) | gt).sum() for m, gt in zip(masks[1:],
                                                                                 truth[1:])]
    assert min(ious) > 0.85 and np.mean(ious) >= np.mean(raw_iou), (min(ious), np.mean(raw_iou))
    # the moving square's edges follow it: IoU of the square alone stays ~1
    for t in (5, 15, 23):
        sq = truth[t] & ~blob
        pred = out[t] > 0.5
        sq_iou = (pred & sq)[:28].sum() / (pred | sq)[:28].sum()  # rows above the blob
        assert sq_iou > 0.95, (t, sq_iou)


def test_mask_stabilizer_off_and_reset():
    frames, masks, _, _ = _mask_scene(n=4)
    out = stabilize_masks(masks, frames, enabled=False)
    assert all(np.array_equal(a, b) for a, b in zip(out, masks))
    stab = MaskStabilizer()
    first = stab.update(masks[0], frames[0])
    assert np.array_equal(first, masks[0])
    assert not np.array_equal(stab.update(masks[1], frames[1]), masks[1])
    stab.reset()
    assert np.array_equal(stab.update(masks[2], frames[2]), masks[2])
    with pytest.raises(ValueError, match="strength"):
        MaskStabilizer(strength=1.0)
    with pytest.raises(ValueError, match="same size"):
        stab.update(masks[0][:10], frames[0])


def test_stabilize_mask_node():
    frames, masks, _, blob = _mask_scene(n=8)
    image = torch.from_numpy(np.stack(frames))
    mask = torch.from_numpy(np.stack(masks))
    (out,) = StabilizeMask().stabilize(mask, image)
    assert out.shape == mask.shape and out.dtype == torch.float32
    ref = stabilize_masks(masks, [np.round(f * 255) / 255 for f in frames])
    np.testing.assert_allclose(out.numpy(), np.stack(ref), atol=0.02)
    (off,) = StabilizeMask().stabilize(mask, image, enabled=False)
    assert torch.equal(off, mask)
    # the image at twice the size (same aspect): resized to the mask, same result within noise
    big = torch.nn.functional.interpolate(image.permute(0, 3, 1, 2), scale_factor=2,
                                          mode="nearest").permute(0, 2, 3, 1)
    (out2,) = StabilizeMask().stabilize(mask, big)
    assert (out2 - out).abs().mean() < 0.01
    # gray images work
    (gray,) = StabilizeMask().stabilize(mask, image.mean(-1, keepdim=True))
    assert gray.shape == mask.shape
    # one mask frame: nothing to stabilise
    (single,) = StabilizeMask().stabilize(mask[:1], image[:1])
    assert torch.equal(single, mask[:1])
    with pytest.raises(NodeInputError, match=r"\[Stabilize Mask\] input 'mask/image'.*8 frames"):
        StabilizeMask().stabilize(mask, image[:5])
    with pytest.raises(NodeInputError, match="another aspect"):
        StabilizeMask().stabilize(mask, image[:, :, :40])
    with pytest.raises(NodeInputError, match="strength"):
        StabilizeMask().stabilize(mask, image, strength=1.5)



# --------------------------------------------------------------------------------------------
# Frames without a person: interpolated between neighbours, held at the ends
# --------------------------------------------------------------------------------------------


def _walker(t: int) -> Person:
    body = np.zeros((18, 3), np.float32)
    body[:, 0] = 100 + 10 * t + np.arange(18)
    body[:, 1] = 50 + 5 * np.arange(18)
    body[:, 2] = 0.9
    return Person(body=body)


def test_fill_missing_people_interpolates_inside_and_holds_the_ends():
    from dance_reenact.models.geometry.temporal import fill_missing_people

    people = [_walker(t) for t in range(5)]
    people[2] = None
    out, report = fill_missing_people(people)
    assert out[0] is people[0] and out[3] is people[3]  # detections untouched
    np.testing.assert_allclose(out[2].body[:, 0], 100 + 20 + np.arange(18), atol=1e-4)
    np.testing.assert_allclose(out[2].body[:, 2], 0.9, atol=1e-6)
    assert report.interpolated == [2] and report.held == [] and report.missing == [2]
    assert "1 interpolated (2)" in str(report)

    ends = [None, _walker(1), None, _walker(3), None, None]
    out, report = fill_missing_people(ends)
    np.testing.assert_allclose(out[0].body, ends[1].body)  # leading gap: held
    np.testing.assert_allclose(out[4].body, ends[3].body)  # trailing gap: held
    np.testing.assert_allclose(out[5].body, ends[3].body)
    np.testing.assert_allclose(out[2].body[:, 0], 100 + 20 + np.arange(18), atol=1e-4)
    assert report.held == [0, 4, 5] and report.interpolated == [2]


def test_fill_missing_people_without_anybody_is_an_error():
    from dance_reenact.models.geometry.temporal import NoPersonError, fill_missing_people

    with pytest.raises(NoPersonError, match="no person in any of the 3 frame"):
        fill_missing_people([None, None, None])
