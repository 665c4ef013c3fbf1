"""Retargeting: the driver's motion on the target's body (SPEC §5, beyond the paper).

A tall driver would otherwise stretch a short target (and vice versa) because P2B/B2F follow
the driver's stick figure. :func:`retarget_people` rebuilds each driver frame on the target's
skeleton:

1. **Per-limb lengths from the target.** Down the kinematic tree ``schema.BODY_PARENT`` from
   the neck, each bone keeps the driver's direction in that frame and takes the target's
   length. With ``keep_foreshortening`` (off by default: detector noise on short bones would
   pass through as length changes) the length is further multiplied by
   ``min(1, driver length in this frame / driver's reference length)`` (its 95th percentile
   over the sequence), so an arm pointing at the camera stays short. A bone the target does not show
   uses its mirror bone (left/right), else the driver's reference length × the global scale.
   A joint whose parent is missing in the driver frame is placed by the global transform.
2. **Global scale** ``s`` = median over the core bones (torso, legs, shoulders, upper arms)
   present in both of target length / driver reference length (fallback: ratio of the
   body bounding-box heights). It scales the driver's displacements across the frame.
3. **Anchor and translation** (fixed on the first driver frame that has a neck):
   - ``feet`` when the target shows an ankle: horizontally the mid-hip (else the neck)
     follows ``s`` × the driver's displacement from the first frame, starting at the target's;
     vertically the driver's lowest ankle's height above the driver's ground line (its lowest
     ankle in the first frame) is scaled by ``s`` and put above the **target's ground line**
     (the target's lowest ankle), so feet on the ground stay on the ground whatever the leg
     lengths. Frames where the driver shows no ankle keep the vertical offset of the first
     frame.
   - ``hips`` / ``shoulders`` / ``neck`` for a waist-up target (no ankle): the mid-hip (else
     the mid-shoulder, else the neck) starts on the target's and follows ``s`` × the driver's
     displacement. The report says which anchor was used.
4. **Face and hands** move rigidly with their joints: the face keeps its offsets from the nose,
   each hand from its wrist, scaled by ``s``.

With ``limit_to_target`` the output keeps only the joints the target shows (the legs of a
waist-up target are dropped; its face/hands only if the target has its nose/wrists).
Output coordinates are pixels of the target's canvas.

5. **Keep the person in the photo** (``keep_in_frame``, given the canvas size): each frame's
   person extent is its keypoint box with the head top added (the nose raised by the
   neck–nose distance) and padded by ``PERSON_PAD`` of its height. The allowed area is the
   canvas less ``margin`` × its shorter side on every side. When the largest extent of any
   frame does not fit, every frame is scaled down about the target's anchor (its ground point
   for ``feet``), once for the whole sequence, so the person keeps one size. Then a frame whose
   extent still leaves the area is moved by the smallest shift that brings it back: the
   person stops at the edge instead of walking out. The report says by how much it scaled and
   how many frames were held, and by how many pixels at most. A target that already leaves
   the photo (a waist-up crop) is limited on the sides it fits only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..core.schema import BODY, BODY_MIRROR, BODY_PARENT, NUM_BODY, Person, people_to_frame
from .pose_sequence import parse_sequence

# Joints in an order where every parent comes before its children.
_TREE_ORDER: tuple[int, ...] = (1, 0, 2, 5, 8, 11, 14, 15, 3, 6, 9, 12, 16, 17, 4, 7, 10, 13)
# Bones (named by their child joint) used for the global scale, most reliable first.
_CORE_BONES: tuple[int, ...] = (
    BODY["right_hip"], BODY["left_hip"], BODY["right_knee"], BODY["left_knee"],
    BODY["right_ankle"], BODY["left_ankle"], BODY["right_shoulder"], BODY["left_shoulder"],
    BODY["right_elbow"], BODY["left_elbow"],
)
_ANKLES = (BODY["right_ankle"], BODY["left_ankle"])
_HIPS = (BODY["right_hip"], BODY["left_hip"])
_SHOULDERS = (BODY["right_shoulder"], BODY["left_shoulder"])
NECK, NOSE = BODY["neck"], BODY["nose"]
PERSON_PAD = 0.04  # of the person's keypoint height: feet below ankles, hands past the wrists
DEFAULT_MARGIN = 0.03  # of the canvas' shorter side, kept free around the person


@dataclass
class RetargetReport:
    """How the retargeting was anchored: ``anchor`` in {feet, hips, shoulders, neck}, the global
    ``scale`` (target / driver), and notes (bones borrowed, frames without a person)."""

    anchor: str = ""
    scale: float = 1.0
    notes: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        text = f"anchor: {self.anchor}; scale target/driver: {self.scale:.3f}"
        return text + ("; " + "; ".join(self.notes) if self.notes else "")


def _ok(body: np.ndarray, threshold: float) -> np.ndarray:
    return body[:, 2] > threshold


def _bone_lengths(body: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """(18,) length of the bone ending at each joint; NaN where it or its parent is missing."""
    out = np.full(NUM_BODY, np.nan)
    for j in range(NUM_BODY):
        p = BODY_PARENT[j]
        if p >= 0 and ok[j] and ok[p]:
            out[j] = float(np.linalg.norm(body[j, :2] - body[p, :2]))
    return out


def _mid(body: np.ndarray, ok: np.ndarray, joints: Sequence[int]) -> np.ndarray | None:
    if all(ok[j] for j in joints):
        return body[list(joints), :2].mean(axis=0)
    return None


def _anchor_point(body: np.ndarray, ok: np.ndarray, kind: str) -> np.ndarray | None:
    if kind == "hips":
        return _mid(body, ok, _HIPS)
    if kind == "shoulders":
        return _mid(body, ok, _SHOULDERS)
    return body[NECK, :2].copy() if ok[NECK] else None


def _driver_reference_lengths(driver: Sequence[Person | None], threshold: float) -> np.ndarray:
    """(18,) each driver bone at full length: its 95th percentile over the frames that show
    it (NaN where none does)."""
    d_lengths = np.stack([_bone_lengths(p.body.astype(np.float64), _ok(p.body, threshold))
                          if p is not None else np.full(NUM_BODY, np.nan) for p in driver])
    d_ref = np.full(NUM_BODY, np.nan)
    for j in range(NUM_BODY):
        col = d_lengths[:, j]
        col = col[np.isfinite(col)]
        if len(col):
            d_ref[j] = float(np.percentile(col, 95))
    return d_ref


def _target_lengths(tb: np.ndarray, t_ok: np.ndarray, report: RetargetReport) -> np.ndarray:
    """(18,) the target's bone lengths, a bone it does not show taken from its mirror bone
    (noted in ``report``); NaN where neither side shows."""
    t_len = _bone_lengths(tb, t_ok)
    borrowed = []
    for j in range(NUM_BODY):
        m = BODY_MIRROR[j]
        if np.isnan(t_len[j]) and m != j and np.isfinite(t_len[m]):
            t_len[j] = t_len[m]
            borrowed.append(_name(j))
    if borrowed:
        report.notes.append("target bones taken from the other side: " + ", ".join(borrowed))
    return t_len


def _global_scale(t_len: np.ndarray, d_ref: np.ndarray, tb: np.ndarray, t_ok: np.ndarray,
                  ref_driver: Person, threshold: float, report: RetargetReport) -> float:
    """Step 2 of the module docstring: the median target/driver ratio of the core bones, else
    the ratio of the bounding-box heights (target vs the driver's reference frame)."""
    ratios = [t_len[j] / d_ref[j] for j in _CORE_BONES
              if np.isfinite(t_len[j]) and np.isfinite(d_ref[j]) and d_ref[j] > 1e-6]
    if ratios:
        return float(np.median(ratios))
    th = np.ptp(tb[t_ok, 1])
    db = ref_driver.body
    dh = np.ptp(db[_ok(db, threshold), 1])
    report.notes.append("no common core bone: scale from the bounding-box heights")
    return float(th / dh) if dh > 1e-6 and th > 1e-6 else 1.0


@dataclass
class _Plan:
    """The sequence-wide part of the retargeting (steps 1-3 of the module docstring): the
    target's bone lengths, the driver's reference lengths, the global scale and the anchor."""

    t_len: np.ndarray       # (18,) target bone lengths (NaN: the target shows neither side)
    d_ref: np.ndarray       # (18,) driver reference bone lengths
    scale: float            # s: target / driver
    anchor: str             # feet, hips, shoulders or neck (the report's)
    h_kind: str             # the point the translation follows: hips, shoulders or neck
    t_anchor: np.ndarray    # that point on the target
    d_anchor0: np.ndarray   # that point in the driver's reference frame
    t_ground: float         # the target's lowest ankle (feet anchor), else 0
    d_ground: float | None  # the driver's lowest ankle in the reference frame, if shown

    def glob(self, p: np.ndarray) -> np.ndarray:
        """Driver pixels -> target pixels by the global transform."""
        return self.t_anchor + self.scale * (p - self.d_anchor0)


def _anchor_kinds(tb: np.ndarray, t_ok: np.ndarray, ref_body: np.ndarray, ref_ok: np.ndarray,
                  report: RetargetReport) -> tuple[str, str]:
    """(anchor, the point the translation follows): ``feet`` with the mid-hip (else the
    neck) when the target shows an ankle, else the first of hips/shoulders/neck that both
    the target and the driver's reference frame show (noted in ``report``)."""
    if any(t_ok[a] for a in _ANKLES):
        h_kind = "hips" if (_mid(tb, t_ok, _HIPS) is not None
                            and _mid(ref_body, ref_ok, _HIPS) is not None) else "neck"
        return "feet", h_kind
    h_kind = next((k for k in ("hips", "shoulders", "neck")
                   if _anchor_point(tb, t_ok, k) is not None
                   and _anchor_point(ref_body, ref_ok, k) is not None), "neck")
    report.notes.append(f"the target shows no ankle (waist-up): anchored on the {h_kind}")
    return h_kind, h_kind


def _plan(tb: np.ndarray, t_ok: np.ndarray, driver: Sequence[Person | None], ref_t: int,
          threshold: float, report: RetargetReport) -> _Plan:
    """Steps 1-3 of the module docstring for the whole sequence; notes go to ``report``."""
    d_ref = _driver_reference_lengths(driver, threshold)
    t_len = _target_lengths(tb, t_ok, report)
    ref_driver = driver[ref_t]
    assert ref_driver is not None
    s = _global_scale(t_len, d_ref, tb, t_ok, ref_driver, threshold, report)
    report.scale = s
    missing_len = [j for j in range(NUM_BODY) if BODY_PARENT[j] >= 0 and np.isnan(t_len[j])]
    if missing_len:
        report.notes.append("bones the target does not show use the driver's length x scale: "
                            + ", ".join(_name(j) for j in missing_len))
    ref_body = ref_driver.body.astype(np.float64)
    ref_ok = _ok(ref_body, threshold)
    anchor, h_kind = _anchor_kinds(tb, t_ok, ref_body, ref_ok, report)
    report.anchor = anchor
    t_anchor = _anchor_point(tb, t_ok, h_kind)
    d_anchor0 = _anchor_point(ref_body, ref_ok, h_kind)
    assert t_anchor is not None and d_anchor0 is not None
    t_ground = max(tb[a, 1] for a in _ANKLES if t_ok[a]) if anchor == "feet" else 0.0
    ref_ankles = [a for a in _ANKLES if ref_ok[a]]
    d_ground = max(ref_body[a, 1] for a in ref_ankles) if ref_ankles else None
    if anchor == "feet" and d_ground is None:
        report.notes.append("the first driver frame shows no ankle: feet anchored on the "
                            "first frame's vertical offset only")
    return _Plan(t_len, d_ref, s, anchor, h_kind, t_anchor, d_anchor0, t_ground, d_ground)


def _relative_skeleton(db: np.ndarray, d_ok: np.ndarray, plan: _Plan,
                       keep_foreshortening: bool) -> tuple[np.ndarray, np.ndarray]:
    """Step 1 of the module docstring for one frame whose neck is shown: (body (18, 3) with
    the neck at the origin, each bone in the driver's direction at the target's length;
    which joints were placed). Joints whose parent chain breaks are not placed."""
    ob = np.zeros((NUM_BODY, 3))
    placed = np.zeros(NUM_BODY, bool)
    placed[NECK] = True
    for j in _TREE_ORDER[1:]:
        p = BODY_PARENT[j]
        if not d_ok[j] or not placed[p]:
            continue
        vec = db[j, :2] - db[p, :2]
        dlen = float(np.linalg.norm(vec))
        length = plan.t_len[j] if np.isfinite(plan.t_len[j]) else plan.scale * (
            plan.d_ref[j] if np.isfinite(plan.d_ref[j]) else dlen)
        if keep_foreshortening and np.isfinite(plan.d_ref[j]) and plan.d_ref[j] > 1e-6:
            length *= min(1.0, dlen / plan.d_ref[j])
        ob[j, :2] = ob[p, :2] + (vec / dlen * length if dlen > 1e-9 else 0.0)
        placed[j] = True
    return ob, placed


@dataclass
class _Carry:
    """What later frames take from the earlier ones: the neck's offset from the global
    transform in the reference frame, and the feet's vertical offset once known."""

    neck_offset: np.ndarray = field(default_factory=lambda: np.zeros(2))
    dy0: float | None = None


def _translation(db: np.ndarray, d_ok: np.ndarray, ob: np.ndarray, placed: np.ndarray,
                 plan: _Plan, carry: _Carry, is_ref: bool) -> np.ndarray:
    """Step 3 of the module docstring: the (2,) shift that puts the relative skeleton ``ob``
    on the target's canvas; updates ``carry``."""
    here = _anchor_point(db, d_ok, plan.h_kind)
    rel = _anchor_point(ob, placed, plan.h_kind)
    neck_glob = plan.glob(db[NECK, :2])
    if here is not None and rel is not None:
        shift = plan.glob(here) - rel
    else:  # anchor not visible in this frame: the neck with the first frame's offset
        shift = neck_glob + carry.neck_offset
    if is_ref:
        carry.neck_offset = (shift - neck_glob)
    if plan.anchor == "feet":
        feet = [a for a in _ANKLES if d_ok[a] and placed[a]]
        if feet and plan.d_ground is not None:
            low = max(feet, key=lambda a: db[a, 1])
            want = plan.t_ground - plan.scale * (plan.d_ground - db[low, 1])
            shift[1] = want - ob[low, 1]
            if carry.dy0 is None:
                carry.dy0 = shift[1] - (neck_glob[1] - ob[NECK, 1])
        elif carry.dy0 is not None:
            shift[1] = neck_glob[1] - ob[NECK, 1] + carry.dy0
    return shift


def _retarget_frame(person: Person, plan: _Plan, carry: _Carry, is_ref: bool,
                    t_ok: np.ndarray, threshold: float, keep_foreshortening: bool,
                    limit_to_target: bool) -> Person:
    """One driver frame with a person on the target's body (steps 1, 3 and 4 of the module
    docstring)."""
    db = person.body.astype(np.float64)
    d_ok = _ok(db, threshold)
    if d_ok[NECK]:
        ob, placed = _relative_skeleton(db, d_ok, plan, keep_foreshortening)
        ob[placed, :2] += _translation(db, d_ok, ob, placed, plan, carry, is_ref)
    else:
        ob, placed = np.zeros((NUM_BODY, 3)), np.zeros(NUM_BODY, bool)
    # joints not reachable from the neck in this frame: global transform
    for j in range(NUM_BODY):
        if d_ok[j] and not placed[j]:
            ob[j, :2] = plan.glob(db[j, :2])
            placed[j] = True
    ob[placed, 2] = db[placed, 2]
    s = plan.scale
    face = _rigid(person.face, db, ob, d_ok, NOSE, s, threshold)
    lh = _rigid(person.left_hand, db, ob, d_ok, BODY["left_wrist"], s, threshold)
    rh = _rigid(person.right_hand, db, ob, d_ok, BODY["right_wrist"], s, threshold)
    if limit_to_target:
        ob[~t_ok] = 0.0
        for part, joint in ((face, NOSE), (lh, BODY["left_wrist"]), (rh, BODY["right_wrist"])):
            if not t_ok[joint]:
                part[:] = 0.0
    return Person(body=ob, face=face, left_hand=lh, right_hand=rh)


def retarget_people(target: Person, driver: Sequence[Person | None], *,
                    keep_foreshortening: bool = False, limit_to_target: bool = False,
                    threshold: float = 0.05, canvas: tuple[int, int] | None = None,
                    keep_in_frame: bool = True, margin: float = DEFAULT_MARGIN,
                    ) -> tuple[list[Person | None], RetargetReport]:
    """Move the driver's per-frame skeleton onto the target's body (module docstring).

    Args:
        target: the target's keypoints (pixels of the target's canvas).
        driver: per frame the driver's person (pixels of the driver's canvas) or None.
        keep_foreshortening: scale each bone by how foreshortened the driver's bone is.
        limit_to_target: drop joints the target does not show.
        threshold: confidence above which a keypoint counts as present.
        canvas: (width, height) of the target's canvas; with ``keep_in_frame`` the person is
            kept inside it (step 5 of the module docstring). None: no limit.
        margin: free border kept around the person, as a fraction of the shorter side.
    Returns:
        (per frame the retargeted person in pixels of the target's canvas, or None where the
        driver frame has no person; :class:`RetargetReport`).

    Raises:
        ValueError: the target has no neck or fewer than two body keypoints, or no driver frame
            has a neck.
    """
    report = RetargetReport()
    tb = target.body.astype(np.float64)
    t_ok = _ok(tb, threshold)
    if not t_ok[NECK] or t_ok.sum() < 2:
        raise ValueError("the target pose needs its neck and at least one more body keypoint")
    ref_t = next((t for t, p in enumerate(driver)
                  if p is not None and _ok(p.body, threshold)[NECK]), None)
    if ref_t is None:
        raise ValueError("no driver frame shows a neck keypoint: nothing to retarget")
    plan = _plan(tb, t_ok, driver, ref_t, threshold, report)
    carry = _Carry()
    out: list[Person | None] = []
    for t, person in enumerate(driver):
        if person is None or not _ok(person.body, threshold).any():
            out.append(None)
            continue
        out.append(_retarget_frame(person, plan, carry, t == ref_t, t_ok, threshold,
                                   keep_foreshortening, limit_to_target))
    n_empty = sum(p is None for p in out)
    if n_empty:
        report.notes.append(f"{n_empty} driver frame(s) without a person stay empty")
    if keep_in_frame and canvas is not None:
        pivot = (np.array([plan.t_anchor[0], plan.t_ground]) if plan.anchor == "feet"
                 else plan.t_anchor)
        target_box = _extent(target, threshold)
        out = _keep_in_frame(out, canvas, margin, pivot, target_box, threshold, report)
    return out, report


def _extent(person: Person, threshold: float) -> np.ndarray | None:
    """(x0, y0, x1, y1) the person covers: keypoints, the head top, ``PERSON_PAD`` around."""
    pts = person.all_points()
    pts = pts[(pts[:, 2] > threshold) & np.isfinite(pts).all(1), :2].astype(np.float64)
    if len(pts) == 0:
        return None
    b = person.body
    if b[NOSE, 2] > threshold and b[NECK, 2] > threshold:
        head = b[NOSE, :2] - (b[NECK, :2] - b[NOSE, :2])  # the head top, about
        pts = np.vstack([pts, head[None].astype(np.float64)])
    lo, hi = pts.min(0), pts.max(0)
    pad = PERSON_PAD * max(hi[1] - lo[1], hi[0] - lo[0], 1.0)
    return np.concatenate([lo - pad, hi + pad])


def _keep_in_frame(people: list[Person | None], canvas: tuple[int, int], margin: float,
                   pivot: np.ndarray, target_box: np.ndarray | None, threshold: float,
                   report: RetargetReport) -> list[Person | None]:
    """Step 5 of the module docstring: one scale for the sequence, then per-frame shifts."""
    w, h = canvas
    m = margin * min(w, h)
    area = np.array([m, m, w - m, h - m], np.float64)
    boxes = [None if p is None else _extent(p, threshold) for p in people]
    # Sides the target photo itself already crosses (a waist-up crop, a hand cut by the
    # edge) are not limits: moving the whole body to show them would leave the photo's person.
    free = np.ones(4, bool)
    if target_box is not None:
        free[:2] = target_box[:2] >= area[:2]
        free[2:] = target_box[2:] <= area[2:]
    present = [b for b in boxes if b is not None]
    if not present:
        return people
    size = np.max([b[2:] - b[:2] for b in present], axis=0)
    avail = area[2:] - area[:2]
    fit = 1.0
    for axis in (0, 1):
        if free[axis] and free[axis + 2] and size[axis] > avail[axis]:
            fit = min(fit, float(avail[axis] / size[axis]))
    if fit < 1.0:
        people = [None if p is None else p.scaled(fit, fit, pivot[0] * (1 - fit),
                                                  pivot[1] * (1 - fit)) for p in people]
        boxes = [None if b is None else np.concatenate([pivot + fit * (b[:2] - pivot),
                                                        pivot + fit * (b[2:] - pivot)])
                 for b in boxes]
        report.scale *= fit
        report.notes.append(f"scaled down by {fit:.2f} (about the "
                            f"{'feet' if report.anchor == 'feet' else report.anchor}) so the "
                            "largest pose fits inside the photo")
    held, worst = [], 0.0
    out: list[Person | None] = []
    for t, (p, b) in enumerate(zip(people, boxes)):
        if p is None or b is None:
            out.append(p)
            continue
        shift = np.zeros(2)
        for axis in (0, 1):
            lo_over = area[axis] - b[axis] if free[axis] else 0.0
            hi_over = b[axis + 2] - area[axis + 2] if free[axis + 2] else 0.0
            if lo_over > 0 and hi_over > 0:  # wider than the area on this axis: centre it
                shift[axis] = (lo_over - hi_over) / 2
            elif lo_over > 0:
                shift[axis] = lo_over
            elif hi_over > 0:
                shift[axis] = -hi_over
        if np.abs(shift).max() > 0.5:
            held.append(t)
            worst = max(worst, float(np.abs(shift).max()))
            p = p.scaled(1.0, 1.0, float(shift[0]), float(shift[1]))
        out.append(p)
    if held:
        shown = ", ".join(map(str, held[:12])) + (", ..." if len(held) > 12 else "")
        report.notes.append(f"held inside the photo in {len(held)} frame(s) ({shown}), moved "
                            f"by up to {worst:.0f} px")
    if fit < 1.0 or held:
        report.notes.append(f"the whole person stays inside the photo with a {m:.0f} px margin")
    else:
        report.notes.append("the person stays inside the photo: nothing to limit")
    return out


def _rigid(part: np.ndarray, db: np.ndarray, ob: np.ndarray, d_ok: np.ndarray, joint: int,
           s: float, threshold: float) -> np.ndarray:
    """Move a face/hand rigidly with its body joint (offsets scaled by s); missing points stay
    missing. Without the joint, a part cannot be placed and is dropped."""
    part = np.asarray(part, dtype=np.float64)
    out = np.zeros_like(part)
    ok = part[:, 2] > threshold
    if not ok.any() or not d_ok[joint]:
        return out
    out[ok, :2] = ob[joint, :2] + s * (part[ok, :2] - db[joint, :2])
    out[ok, 2] = part[ok, 2]
    return out


def _name(j: int) -> str:
    return next(k for k, v in BODY.items() if v == j)


def retarget_pose_sequence(target_value: Any, driver_value: Any, *, person: str = "largest",
                           index: int = 0, keep_foreshortening: bool = False,
                           limit_to_target: bool = False, keep_in_frame: bool = True,
                           margin: float = DEFAULT_MARGIN,
                           ) -> tuple[list[dict[str, Any]], RetargetReport]:
    """POSE_KEYPOINT in, POSE_KEYPOINT out: see :func:`retarget_people`.

    Args:
        target_value: the target's POSE_KEYPOINT, exactly one frame.
        driver_value: the driver's POSE_KEYPOINT sequence.
        person: ``largest`` or ``index`` (with ``index``), for both target and driver.
        keep_in_frame, margin: keep the whole person inside the target's canvas (see
            :func:`retarget_people`).
    Returns:
        (one POSE_KEYPOINT frame per driver frame on the target's canvas, in the driver's
        convention (normalised or pixels), report).
    Raises:
        ValueError: more than one target frame, no person in the target, see
            :func:`retarget_people`.
    """
    target_seq = parse_sequence(target_value, "target POSE_KEYPOINT")
    if len(target_seq) != 1:
        raise ValueError(f"the target POSE_KEYPOINT has {len(target_seq)} frames; it must be "
                         "one frame (the target photo)")
    tgt = target_seq.select(person, index)[0]
    if tgt is None:
        raise ValueError("no person in the target POSE_KEYPOINT")
    driver_seq = parse_sequence(driver_value, "driver POSE_KEYPOINT")
    people, report = retarget_people(tgt, driver_seq.select(person, index),
                                     keep_foreshortening=keep_foreshortening,
                                     limit_to_target=limit_to_target,
                                     canvas=(target_seq.width, target_seq.height),
                                     keep_in_frame=keep_in_frame, margin=margin)
    if driver_seq.collapsed:
        shown = ", ".join(map(str, driver_seq.collapsed[:12]))
        report.notes.append(f"driver person collapses to a few pixels in "
                            f"{len(driver_seq.collapsed)} frame(s) ({shown}"
                            f"{', ...' if len(driver_seq.collapsed) > 12 else ''}): check "
                            "those frames' coordinates")
    w, h = target_seq.width, target_seq.height
    # The output keeps the driver's convention, which it names in every frame.
    frames = [people_to_frame([p] if p is not None else [], w, h,
                              normalized=driver_seq.normalized) for p in people]
    return frames, report
