"""The weightless parser: on a drawn person with known labels, and on the real astronaut photo
through the Human Parse node (MediaPipe keypoints + mask)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from dance_reenact.models.core.schema import BODY, LABEL, LABEL_COLORS, Person
from dance_reenact.models.perception.geometric_parsing import parse_geometric
from dance_reenact.models.perception.hands import paint_hands

L = LABEL
SKIN = (224, 172, 140)
HAIR = (70, 45, 30)
SHIRT = (40, 60, 200)
PANTS = (60, 60, 70)
SHOE = (20, 20, 20)
BACKGROUND = (150, 190, 150)


def drawn_person(dx: float = 0.0, dy: float = 0.0, scale: float = 1.0, h: int = 320,
                 w: int = 256, waist: float | None = None,
                 tunic: float | None = None) -> tuple[np.ndarray, np.ndarray, Person]:
    """A front-facing person in T-shirt and trousers, with the label map it was drawn from.

    Returns:
        (rgb uint8 (h, w, 3), true labels uint8 (h, w), keypoints in pixels).
    """
    def P(x: float, y: float) -> tuple[float, float]:
        return (128 + (x - 128) * scale + dx, 160 + (y - 160) * scale + dy)

    kp = {"nose": (128, 62), "neck": (128, 95), "right_shoulder": (100, 98),
          "left_shoulder": (156, 98), "right_elbow": (86, 148), "left_elbow": (170, 148),
          "right_wrist": (82, 192), "left_wrist": (174, 192), "right_hip": (111, 185),
          "left_hip": (145, 185), "right_knee": (109, 243), "left_knee": (147, 243),
          "right_ankle": (109, 292), "left_ankle": (147, 292), "right_eye": (121, 56),
          "left_eye": (135, 56), "right_ear": (112, 60), "left_ear": (144, 60)}
    body = np.zeros((18, 3), np.float32)
    for name, xy in kp.items():
        body[BODY[name]] = (*P(*xy), 1.0)
    # iBUG 68 face: jaw on an ellipse, brows, nose, eyes, lips
    face = np.zeros((70, 3), np.float32)
    ang = np.linspace(np.pi, 0, 17)
    face[:17, :2] = [P(128 - 15 * np.cos(a), 60 + 20 * np.sin(a)) for a in ang]
    face[17:27, :2] = [P(x, 48) for x in np.r_[np.linspace(116, 125, 5), np.linspace(131, 140, 5)]]
    face[27:31, :2] = [P(128, y) for y in np.linspace(53, 64, 4)]
    face[31:36, :2] = [P(x, 66) for x in np.linspace(124, 132, 5)]
    face[36:42, :2] = [P(x, 56) for x in np.linspace(117, 125, 6)]
    face[42:48, :2] = [P(x, 56) for x in np.linspace(131, 139, 6)]
    face[48:60, :2] = [P(128 + 6 * np.cos(a), 72 + 2 * np.sin(a)) for a in
                       np.linspace(0, 2 * np.pi, 12, endpoint=False)]
    face[60:68, :2] = [P(128 + 4 * np.cos(a), 72 + np.sin(a)) for a in
                       np.linspace(0, 2 * np.pi, 8, endpoint=False)]
    face[68:70, :2] = [P(121, 56), P(135, 56)]
    face[:, 2] = 1.0
    person = Person(body=body, face=face)

    img = np.zeros((h, w, 3), np.uint8)
    img[:] = BACKGROUND
    lab = np.zeros((h, w), np.uint8)

    def ipt(name: str) -> tuple[int, int]:
        return tuple(int(round(v)) for v in body[BODY[name], :2])

    def both(draw, colour, label):
        draw(img, colour)
        draw(lab, int(label))

    t = lambda v: max(1, int(round(v * scale)))  # noqa: E731
    for side in ("right", "left"):
        both(lambda c, v, s=side: cv2.line(c, ipt(f"{s}_hip"), ipt(f"{s}_knee"), v, t(20)),
             PANTS, L["pants"])
        both(lambda c, v, s=side: cv2.line(c, ipt(f"{s}_knee"), ipt(f"{s}_ankle"), v, t(16)),
             PANTS, L["pants"])
        shoe = L[f"{side}_shoe"]
        ax, ay = ipt(f"{side}_ankle")
        both(lambda c, v, x=ax, y=ay: cv2.ellipse(c, (x, y + t(6)), (t(10), t(6)), 0, 0, 360,
                                                  v, -1), SHOE, shoe)
        arm = L[f"{side}_arm"]
        both(lambda c, v, s=side: cv2.line(c, ipt(f"{s}_elbow"), ipt(f"{s}_wrist"), v, t(11)),
             SKIN, arm)
        both(lambda c, v, s=side: cv2.line(c, ipt(f"{s}_shoulder"), ipt(f"{s}_elbow"), v,
                                           t(15)), SHIRT, L["upper_clothes"])
    torso = np.array([ipt("right_shoulder"), ipt("left_shoulder"), ipt("left_hip"),
                      ipt("right_hip")], np.int32)
    torso[:2, 1] -= t(4)
    both(lambda c, v: cv2.fillConvexPoly(c, torso, v), SHIRT, L["upper_clothes"])
    if waist is not None:  # trousers up to the waist, above the hip keypoints
        wy = int(round(P(0, waist)[1]))
        band = np.array([[torso[3][0] - t(3), wy], [torso[2][0] + t(3), wy],
                         torso[2] + [t(3), t(6)], torso[3] + [-t(3), t(6)]], np.int32)
        both(lambda c, v: cv2.fillConvexPoly(c, band, v), PANTS, L["pants"])
    if tunic is not None:  # a long top over the thighs
        ty = int(round(P(0, tunic)[1]))
        hem = np.array([torso[3] + [-t(10), 0], torso[2] + [t(10), 0], [torso[2][0] + t(12), ty],
                        [torso[3][0] - t(12), ty]], np.int32)
        both(lambda c, v: cv2.fillConvexPoly(c, hem, v), SHIRT, L["upper_clothes"])
    nx, ny = ipt("neck")
    both(lambda c, v: cv2.rectangle(c, (nx - t(6), ny - t(22)), (nx + t(6), ny - t(2)), v, -1),
         SKIN, L["torso_skin"])
    cx, cy = (int(round(v)) for v in P(128, 60))
    both(lambda c, v: cv2.ellipse(c, (cx, cy - t(9)), (t(20), t(19)), 0, 0, 360, v, -1),
         HAIR, L["hair"])
    both(lambda c, v: cv2.ellipse(c, (cx, cy), (t(15), t(20)), 0, 0, 360, v, -1), SKIN,
         L["face"])
    # a little texture so the colour model sees real variation
    rng = np.random.default_rng(0)
    img = np.clip(img.astype(np.int16) + rng.integers(-6, 7, img.shape), 0, 255).astype(np.uint8)
    return img, lab, person


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum()) / max(float((a | b).sum()), 1.0)


def test_drawn_person_gets_its_labels():
    img, truth, person = drawn_person()
    labels = parse_geometric(img, person, (truth > 0).astype(np.float32))
    assert labels.shape == truth.shape and labels.dtype == np.uint8
    assert (labels[truth == 0] == 0).all()  # nothing outside the person mask
    floors = {"face": 0.85, "hair": 0.85, "upper_clothes": 0.85, "pants": 0.8, "torso_skin": 0.7,
              "left_arm": 0.65, "right_arm": 0.65, "left_shoe": 0.5, "right_shoe": 0.5}
    ious = {name: _iou(labels == L[name], truth == L[name]) for name in floors}
    assert all(ious[n] > floors[n] for n in floors), ious
    # each side stays on its side: the subject's right arm is on the image's left
    ys, xs = np.nonzero(labels == L["right_arm"])
    assert xs.mean() < 128 < np.nonzero(labels == L["left_arm"])[1].mean()
    # shoes below the ankles, hands at the wrists (derived from the forearm)
    ay = person.body[BODY["right_ankle"], 1]
    assert (labels == L["right_shoe"]).sum() > 20 and (labels == L["left_shoe"]).sum() > 20
    assert np.nonzero(labels == L["right_shoe"])[0].mean() > ay
    for side in ("left", "right"):
        wx, wy = person.body[BODY[f"{side}_wrist"], :2]
        hy, hx = np.nonzero(labels == L[f"{side}_hand"])
        assert len(hy) > 10 and abs(hx.mean() - wx) < 12 and hy.mean() > wy - 4


@pytest.mark.parametrize("waist, tunic", [(160, None), (None, 215)])
def test_waistband_follows_the_clothes_colours(waist, tunic):
    img, truth, person = drawn_person(waist=waist, tunic=tunic)
    labels = parse_geometric(img, person, (truth > 0).astype(np.float32))
    hip_y = person.body[BODY["right_hip"], 1]
    for name in ("upper_clothes", "pants"):
        assert _iou(labels == L[name], truth == L[name]) > 0.85, name
    if waist is not None:  # trousers above the hip keypoints are pants
        assert (labels[int(hip_y) - 15:int(hip_y) - 5] == L["pants"]).sum() > 200
    else:  # the tunic below the hips is upper clothes
        assert (labels[int(hip_y) + 10:int(hip_y) + 20] == L["upper_clothes"]).sum() > 200


def test_drawn_person_without_mask_or_face_still_parses():
    img, truth, person = drawn_person()
    bare = Person(body=person.body)  # no face landmarks, no mask: keypoint geometry only
    labels = parse_geometric(img, bare, None)
    nose = person.body[BODY["nose"], :2].astype(int)
    assert labels[nose[1], nose[0]] == L["face"]
    assert _iou(labels == L["upper_clothes"], truth == L["upper_clothes"]) > 0.4
    assert (labels[:10] == 0).all() and (labels[:, :20] == 0).all()


def test_large_image_parses_at_working_resolution_with_same_layout():
    img, truth, person = drawn_person()
    big = cv2.resize(img, (256 * 4, 320 * 4), interpolation=cv2.INTER_NEAREST)
    big_truth = cv2.resize(truth, (256 * 4, 320 * 4), interpolation=cv2.INTER_NEAREST)
    big_person = person.scaled(4, 4)
    labels = parse_geometric(big, big_person, (big_truth > 0).astype(np.float32), work_side=400)
    assert labels.shape == (1280, 1024)
    assert _iou(labels == L["face"], big_truth == L["face"]) > 0.6


def test_paint_hands_only_touches_arm_and_nearby_background():
    from dance_reenact.models.perception.base import HAND_TEMPLATE

    labels = np.zeros((80, 100), np.uint8)
    labels[:, :50] = L["right_arm"]
    labels[:, 50:] = L["upper_clothes"]
    hand = np.zeros((21, 3), np.float32)
    hand[:, :2] = np.array([30.0, 40.0]) + 25 * HAND_TEMPLATE
    hand[:, 2] = 1.0
    out = paint_hands(labels, Person(right_hand=hand))
    painted = out == L["right_hand"]
    assert painted[40, 30] and painted[44, 41]  # wrist and index knuckle lie on the arm
    assert 100 < painted.sum() < 800
    # the fingers reaching over the clothes (x >= 50) do not overwrite them
    assert not (out[labels == L["upper_clothes"]] == L["right_hand"]).any()
    assert (out[:, 80:] == L["upper_clothes"]).all() and (out[:5] == labels[:5]).all()
    # no keypoints and no forearm: nothing to draw
    assert (paint_hands(labels, Person()) == labels).all()


# -------------------------------------------------------------------------------------------
# the astronaut photo through the node (MediaPipe keypoints + segmentation)
# -------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def astro_parse(astronaut):
    from dance_reenact.models.perception.mediapipe_holistic import detect_people
    from dance_reenact.nodes.parsing import HumanParse

    image = torch.from_numpy(astronaut).float()[None] / 255
    parsing, preview, mask, _ = HumanParse().parse(image, backend="geometric", mask_group="person")
    det = detect_people(astronaut)[0]
    return parsing.labels[0].numpy(), preview[0].numpy(), mask[0].numpy(), det


def _kp(det, name):
    x, y, c = det.person.body[BODY[name]]
    assert c > 0.5, name
    return int(round(x)), int(round(y))


def test_astronaut_face_and_hair(astro_parse):
    labels, preview, _, det = astro_parse
    x, y = _kp(det, "nose")
    assert labels[y, x] == L["face"]
    for eye in ("left_eye", "right_eye"):
        ex, ey = _kp(det, eye)
        assert labels[ey, ex] == L["face"]
    assert np.allclose(preview[y, x], LABEL_COLORS[L["face"]] / 255.0, atol=1 / 255)
    fy, fx = np.nonzero(labels == L["face"])
    hy, hx = np.nonzero(labels == L["hair"])
    assert 4000 < len(fy) < 20000 and len(hy) > 3000
    assert hy.mean() < fy.mean() - 20  # hair sits above the face
    assert hy.min() < fy.min()  # and reaches higher than it
    assert abs(hx.mean() - fx.mean()) < 30  # centred over it
    assert (hy < y).mean() > 0.9  # almost all hair is above the nose


def test_astronaut_mask_and_clothes(astro_parse):
    labels, _, mask, det = astro_parse
    assert mask.shape == (512, 512) and set(np.unique(mask)) <= {0.0, 1.0}
    assert np.array_equal(mask > 0, labels > 0)
    for name in ("nose", "neck", "right_shoulder", "left_shoulder", "right_eye", "left_eye"):
        x, y = _kp(det, name)
        assert mask[y, x] == 1.0, name
    assert mask[:60, :60].max() == 0 and mask[:60, -60:].max() == 0  # flag / backdrop corners
    uy, ux = np.nonzero(labels == L["upper_clothes"])
    fy = np.nonzero(labels == L["face"])[0]
    assert len(uy) > 0.2 * labels.size  # the orange suit
    assert uy.mean() > fy.max()  # upper clothes below the face
    # the suit's orange is not taken for skin
    assert (labels == L["torso_skin"]).sum() < 0.05 * len(uy)


def test_astronaut_arms_are_adjacent_to_the_shoulders(astro_parse):
    labels, _, _, det = astro_parse
    for side in ("right", "left"):
        sx, sy = _kp(det, f"{side}_shoulder")
        ex, ey = det.person.body[BODY[f"{side}_elbow"], :2]
        assert labels[sy, sx] in (L["upper_clothes"], L[f"{side}_arm"])
        # along the upper arm: sleeve (the suit) or bare arm, never background or the face
        ts = np.linspace(0.0, 0.8, 20)
        along = [labels[int(sy + t * (ey - sy)), int(sx + t * (ex - sx))] for t in ts]
        ok = [v in (L["upper_clothes"], L[f"{side}_arm"], L[f"{side}_hand"]) for v in along]
        assert np.mean(ok) > 0.85, (side, along)
    # the subject's right arm labels (if any) lie on the image's left half, left on the right
    for side, half in (("right", slice(0, 256)), ("left", slice(256, 512))):
        arm = labels == L[f"{side}_arm"]
        assert arm[:, half].sum() >= arm.sum() * 0.9


def test_parse_video_streams_a_generator_lazily():
    from dance_reenact.models.perception.human_parsing import parse_video

    shifts = (-30, 0, 30)
    drawn = [drawn_person(dx=dx) for dx in shifts]
    consumed: list[int] = []

    def frames():
        for i, (img, _, _) in enumerate(drawn):
            consumed.append(i)
            yield img
        consumed.append(-1)
        yield np.full_like(drawn[0][0], 150)  # an empty frame at the end

    poses = [[p] for _, _, p in drawn] + [[]]
    it = parse_video(frames(), poses=poses)
    first = next(it)
    assert consumed == [0]  # one frame at a time, not the whole video up front
    rest = list(it)
    assert rest[-1] is None  # no person in the last frame
    xs = [np.nonzero(lab == L["face"])[1].mean() for lab in [first, *rest[:-1]]]
    assert xs[0] + 20 < xs[1] < xs[2] - 20


def test_back_view_head_is_hair_not_face():
    """Only the ears found (no nose, no eyes): the head is seen from behind."""
    img, truth, person = drawn_person()
    head = truth == L["face"]
    img[head] = HAIR  # the back of the head is all hair
    truth[head] = L["hair"]
    body = person.body.copy()
    for name in ("nose", "right_eye", "left_eye"):
        body[BODY[name]] = 0
    labels = parse_geometric(img, Person(body=body), (truth > 0).astype(np.float32))
    ys, xs = np.nonzero(truth == L["hair"])
    assert (labels[ys, xs] == L["hair"]).mean() > 0.8
    assert (labels == L["face"]).sum() < 20


def test_cameraman_profile_grayscale():
    """skimage's cameraman: a grayscale photo, the face in profile, dark hair and coat."""
    from skimage import data

    from dance_reenact.models.perception.mediapipe_holistic import detect_people
    from dance_reenact.nodes.parsing import HumanParse

    gray = data.camera()
    parsing, _, mask, _ = HumanParse().parse(torch.from_numpy(gray).float()[None, ..., None] / 255,
                                          mask_group="face_hair")
    labels = parsing.labels[0].numpy()
    det = detect_people(np.repeat(gray[..., None], 3, -1))[0]
    x, y = (int(round(v)) for v in det.person.body[BODY["nose"], :2])
    fy, fx = np.nonzero(labels == L["face"])
    # in profile the nose tip sticks out of the jaw outline: the face is right behind it
    assert np.hypot(fx - x, fy - y).min() < 8 and abs(fy.mean() - y) < 25
    hy, hx = np.nonzero(labels == L["hair"])
    assert len(hy) > 3000 and hy.mean() < fy.mean() - 20 and hy.min() < fy.min()
    assert (labels[:60] == 0).all()  # sky above his head
    # the dark coat is clothes, not skin, and the face/hair mask is exactly face + hair
    assert (labels == L["upper_clothes"]).sum() > 20000
    assert np.array_equal(mask[0].numpy() > 0, (labels == L["face"]) | (labels == L["hair"]))
    # the parsing covers the person MediaPipe segments (nothing of him left unlabelled)
    person = det.mask > 0.5
    iou = ((labels > 0) & person).sum() / ((labels > 0) | person).sum()
    assert iou >= 0.9, iou


def test_grayscale_photo_tells_skin_from_clothes_by_luminance():
    """Synthetic people turned grayscale: skin vs clothes from the face's brightness, not from
    chroma that is flat (or 1-level JPEG noise) everywhere."""
    import cv2

    from dance_reenact.models.perception.geometric_parsing import is_grayscale
    from dance_reenact.training.synthetic import random_body, random_pose, render

    rng = np.random.default_rng(3)
    skin_ids = [L[n] for n in ("torso_skin", "face", "left_arm", "right_arm", "left_leg",
                               "right_leg")]
    accuracy = []
    for _ in range(6):
        body = random_body(rng)
        s = render(body, random_pose(rng, body), 256, 192)
        gray = np.repeat(cv2.cvtColor(s.image, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)
        noisy = np.clip(gray.astype(int) + rng.integers(-1, 2, gray.shape), 0, 255)
        noisy = noisy.astype(np.uint8)
        assert is_grayscale(gray) and is_grayscale(noisy) and not is_grayscale(s.image)
        labels = parse_geometric(noisy, s.person, s.mask.astype(np.float32))
        truth = np.isin(s.labels, skin_ids)
        accuracy.append(float((np.isin(labels, skin_ids) == truth)[s.mask].mean()))
    # chroma-based (the colour photo's model on grey) scored 0.50 on these six people
    assert np.mean(accuracy) > 0.57, accuracy
    assert min(accuracy) > 0.3, accuracy


def _pin_inputs() -> dict[str, tuple[np.ndarray, Person, np.ndarray | None]]:
    """Inputs reaching each branch of _parse: the drawn person with its mask, without face
    landmarks or mask, seen from behind, without hips (a two-point torso), grayscale, and with
    no body keypoint at all (face landmarks only)."""
    img, truth, person = drawn_person()
    mask = (truth > 0).astype(np.float32)
    back = person.body.copy()
    back[[BODY["nose"], BODY["right_eye"], BODY["left_eye"]]] = 0
    no_hips = person.body.copy()
    no_hips[[BODY[n] for n in ("right_hip", "left_hip", "right_knee", "left_knee",
                               "right_ankle", "left_ankle")]] = 0
    gray = np.repeat(img.mean(-1, keepdims=True).astype(np.uint8), 3, axis=-1)
    face_only = Person(body=np.zeros_like(person.body), face=person.face)
    return {"drawn": (img, person, mask),
            "bare": (img, Person(body=person.body), None),
            "back": (img, Person(body=back), mask),
            "no_hips": (img, Person(body=no_hips, face=person.face), mask),
            "gray": (gray, person, mask),
            "face_only": (img, face_only, mask)}


# parse_geometric on _pin_inputs() before _parse was split into helpers (C901): pixels per label.
PINNED = {
    "drawn": {"hair": 497, "upper_clothes": 6146, "pants": 4048, "torso_skin": 171, "face": 989,
              "left_arm": 421, "right_arm": 421, "left_shoe": 304, "right_shoe": 304,
              "left_hand": 136, "right_hand": 136},
    "bare": {"hair": 822, "upper_clothes": 7664, "pants": 4352, "torso_skin": 109, "face": 1121,
             "left_arm": 421, "right_arm": 421, "left_shoe": 276, "right_shoe": 276,
             "left_hand": 952, "right_hand": 948},
    "back": {"hair": 1494, "upper_clothes": 6146, "pants": 4048, "torso_skin": 163,
             "left_arm": 421, "right_arm": 421, "left_shoe": 304, "right_shoe": 304,
             "left_hand": 136, "right_hand": 136},
    "no_hips": {"hair": 497, "upper_clothes": 9962, "torso_skin": 171, "face": 989,
                "left_arm": 421, "right_arm": 421, "left_hand": 556, "right_hand": 556},
    "gray": {"hair": 487, "upper_clothes": 5968, "pants": 4182, "torso_skin": 177, "face": 999,
             "left_arm": 440, "right_arm": 440, "left_leg": 4, "right_leg": 4, "left_shoe": 300,
             "right_shoe": 300, "left_hand": 136, "right_hand": 136},
    "face_only": {"hair": 497, "upper_clothes": 10844, "torso_skin": 1191, "face": 1041},
}


@pytest.mark.parametrize("name", sorted(PINNED))
def test_geometric_parsing_output_is_pinned(name):
    """Characterisation: exact label areas on small inputs, so a change of any part of the
    parser (part distances, skin model, head split) shows here."""
    img, person, mask = _pin_inputs()[name]
    labels = parse_geometric(img, person, mask)
    counts = np.bincount(labels.ravel(), minlength=len(L))
    names = {v: k for k, v in L.items()}
    assert {names[i]: int(counts[i]) for i in np.nonzero(counts)[0] if i} == PINNED[name]
