"""Best appearance frame on synthetic target videos where the best frame is known."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from pose_synth import bone_lengths, build_body, on_ground

from dance_reenact.models.core.schema import BODY, Person, people_to_frame
from dance_reenact.models.geometry.best_frame import best_frame, score_frames
from dance_reenact.nodes.runtime import NodeInputError
from dance_reenact.nodes.temporal import BestAppearanceFrame

W, H = 640, 512
LEGS = ("right_knee", "left_knee", "right_ankle", "left_ankle")


def _frontal(conf: float = 0.95) -> np.ndarray:
    body = on_ground(build_body((320.0, 0.0), bone_lengths(80.0)), 480.0)
    body[:, 2] = conf
    return body


def _candidates() -> dict[str, np.ndarray | None]:
    """Named frames; 'best' is the only frontal, complete, confident one."""
    best = _frontal(0.95)
    profile = best.copy()
    profile[:, 0] = 320.0 + 0.3 * (profile[:, 0] - 320.0)  # turned sideways: narrow
    profile[[BODY["left_eye"], BODY["left_ear"]]] = 0.0
    no_legs = best.copy()
    for n in LEGS:
        no_legs[BODY[n]] = 0.0
    back = best.copy()
    back[:, 0] = 640.0 - back[:, 0]  # mirrored: the subject's right shoulder on image right
    back[[BODY["nose"], BODY["right_eye"], BODY["left_eye"]]] = 0.0
    no_ears = best.copy()
    no_ears[[BODY["right_ear"], BODY["left_ear"]]] = 0.0
    unsure = _frontal(0.6)
    return {"profile": profile, "no_legs": no_legs, "back": back, "empty": None,
            "best": best, "no_ears": no_ears, "unsure": unsure}


@pytest.mark.parametrize("rotate", [0, 2, 5])
def test_best_frame_is_the_frontal_complete_confident_one(rotate):
    cands = list(_candidates().items())
    cands = cands[rotate:] + cands[:rotate]
    names = [n for n, _ in cands]
    people = [None if b is None else Person(body=b.astype(np.float32)) for _, b in cands]
    index, scores = best_frame(people)
    assert names[index] == "best"
    by = {n: s for n, s in zip(names, scores)}
    assert by["best"].frontality == pytest.approx(1.0)
    assert by["best"].score == pytest.approx(0.95)
    assert by["profile"].frontality < 0.3 * by["best"].frontality
    assert by["no_legs"].completeness == pytest.approx(14 / 18)
    assert by["back"].frontality < 0.5 * by["best"].frontality
    assert by["no_ears"].frontality == pytest.approx(0.6)
    assert by["unsure"].confidence == pytest.approx(0.6)
    assert by["empty"].score == 0.0
    # the ranking a user would expect
    order = sorted(names, key=lambda n: -by[n].score)
    assert order[0] == "best" and order[-1] == "empty"


def test_best_frame_node_outputs_frame_index_and_pose():
    cands = list(_candidates().values())
    frames = [people_to_frame([] if b is None else [Person(body=b.astype(np.float32))], W, H,
                              normalized=True) for b in cands]
    video = torch.stack([torch.full((32, 40, 3), i / 10.0) for i in range(len(frames))])
    image, index, pose, text = BestAppearanceFrame().pick(video, frames)
    assert index == 4
    assert image.shape == (1, 32, 40, 3) and torch.equal(image[0], video[4])
    assert pose == [frames[4]]
    assert text.startswith("frame 4: score 0.950")


def test_best_frame_edge_cases():
    node = BestAppearanceFrame()
    best = _frontal()
    frame = people_to_frame([Person(body=best.astype(np.float32))], W, H)
    empty = {"people": [], "canvas_width": W, "canvas_height": H}
    video = torch.rand(3, 32, 40, 3)
    # a one-frame video is its own best frame
    image, index, pose, _ = node.pick(video[:1], [frame])
    assert index == 0 and torch.equal(image, video[:1]) and pose == [frame]
    # empty frames are skipped
    _, index, _, _ = node.pick(video, [empty, frame, empty])
    assert index == 1
    # a NaN keypoint is missing, not a crash
    flat = list(frame["people"][0]["pose_keypoints_2d"])
    flat[3 * BODY["left_ear"]] = float("nan")
    nan_frame = {**frame, "people": [{"pose_keypoints_2d": flat}]}
    _, index, _, _ = node.pick(video[:2], [nan_frame, frame])
    assert index == 1
    with pytest.raises(NodeInputError, match=r"\[Best Appearance Frame\].*no frame shows"):
        node.pick(video, [empty, empty, empty])
    with pytest.raises(NodeInputError, match=r"input 'video/pose_keypoint'.*3 frames.*2"):
        node.pick(video, [frame, frame])
    with pytest.raises(NodeInputError, match="aspect ratio"):
        node.pick(video, [dict(frame, canvas_width=H)] * 3)
    with pytest.raises(NodeInputError, match=r"input 'video'"):
        node.pick(torch.zeros(0, 8, 8, 3), [frame])


def test_frontality_uses_head_when_hips_are_missing():
    """A waist-up video: width is measured against the neck-nose distance instead."""
    wide = _frontal()
    for n in LEGS + ("right_hip", "left_hip"):
        wide[BODY[n]] = 0.0
    narrow = wide.copy()
    narrow[:, 0] = 320.0 + 0.5 * (narrow[:, 0] - 320.0)
    scores = score_frames([Person(body=narrow.astype(np.float32)),
                           Person(body=wide.astype(np.float32))])
    assert scores[1].frontality == pytest.approx(1.0)
    assert scores[0].frontality == pytest.approx(0.5, abs=0.05)


# --------------------------------------------------------------------------------------------
# Upright and face-visible beats a crouch with the face hidden (real frames + a synthetic one)
# --------------------------------------------------------------------------------------------

DANCER = Path("/work/shared/dev_clips/pisa_dancer.webp")
_FACE = ("nose", "right_eye", "left_eye", "right_ear", "left_ear")


@pytest.fixture(scope="module")
def dancer_people() -> list[Person | None]:
    if not DANCER.is_file():
        pytest.skip(f"{DANCER} is not on this machine")
    from PIL import Image

    from dance_reenact.models.perception.mediapipe_holistic import detect_people

    im = Image.open(DANCER)
    people = []
    for i in range(0, im.n_frames, 10):
        im.seek(i)
        found = detect_people(np.array(im.convert("RGB")), with_mask=False)
        people.append(found[0].person if found else None)
    return people


def _crouch(face_conf: float, shoulder_width: float) -> Person:
    """A deep frontal crouch (thighs near horizontal, the torso bent towards the camera so it
    looks short), scaled to ``shoulder_width``; face keypoints at ``face_conf`` (0 = missing,
    0.2 = a hidden face the detector only guesses)."""
    from dance_reenact.training.synthetic import SyntheticBody, SyntheticPose, skeleton

    body = SyntheticBody()
    body = replace(body, torso_len=0.6 * body.torso_len)
    pose = SyntheticPose(right_thigh=-1.35, right_shin=-0.05, left_thigh=1.35, left_shin=0.05,
                         cy=0.4)
    joints = skeleton(body, pose, 350, 350)
    kp = np.zeros((18, 3), np.float32)
    for name, idx in BODY.items():
        kp[idx] = (*joints[name], 1.0)
    neck = kp[BODY["neck"], :2].copy()
    width = np.linalg.norm(kp[BODY["right_shoulder"], :2] - kp[BODY["left_shoulder"], :2])
    kp[:, :2] = neck + (kp[:, :2] - neck) * shoulder_width / width
    for name in _FACE:
        kp[BODY[name], 2] = face_conf
    return Person(body=kp)


@pytest.mark.parametrize("face_conf", [0.0, 0.2, 1.0])
def test_a_crouch_with_the_face_hidden_loses_to_upright_dancer_frames(face_conf, dancer_people):
    people = dancer_people
    widths = [np.linalg.norm(p.body[BODY["right_shoulder"], :2]
                             - p.body[BODY["left_shoulder"], :2]) for p in people if p]
    assert len(widths) >= 6
    crouch = _crouch(face_conf, float(np.median(widths)))
    seq = people + [crouch]
    index, scores = best_frame(seq)
    assert index != len(seq) - 1
    s = scores[-1]
    # the crouch is judged not upright, and its guessed face is not a visible face
    assert s.upright < 0.4
    if face_conf < 1.0:
        assert s.frontality < 0.3
    # every upright dancer frame beats it
    assert all(scores[i].score > s.score for i, p in enumerate(people) if p is not None)
    assert min(scores[i].upright for i, p in enumerate(people) if p is not None) > 0.6
