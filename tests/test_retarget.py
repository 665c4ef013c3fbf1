"""Retargeting a driver's skeleton onto the target's body."""

from __future__ import annotations

import numpy as np
import pytest
from pose_synth import bone_lengths, build_body, dance_sequence, on_ground, with_face_and_hands

from dance_reenact.models.core.schema import (
    BODY,
    BODY_PARENT,
    Person,
    frame_to_people,
    people_to_frame,
)
from dance_reenact.models.geometry.retarget import retarget_people
from dance_reenact.nodes.runtime import NodeInputError
from dance_reenact.nodes.temporal import RetargetPose

T_W, T_H, T_GROUND = 480, 560, 500.0
D_W, D_H, D_GROUND = 720, 960, 900.0
ANKLES = (BODY["right_ankle"], BODY["left_ankle"])
BONES = [j for j in range(18) if BODY_PARENT[j] >= 0]


def _target() -> np.ndarray:
    body = build_body((240.0, 0.0), bone_lengths(100.0, right_knee=0.95, left_knee=0.95))
    return on_ground(body, T_GROUND)


def _driver(n: int = 45) -> np.ndarray:
    """30 % taller than the target, with its own proportions (longer legs, shorter arms)."""
    return dance_sequence(n, scale=130.0, ground_y=D_GROUND, cx=360.0, sway=60.0,
                          right_knee=1.1, left_knee=1.1, right_elbow=0.9, left_elbow=0.9)


def _lengths(body: np.ndarray) -> np.ndarray:
    return np.array([np.linalg.norm(body[j, :2] - body[BODY_PARENT[j], :2]) for j in BONES])


def _node_run(target_body, driver_bodies, normalized=False, **kw):
    tframe = people_to_frame([with_face_and_hands(target_body)], T_W, T_H)
    dframes = [people_to_frame([with_face_and_hands(b)], D_W, D_H, normalized=normalized)
               for b in driver_bodies]
    return RetargetPose().retarget(tframe, dframes, **kw)


@pytest.mark.parametrize("normalized", [False, True])
def test_tall_driver_gets_target_limbs_and_feet_on_ground(normalized):
    target, driver = _target(), _driver()
    assert np.ptp(driver[0, :, 1]) > 1.25 * np.ptp(target[:, 1])  # really taller
    out, report = _node_run(target, driver, normalized=normalized)
    assert len(out) == len(driver) and "anchor: feet" in report
    t_len = _lengths(target)
    d_dir0 = None
    for t, frame in enumerate(out):
        assert (frame["canvas_width"], frame["canvas_height"]) == (T_W, T_H)
        body = frame_to_people(frame)[0].body
        assert (body[:, 2] > 0).all()
        np.testing.assert_allclose(_lengths(body), t_len, rtol=0.05)
        # feet on the target's ground line (the driver's feet never leave its ground)
        assert abs(body[list(ANKLES), 1].max() - T_GROUND) < 2.0, t
        # every bone keeps the driver's direction
        for j in BONES:
            a = body[j, :2] - body[BODY_PARENT[j], :2]
            b = driver[t, j, :2] - driver[t, BODY_PARENT[j], :2]
            cos = a @ b / np.linalg.norm(a) / np.linalg.norm(b)
            assert cos > 0.9995, (t, j)
        if t == 0:
            d_dir0 = body
    # frame 0 stands where the target stands; later frames sway by scale x driver's sway
    hips = [BODY["right_hip"], BODY["left_hip"]]
    assert abs(d_dir0[hips, 0].mean() - target[hips, 0].mean()) < 1.0
    body20 = frame_to_people(out[20])[0].body
    scale = float(report.split("scale target/driver: ")[1].split(";")[0])
    assert 0.7 < scale < 0.8  # ~1/1.3
    want = target[hips, 0].mean() + scale * (driver[20, hips, 0].mean() - driver[0, hips, 0].mean())
    assert abs(body20[hips, 0].mean() - want) < 1.0


def test_face_and_hands_move_rigidly_with_their_joints():
    target, driver = _target(), _driver(10)
    people, report = retarget_people(
        with_face_and_hands(target), [with_face_and_hands(b) for b in driver])
    for p, b in zip(people, driver):
        src = with_face_and_hands(b)
        for part, joint, src_part in ((p.face, BODY["nose"], src.face),
                                      (p.right_hand, BODY["right_wrist"], src.right_hand)):
            want = p.body[joint, :2] + report.scale * (src_part[:, :2] - b[joint, :2])
            np.testing.assert_allclose(part[:, :2], want, atol=1e-3)


def test_short_driver_on_tall_target_and_jumps_scale():
    """The other way round, and a jump: the height above ground is scaled, not kept."""
    target = on_ground(build_body((240.0, 0.0), bone_lengths(120.0)), T_GROUND)
    driver = dance_sequence(8, scale=80.0, ground_y=D_GROUND, cx=360.0)
    driver[5, :, 1] -= 40.0  # a 40 px jump in frame 5
    people, report = retarget_people(Person(body=target.astype(np.float32)),
                                     [Person(body=b.astype(np.float32)) for b in driver])
    assert report.scale == pytest.approx(1.5, rel=0.05)
    np.testing.assert_allclose(_lengths(people[3].body), _lengths(target), rtol=0.05)
    lift = T_GROUND - people[5].body[list(ANKLES), 1].max()
    assert lift == pytest.approx(40.0 * report.scale, abs=2.0)


def test_foreshortened_driver_bone_stays_short():
    target, driver = _target(), _driver(20)
    fore = driver.copy()
    e, w = BODY["right_elbow"], BODY["right_wrist"]
    fore[10, w, :2] = fore[10, e, :2] + 0.4 * (fore[10, w, :2] - fore[10, e, :2])  # toward camera
    people, _ = retarget_people(Person(body=target.astype(np.float32)),
                                [Person(body=b.astype(np.float32)) for b in fore],
                                keep_foreshortening=True)
    t_fore = np.linalg.norm(target[w, :2] - target[e, :2])
    got = np.linalg.norm(people[10].body[w, :2] - people[10].body[e, :2])
    assert got == pytest.approx(0.4 * t_fore, rel=0.05)
    people, _ = retarget_people(Person(body=target.astype(np.float32)),
                                [Person(body=b.astype(np.float32)) for b in fore])
    got = np.linalg.norm(people[10].body[w, :2] - people[10].body[e, :2])
    assert got == pytest.approx(t_fore, rel=0.01)


def test_waist_up_target_anchors_on_hips():
    target = _target()
    waist_up = target.copy()
    for name in ("right_knee", "left_knee", "right_ankle", "left_ankle"):
        waist_up[BODY[name]] = 0.0
    driver = _driver(12)
    out, report = _node_run(waist_up, driver)
    assert "anchor: hips" in report and "waist-up" in report
    hips = [BODY["right_hip"], BODY["left_hip"]]
    b0 = frame_to_people(out[0])[0].body
    np.testing.assert_allclose(b0[hips, :2].mean(0), target[hips, :2].mean(0), atol=1.0)
    # upper-body bones take the target's lengths; legs the driver's x scale
    np.testing.assert_allclose(_lengths(b0)[:8], _lengths(target)[:8], rtol=0.05)
    assert (b0[:, 2] > 0).all()
    out, report = _node_run(waist_up, driver, limit_to_target=True)
    b0 = frame_to_people(out[0])[0].body
    assert b0[BODY["right_knee"], 2] == 0 and b0[BODY["right_ankle"], 2] == 0
    assert b0[BODY["right_wrist"], 2] > 0


def test_missing_target_side_borrows_the_mirror_bone():
    target = _target()
    one_arm = target.copy()
    one_arm[BODY["left_wrist"]] = 0.0  # hidden forearm
    people, report = retarget_people(Person(body=one_arm.astype(np.float32)),
                                     [Person(body=b.astype(np.float32)) for b in _driver(5)])
    assert "left_wrist" in str(report)
    lw, le = BODY["left_wrist"], BODY["left_elbow"]
    got = np.linalg.norm(people[2].body[lw, :2] - people[2].body[le, :2])
    want = np.linalg.norm(target[BODY["right_wrist"], :2] - target[BODY["right_elbow"], :2])
    assert got == pytest.approx(want, rel=0.05)


def test_retarget_edge_cases():
    node = RetargetPose()
    target, driver = _target(), _driver(6)
    tframe = people_to_frame([Person(body=target.astype(np.float32))], T_W, T_H)
    dframes = [people_to_frame([Person(body=b.astype(np.float32))], D_W, D_H) for b in driver]
    empty = {"people": [], "canvas_width": D_W, "canvas_height": D_H}
    # a 1-frame driver, and empty frames (before and inside the sequence) stay empty
    (one,), _ = node.retarget(tframe, dframes[:1])
    assert len(one["people"]) == 1
    out, report = node.retarget(tframe, [empty] + dframes[:3] + [empty] + dframes[3:])
    assert out[0]["people"] == [] and out[4]["people"] == [] and len(out[1]["people"]) == 1
    assert "2 driver frame(s) without a person" in report
    b1 = frame_to_people(out[1])[0].body
    assert abs(b1[list(ANKLES), 1].max() - T_GROUND) < 2.0
    # driver frames of another size but the same aspect: rescaled to one view
    half = people_to_frame([Person(body=(driver[2] * [0.5, 0.5, 1]).astype(np.float32))],
                           D_W // 2, D_H // 2)
    out2, _ = node.retarget(tframe, dframes[:2] + [half] + dframes[3:])
    np.testing.assert_allclose(frame_to_people(out2[2])[0].body[:, :2],
                               frame_to_people(node.retarget(tframe, dframes)[0][2])[0].body[:, :2],
                               atol=1.0)
    with pytest.raises(NodeInputError, match=r"\[Retarget Pose\] input 'driver_pose'.*aspect"):
        node.retarget(tframe, dframes[:2] + [dict(half, canvas_width=300)])
    # NaN coordinates in the driver: that joint is missing in the output frame
    nan_frame = people_to_frame([Person(body=driver[1].astype(np.float32))], D_W, D_H)
    flat = list(nan_frame["people"][0]["pose_keypoints_2d"])
    flat[3 * BODY["left_wrist"] + 1] = float("nan")
    nan_frame["people"][0]["pose_keypoints_2d"] = flat
    (res,), _ = node.retarget(tframe, [nan_frame])
    body = frame_to_people(res)[0].body
    assert body[BODY["left_wrist"], 2] == 0 and np.isfinite(body).all()
    # bad targets and drivers
    with pytest.raises(NodeInputError, match=r"input 'target_pose'.*2 frames"):
        node.retarget([tframe, tframe], dframes)
    with pytest.raises(NodeInputError, match=r"input 'target_pose'.*no person"):
        node.retarget({"people": [], "canvas_width": T_W, "canvas_height": T_H}, dframes)
    with pytest.raises(NodeInputError, match=r"input 'driver_pose'.*neck"):
        node.retarget(tframe, [empty, empty])
    with pytest.raises(NodeInputError, match=r"input 'driver_pose'.*non-empty"):
        node.retarget(tframe, [])


def test_best_frame_smooth_retarget_render_as_a_workflow():
    """Target video -> best frame pose; jittery driver -> Smooth Pose -> Retarget Pose onto
    that frame -> Render Pose: composes through the ComfyUI-style executor."""
    import torch
    from executor import run_workflow

    from dance_reenact.nodes import NODE_CLASS_MAPPINGS

    target = _target()
    turned = target.copy()
    turned[:, 0] = 240.0 + 0.3 * (turned[:, 0] - 240.0)
    tframes = [people_to_frame([Person(body=b.astype(np.float32))], T_W, T_H)
               for b in (turned, target, turned)]
    rng = np.random.default_rng(0)
    driver = _driver(30)
    noisy = driver.copy()
    noisy[..., :2] += rng.normal(0, 2.0, noisy[..., :2].shape)
    dframes = [people_to_frame([Person(body=b.astype(np.float32))], D_W, D_H) for b in noisy]

    def source(name, rtype, value):
        return type(name, (), {"INPUT_TYPES": classmethod(lambda cls: {"required": {}}),
                               "RETURN_TYPES": (rtype,), "FUNCTION": "run", "CATEGORY": "test",
                               "run": lambda self: (value,)})

    mappings = {**NODE_CLASS_MAPPINGS,
                "TargetVideo": source("TargetVideo", "IMAGE", torch.rand(3, 56, 48, 3)),
                "TargetPose": source("TargetPose", "POSE_KEYPOINT", tframes),
                "DriverPose": source("DriverPose", "POSE_KEYPOINT", dframes)}
    prompt = {
        "v": {"class_type": "TargetVideo", "inputs": {}},
        "tp": {"class_type": "TargetPose", "inputs": {}},
        "dp": {"class_type": "DriverPose", "inputs": {}},
        "best": {"class_type": "DanceReenactBestAppearanceFrame",
                 "inputs": {"video": ["v", 0], "pose_keypoint": ["tp", 0]}},
        "smooth": {"class_type": "DanceReenactSmoothPose",
                   "inputs": {"pose_keypoint": ["dp", 0], "method": "savgol"}},
        "rt": {"class_type": "DanceReenactRetargetPose",
               "inputs": {"target_pose": ["best", 2], "driver_pose": ["smooth", 0]}},
        "render": {"class_type": "DanceReenactRenderPose",
                   "inputs": {"pose_keypoint": ["rt", 0]}},
    }
    for spec in prompt.values():  # widget values as the UI would save them: the defaults
        declared = mappings[spec["class_type"]].INPUT_TYPES().get("required", {})
        for name, (kind, *opts) in declared.items():
            if name not in spec["inputs"]:
                spec["inputs"][name] = opts[0]["default"] if opts and "default" in opts[0] \
                    else kind[0]
    out = run_workflow(prompt, mappings)
    assert out["best"][1] == 1
    assert out["render"][0].shape == (30, T_H, T_W, 3)
    t_len = _lengths(target)
    for frame in out["rt"][0]:
        body = frame_to_people(frame)[0].body
        # the driver's (smoothed) ankle noise of ~1 px, scaled, follows through
        assert abs(body[list(ANKLES), 1].max() - T_GROUND) < 4.0
        np.testing.assert_allclose(_lengths(body), t_len, rtol=0.05)


def test_retarget_keeps_a_normalised_driver_normalised_when_a_hand_leaves_the_frame():
    target, driver = _target(), _driver(6)
    tframe = people_to_frame([with_face_and_hands(target)], T_W, T_H)
    dframes = [people_to_frame([with_face_and_hands(b)], D_W, D_H, normalized=True)
               for b in driver]
    for f in dframes:  # as comfyui_controlnet_aux writes them: no convention key
        del f["coordinates"]
    dframes[3]["people"][0]["pose_keypoints_2d"][3 * BODY["right_wrist"]] = 1.04
    out, report = RetargetPose().retarget(tframe, dframes)
    assert "collapses" not in report
    assert all(f["coordinates"] == "normalized" for f in out)
    heights = []
    for f in out:
        flat = np.asarray(f["people"][0]["pose_keypoints_2d"]).reshape(-1, 3)
        assert flat[flat[:, 2] > 0, :2].max() < 1.3  # written normalised
        (p,) = frame_to_people(f)
        heights.append(p.bbox()[3] - p.bbox()[1])
    assert min(heights) > 0.8 * max(heights) and min(heights) > 200, heights


def test_retarget_reports_a_collapsed_driver_frame():
    target, driver = _target(), _driver(4)
    tframe = people_to_frame([target_person := with_face_and_hands(target)], T_W, T_H)
    assert target_person.bbox() is not None
    dframes = [people_to_frame([with_face_and_hands(b)], D_W, D_H) for b in driver]
    tiny = with_face_and_hands(driver[2]).scaled(0.002, 0.002)  # a person ~2 px tall
    dframes[2] = people_to_frame([tiny], D_W, D_H)
    _, report = RetargetPose().retarget(tframe, dframes)
    assert "collapses to a few pixels in 1 frame(s) (2)" in report


# --------------------------------------------------------------------------------------------
# The whole person stays inside the photo (retarget_in_photo)
# --------------------------------------------------------------------------------------------

def _extents(frames: list[dict]) -> np.ndarray:
    """(n, 4) keypoint boxes (x0, y0, x1, y1) in pixels, head top included."""
    out = []
    for f in frames:
        (p,) = frame_to_people(f)
        pts = p.all_points()
        pts = pts[pts[:, 2] > 0, :2]
        head = p.body[BODY["nose"], 1] - (p.body[BODY["neck"], 1] - p.body[BODY["nose"], 1])
        out.append([pts[:, 0].min(), min(pts[:, 1].min(), head), pts[:, 0].max(),
                    pts[:, 1].max()])
    return np.array(out)


def test_a_driver_walking_out_of_the_photo_is_held_inside_with_a_margin():
    target, driver = _target(), _driver(40)
    driver[:, :, 0] += np.linspace(0, 340, len(driver))[:, None]  # walks to the right edge
    free, _ = _node_run(target, driver, keep_in_frame=False)
    assert _extents(free)[:, 2].max() > T_W + 20  # without the limit: out of the photo
    out, report = _node_run(target, driver)
    box = _extents(out)
    margin = 0.03 * min(T_W, T_H)
    assert box[:, 0].min() >= margin - 1 and box[:, 2].max() <= T_W - margin + 1
    assert box[:, 1].min() >= margin - 1 and box[:, 3].max() <= T_H - margin + 1
    assert "held inside the photo in" in report
    assert "stays inside the photo with a 14 px margin" in report
    # frames that fit are untouched: the start is where the free motion was
    np.testing.assert_allclose(frame_to_people(out[0])[0].body, frame_to_people(free[0])[0].body,
                               atol=1e-3)
    # the person stops at the edge (moved no further than needed), not back to the middle
    assert box[-1, 2] > T_W - margin - 30


def test_a_pose_too_wide_for_the_photo_is_scaled_down_about_the_feet():
    narrow = 300  # a portrait photo: the target fits, arms stretched out would not
    target = on_ground(build_body((150.0, 0.0), bone_lengths(120.0)), T_GROUND)
    driver = _driver(20)
    for side, sign in (("right", -1.0), ("left", 1.0)):  # arms out sideways from frame 10
        sh, el, wr = (BODY[f"{side}_{j}"] for j in ("shoulder", "elbow", "wrist"))
        driver[10:, el, :2] = driver[10:, sh, :2] + (sign * 80.0, 0.0)
        driver[10:, wr, :2] = driver[10:, el, :2] + (sign * 70.0, 0.0)
    tframe = people_to_frame([with_face_and_hands(target)], narrow, T_H)
    dframes = [people_to_frame([with_face_and_hands(b)], D_W, D_H) for b in driver]
    free, _ = RetargetPose().retarget(tframe, dframes, keep_in_frame=False)
    assert _extents(free)[:, 0].min() < 0 and _extents(free)[:, 2].max() > narrow
    out, report = RetargetPose().retarget(tframe, dframes)
    box = _extents(out)
    margin = 0.03 * narrow
    assert box[:, 0].min() >= margin - 1 and box[:, 2].max() <= narrow - margin + 1
    assert box[:, 1].min() >= margin - 1 and box[:, 3].max() <= T_H - margin + 1
    fit = float(report.split("scaled down by ")[1].split()[0])
    assert 0.6 < fit < 0.95 and "about the feet" in report
    # one size for the whole sequence, and the feet stay on the target's ground line
    lengths = np.array([_lengths(frame_to_people(f)[0].body) for f in out])
    np.testing.assert_allclose(lengths, fit * _lengths(target)[None].repeat(len(out), 0),
                               rtol=0.05)
    feet = [frame_to_people(f)[0].body[list(ANKLES), 1].max() for f in out]
    np.testing.assert_allclose(feet, T_GROUND, atol=2.0)


def _pinned_scenarios():
    """Small inputs reaching each branch of retarget_people: a person-less frame, frames without
    ankles, hips or neck, a walk out of the photo, a waist-up target, a borrowed arm, a target
    without core bones (scale from the box heights), a first frame without ankles."""
    target, driver = _target(), _driver(6)
    driver[5, :, 0] += 380.0  # walks out of the photo
    d = [Person(body=b.astype(np.float32)) for b in driver]
    d[1] = None
    d[2].body[list(ANKLES), 2] = 0.0
    d[3].body[[BODY["right_hip"], BODY["left_hip"]], 2] = 0.0
    d[4].body[BODY["neck"], 2] = 0.0
    full = with_face_and_hands(target)
    waist_up = Person(body=target.astype(np.float32))
    waist_up.body[[BODY[n] for n in ("right_knee", "left_knee", "right_ankle", "left_ankle")],
                  2] = 0.0
    one_arm = Person(body=target.astype(np.float32))
    one_arm.body[[BODY["left_elbow"], BODY["left_wrist"]], 2] = 0.0
    head_only = Person(body=target.astype(np.float32))
    head_only.body[[j for j in range(18) if j not in (0, 1, 14, 15)], 2] = 0.0
    no_ankles = [Person(body=p.body.copy()) if p is not None else None for p in d]
    no_ankles[0].body[list(ANKLES), 2] = 0.0
    faced = [with_face_and_hands(b) for b in driver]
    return {
        "full": (full, d, dict(keep_foreshortening=True, canvas=(T_W, T_H))),
        "waist_up": (waist_up, faced, dict(limit_to_target=True, canvas=None)),
        "one_arm": (one_arm, no_ankles, dict(canvas=(T_W, T_H), margin=0.1)),
        "head_only": (head_only, d, dict(keep_in_frame=False)),
    }


def _pin_values(people):
    """Neck, right wrist, left ankle (x, y, confidence) per frame, and the face and hands'
    coordinate sums: what the characterisation test pins."""
    return [None if p is None else
            [round(float(v), 3) for j in (1, 4, 13) for v in p.body[j]]
            + [round(float(np.sum(part[:, :2])), 2)
               for part in (p.face, p.left_hand, p.right_hand)]
            for p in people]


# What retarget_people returned for _pinned_scenarios() before its split into helpers
# (C901): the report, then _pin_values per frame.
PINNED = {
    "full": (
        "anchor: feet; scale target/driver: 0.769; 1 driver frame(s) without a person stay "
        "empty; held inside the photo in 1 frame(s) (5), moved by up to 245 px; the whole "
        "person stays inside the photo with a 14 px margin",
        [
            [240.0, 231.836, 1.0, 165.23, 341.939, 1.0, 271.558, 499.702, 1.0,
             0.0, 0.0, 0.0],
            None,
            [245.785, 232.246, 1.0, 134.32, 321.886, 1.0, 0.0, 0.0, 0.0,
             0.0, 0.0, 0.0],
            [248.648, 232.449, 1.0, 124.227, 309.296, 1.0, 287.086, 513.5, 1.0,
             0.0, 0.0, 0.0],
            [0.0, 0.0, 0.0, 121.719, 292.674, 1.0, 291.548, 513.5, 1.0,
             0.0, 0.0, 0.0],
            [301.568, 232.602, 1.0, 161.036, 286.202, 1.0, 341.382, 500.0, 1.0,
             0.0, 0.0, 0.0],
        ]),
    "waist_up": (
        "anchor: hips; scale target/driver: 0.769; bones the target does not show use the "
        "driver's length x scale: right_knee, right_ankle, left_knee, left_ankle; the target "
        "shows no ankle (waist-up): anchored on the hips",
        [
            [240.0, 231.836, 1.0, 165.23, 341.939, 1.0, 0.0, 0.0, 0.0,
             29528.49, 14406.04, 10892.86],
            [242.898, 231.993, 1.0, 148.11, 333.27, 1.0, 0.0, 0.0, 0.0,
             29804.41, 14431.36, 10351.28],
            [245.785, 232.246, 1.0, 134.32, 321.886, 1.0, 0.0, 0.0, 0.0,
             30086.93, 14435.72, 9822.63],
            [248.648, 232.449, 1.0, 124.227, 309.296, 1.0, 0.0, 0.0, 0.0,
             30364.51, 14431.6, 9346.3],
            [251.478, 232.576, 1.0, 117.573, 297.011, 1.0, 0.0, 0.0, 0.0,
             30634.29, 14433.31, 8948.57],
            [546.57, 232.702, 1.0, 406.039, 286.302, 1.0, 0.0, 0.0, 0.0,
             51361.58, 20592.94, 14781.46],
        ]),
    "one_arm": (
        "anchor: feet; scale target/driver: 0.769; target bones taken from the other side: "
        "left_elbow, left_wrist; the first driver frame shows no ankle: feet anchored on the "
        "first frame's vertical offset only; 1 driver frame(s) without a person stay empty; "
        "held inside the photo in 1 frame(s) (5), moved by up to 279 px; the whole person "
        "stays inside the photo with a 48 px margin",
        [
            [240.0, 231.836, 1.0, 165.23, 341.939, 1.0, 0.0, 0.0, 0.0,
             0.0, 0.0, 0.0],
            None,
            [245.785, 232.246, 1.0, 134.32, 321.886, 1.0, 0.0, 0.0, 0.0,
             0.0, 0.0, 0.0],
            [248.648, 232.449, 1.0, 124.227, 309.296, 1.0, 287.086, 513.5, 1.0,
             0.0, 0.0, 0.0],
            [0.0, 0.0, 0.0, 121.719, 292.674, 1.0, 291.548, 513.5, 1.0,
             0.0, 0.0, 0.0],
            [267.967, 232.702, 1.0, 127.436, 286.302, 1.0, 307.782, 500.1, 1.0,
             0.0, 0.0, 0.0],
        ]),
    "head_only": (
        "anchor: neck; scale target/driver: 0.134; no common core bone: scale from the "
        "bounding-box heights; bones the target does not show use the driver's length x "
        "scale: right_shoulder, right_elbow, right_wrist, left_shoulder, left_elbow, "
        "left_wrist, right_hip, right_knee, right_ankle, left_hip, left_knee, left_ankle, "
        "right_ear, left_ear; the target shows no ankle (waist-up): anchored on the neck; 1 "
        "driver frame(s) without a person stay empty",
        [
            [240.0, 231.836, 1.0, 227.196, 250.048, 1.0, 245.651, 280.971, 1.0,
             0.0, 0.0, 0.0],
            None,
            [241.01, 231.907, 1.0, 222.06, 246.65, 1.0, 0.0, 0.0, 0.0,
             0.0, 0.0, 0.0],
            [241.51, 231.943, 1.0, 220.409, 244.525, 1.0, 248.223, 281.027, 1.0,
             0.0, 0.0, 0.0],
            [0.0, 0.0, 0.0, 219.343, 242.461, 1.0, 249.003, 281.027, 1.0,
             0.0, 0.0, 0.0],
            [293.541, 231.987, 1.0, 269.8, 240.674, 1.0, 300.781, 281.027, 1.0,
             0.0, 0.0, 0.0],
        ]),
}


@pytest.mark.parametrize("name", sorted(PINNED))
def test_retarget_people_output_is_pinned(name):
    """Characterisation: exact reports and joint values on small inputs reaching every branch,
    so a refactor of retarget_people that changes any output shows here."""
    target, driver, kw = _pinned_scenarios()[name]
    people, report = retarget_people(target, driver, **kw)
    want_report, want = PINNED[name]
    assert str(report) == want_report
    got = _pin_values(people)
    assert [g is None for g in got] == [w is None for w in want]
    for g, w in zip(got, want):
        if w is not None:
            np.testing.assert_allclose(g, w, atol=0.011)
