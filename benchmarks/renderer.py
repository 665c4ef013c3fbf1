"""Weightless renderer: today's per-part warp against the skinned-mesh renderer, in one run.

    python benchmarks/renderer.py [--clips DIR] [--out docs] [--frames N]

For every driver clip of ``--clips`` (default ``../shared/dev_clips``) x every target (the
astronaut, the clips' photos, frame 0 of each clip) it renders both renderers from the SAME
perception (MediaPipe poses, geometric parsing, Smooth Pose) and measures, per pair:

* tears: frames whose rendered person mask is not one connected component (specks under 0.5 %
  of its area ignored), among frames where the driver's skeleton is whole; and the share of
  points sampled along the retargeted bones that fall inside the mask;
* scale: the share of frames whose person height and area stay within +-10 % of the clip's
  median;
* fringe: the share of pixels within 2 px inside the rendered person's edge whose colour is
  closer to the target's person than to the target's background;
* speed: renderer milliseconds per frame given the prepared target and the poses (P2B + B2F
  warp), both renderers timed in the same run, with the load average.

It also sweeps synthetic people (:mod:`training.synthetic`) through extreme poses (arms over the
head, elbows bent 150 degrees, deep crouch, high kick) and counts tear failures of each
renderer, and writes contact sheets (driver frame beside output frame, 6 frames per pair) to
``<out>/renderer/``. The markdown report goes to ``<out>/renderer.md``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

logger = logging.getLogger("benchmarks.renderer")

HERE = Path(__file__).resolve().parent
DEFAULT_CLIPS = HERE.parent.parent / "shared" / "dev_clips"


# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------


def read_frames(path: Path, limit: int | None = None) -> list[np.ndarray]:
    """The first ``limit`` (default all) frames of a video file or an animated WebP (uint8
    RGB), read by the pack's own reader."""
    from dance_reenact.models.io.video import read_video

    frames = []
    for f in read_video(path):
        frames.append(f)
        if limit is not None and len(frames) >= limit:
            break
    return frames


@dataclass
class Target:
    name: str
    image: np.ndarray
    labels: np.ndarray
    person: object
    background: np.ndarray


@dataclass
class Driver:
    name: str
    frames: list[np.ndarray]
    people: list = field(default_factory=list)


def analyse_target(name: str, rgb: np.ndarray, out_hw: tuple[int, int]) -> Target | None:
    from dance_reenact.pipeline import PipelineConfig, PipelineError, prepare_target

    try:
        st = prepare_target(rgb, PipelineConfig(face="none"), out_hw=out_hw)
    except PipelineError as exc:
        logger.warning("target %s skipped: %s", name, exc)
        return None
    return Target(name, st.image, st.labels, st.person, st.background)


def analyse_driver(name: str, frames: list[np.ndarray]) -> Driver:
    from dance_reenact.pipeline import PipelineConfig, driver_motion, driver_people_from_video

    cfg = PipelineConfig()
    found, h, w = driver_people_from_video(iter(frames), cfg)
    people, _ = driver_motion(found, h, w, 24.0, cfg)  # the graph's fill + Smooth Pose
    return Driver(name, frames, people)


# --------------------------------------------------------------------------------------------
# The two renderers
# --------------------------------------------------------------------------------------------


class OldRenderer:
    """The renderer before the mesh: per-part similarity warp (models/geometry/warp.py and
    b2f_warp.py)."""

    name = "per-part warp (old)"

    def __init__(self, t: Target, people: list, hw: tuple[int, int]) -> None:
        from dance_reenact.models.geometry.b2f_warp import prepare_target

        self.t, self.hw = t, hw
        self.parts = prepare_target(t.labels, t.person)

    def frame(self, i: int, person) -> tuple[np.ndarray, np.ndarray]:
        from dance_reenact.models.geometry.b2f_warp import warp_frame
        from dance_reenact.models.geometry.warp import warp_parsing

        lab = warp_parsing(self.t.labels, self.t.person, person, self.hw,
                           part_map=self.parts.part_map, masks=self.parts.masks)
        wf = warp_frame(self.t.image, self.t.labels, self.t.person, lab, person,
                        prepared=self.parts)
        return wf.image, wf.mask


class MeshRenderer:
    """The skinned-mesh renderer (models/geometry/mesh_warp.py)."""

    name = "skinned mesh (new)"

    def __init__(self, t: Target, people: list, hw: tuple[int, int]) -> None:
        from dance_reenact.models.geometry.mesh_warp import BodyRig, clip_scales

        self.t, self.hw = t, hw
        self.rig = BodyRig.build(t.image, t.labels, t.person)
        self.scales = clip_scales(t.person, people)

    def frame(self, i: int, person) -> tuple[np.ndarray, np.ndarray]:
        from dance_reenact.models.geometry.mesh_warp import warp_frame_mesh

        r = self.rig.render(person, float(self.scales[i]), self.hw)
        wf = warp_frame_mesh(self.rig, r.labels, person, float(self.scales[i]), rendered=r)
        return wf.image, wf.mask


RENDERERS = (OldRenderer, MeshRenderer)


# --------------------------------------------------------------------------------------------
# Measures
# --------------------------------------------------------------------------------------------

WHOLE = ("neck", "right_shoulder", "left_shoulder", "right_elbow", "left_elbow",
         "right_wrist", "left_wrist", "right_hip", "left_hip", "right_knee", "left_knee",
         "right_ankle", "left_ankle")


def skeleton_whole(person, h: int, w: int, target) -> bool:
    """The driver shows every major joint inside the frame, and the target shows them too."""
    from dance_reenact.models.geometry.warp import joints

    jd = joints(person)
    jt = joints(target)
    for k in WHOLE:
        if k not in jd or k not in jt:
            return False
        x, y = jd[k]
        if not (0 <= x < w and 0 <= y < h):
            return False
    return True


def connected(mask: np.ndarray, speck: float = 0.005) -> bool:
    """One connected component, ignoring components under ``speck`` of the mask's area."""
    m = (mask >= 0.5).astype(np.uint8)
    total = int(m.sum())
    if total == 0:
        return False
    n, _, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=8)
    big = [s for s in stats[1:, cv2.CC_STAT_AREA] if s >= speck * total]
    return len(big) == 1


def bone_points_inside(mask: np.ndarray, target, driver, scale: float, n: int = 9) -> float:
    """Share of points along the retargeted bones (the mesh renderer's skeleton at the same
    scale for both renderers) that fall inside the rendered mask (dilated by 1 px)."""
    from dance_reenact.models.geometry.mesh_warp import posed_skeleton

    _, jr = posed_skeleton(target, driver, scale)
    m = cv2.dilate((mask >= 0.5).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    h, w = m.shape
    links = (("neck", "mid_hip"), ("right_shoulder", "right_elbow"),
             ("right_elbow", "right_wrist"), ("left_shoulder", "left_elbow"),
             ("left_elbow", "left_wrist"), ("right_hip", "right_knee"),
             ("right_knee", "right_ankle"), ("left_hip", "left_knee"),
             ("left_knee", "left_ankle"))
    hit = tot = 0
    for a, b in links:
        if a not in jr or b not in jr:
            continue
        for t in np.linspace(0.1, 0.9, n):
            x, y = jr[a] + t * (jr[b] - jr[a])
            xi, yi = int(round(x)), int(round(y))
            if 0 <= xi < w and 0 <= yi < h:
                tot += 1
                hit += bool(m[yi, xi])
    return hit / tot if tot else float("nan")


def person_height_area(mask: np.ndarray) -> tuple[float, float]:
    ys, _ = np.nonzero(mask >= 0.5)
    if len(ys) == 0:
        return 0.0, 0.0
    return float(ys.max() - ys.min() + 1), float((mask >= 0.5).sum())


def within(values: list[float], tol: float = 0.10) -> float:
    v = np.array([x for x in values if x > 0])
    if len(v) == 0:
        return float("nan")
    med = float(np.median(v))
    return float(np.mean(np.abs(v / med - 1.0) <= tol))


def fringe_ok(image: np.ndarray, mask: np.ndarray, t: Target) -> float:
    """Share of pixels within 2 px inside the rendered edge whose colour is nearer the
    target's person colours than its background colours (k-means centres of each)."""
    m = (mask >= 0.5).astype(np.uint8)
    inner = cv2.erode(m, np.ones((5, 5), np.uint8))
    edge = (m > 0) & (inner == 0)
    if not edge.any():
        return float("nan")
    person = t.image[t.labels > 0].reshape(-1, 3).astype(np.float32)
    bg = t.image[t.labels == 0].reshape(-1, 3).astype(np.float32)
    rng = np.random.default_rng(0)

    def centres(x: np.ndarray, k: int = 8) -> np.ndarray:
        if len(x) > 4000:
            x = x[rng.choice(len(x), 4000, replace=False)]
        k = min(k, len(x))
        crit = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 20, 1.0)
        _, _, c = cv2.kmeans(x, k, None, crit, 2, cv2.KMEANS_PP_CENTERS)
        return c

    cp, cb = centres(person), centres(bg)
    px = image[edge].astype(np.float32)
    dp = np.min(np.linalg.norm(px[:, None] - cp[None], axis=2), axis=1)
    db = np.min(np.linalg.norm(px[:, None] - cb[None], axis=2), axis=1)
    return float(np.mean(dp <= db))


# --------------------------------------------------------------------------------------------
# Runs
# --------------------------------------------------------------------------------------------


@dataclass
class PairResult:
    renderer: str
    driver: str
    target: str
    whole_frames: int = 0
    torn: int = 0
    bones_inside: float = float("nan")
    height_ok: float = float("nan")
    area_ok: float = float("nan")
    fringe: float = float("nan")
    ms: float = float("nan")


def composite(image: np.ndarray, mask: np.ndarray, bg: np.ndarray) -> np.ndarray:
    h, w = mask.shape
    if bg.shape[:2] != (h, w):
        from dance_reenact.pipeline import Background

        bg = Background.fit(bg, h, w).numpy() * 255.0  # the blend's cover fit, 0..255
    m = mask[..., None]
    return np.clip(image * m + bg * (1 - m) + 0.5, 0, 255).astype(np.uint8)


def save_sheet(path: Path, driver_frames: list[np.ndarray],
               rows: dict[str, list[np.ndarray]], cell: int = 200) -> None:
    """A contact sheet: the driver frames on top, one row per renderer below."""
    from PIL import Image

    def row(frames: list[np.ndarray]) -> np.ndarray:
        out = []
        for f in frames:
            s = cell / max(f.shape[:2])
            out.append(cv2.resize(f, (round(f.shape[1] * s), round(f.shape[0] * s)),
                                  interpolation=cv2.INTER_AREA))
        return np.concatenate(out, 1)

    lines = [row(driver_frames)] + [row(f) for f in rows.values() if len(f) == len(driver_frames)]
    width = max(r.shape[1] for r in lines)
    lines = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0))) for r in lines]
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate(lines, 0)).save(path, quality=80)


def run_pair(d: Driver, t: Target, sheet_dir: Path | None) -> list[PairResult]:
    from dance_reenact.models.geometry.mesh_warp import clip_scales

    h, w = d.frames[0].shape[:2]
    scales = clip_scales(t.person, d.people)
    results = []
    sheets: dict[str, list[np.ndarray]] = {}
    pick = set(np.linspace(0, len(d.frames) - 1, 6).round().astype(int).tolist())
    for cls in RENDERERS:
        r = cls(t, d.people, (h, w))
        res = PairResult(cls.name, d.name, t.name)
        heights, areas, inside, fringe, spent, timed = [], [], [], [], 0.0, 0
        shots = []
        for i, p in enumerate(d.people):
            if p is None:
                continue
            t0 = time.perf_counter()
            img, mask = r.frame(i, p)
            spent += time.perf_counter() - t0
            timed += 1
            if skeleton_whole(p, h, w, t.person):
                res.whole_frames += 1
                res.torn += not connected(mask)
                inside.append(bone_points_inside(mask, t.person, p, float(scales[i])))
            hh, aa = person_height_area(mask)
            heights.append(hh)
            areas.append(aa)
            if i % 3 == 0:
                fringe.append(fringe_ok(img, mask, t))
            if i in pick:
                shots.append(composite(img, mask, t.background))
        res.bones_inside = float(np.nanmean(inside)) if inside else float("nan")
        res.height_ok, res.area_ok = within(heights), within(areas)
        res.fringe = float(np.nanmean(fringe)) if fringe else float("nan")
        res.ms = 1000 * spent / max(1, timed)
        results.append(res)
        sheets[cls.__name__] = shots
    if sheet_dir is not None:
        save_sheet(sheet_dir / f"{d.name}__{t.name}.jpg", [d.frames[i] for i in sorted(pick)],
                   sheets)
    return results


EXTREMES = {
    "arms over the head": dict(right_upper_arm=-2.9, right_forearm=-3.05, left_upper_arm=2.9,
                               left_forearm=3.05),
    "elbows bent 150 deg": dict(right_upper_arm=-1.3, right_forearm=1.3, left_upper_arm=1.3,
                                left_forearm=-1.3),
    "deep crouch": dict(right_thigh=-1.45, right_shin=0.15, left_thigh=1.45, left_shin=-0.15,
                        cy=0.42),
    "high kick": dict(left_thigh=1.9, left_shin=1.7, right_upper_arm=-1.2),
}


def synthetic_sweep(n_bodies: int = 6, hw: tuple[int, int] = (320, 512)
                    ) -> dict[str, dict[str, int]]:
    """Tear failures (disconnected mask or < 95 % of bone points inside) per extreme pose."""
    from dance_reenact.training import synthetic as S

    rng = np.random.default_rng(7)
    out: dict[str, dict[str, int]] = {cls.name: {} for cls in RENDERERS}
    for name, kw in EXTREMES.items():
        for cls in RENDERERS:
            out[cls.name][name] = 0
        for b in range(n_bodies):
            body = S.random_body(rng)
            src = S.render(body, S.SyntheticPose(), *hw, seed=b)
            drv = S.render(body, S.SyntheticPose(**kw), *hw, seed=b)
            t = Target("synthetic", src.image, src.labels, src.person, src.image)
            for cls in RENDERERS:
                r = cls(t, [drv.person], hw)
                _, mask = r.frame(0, drv.person)
                bad = (not connected(mask)) or \
                    bone_points_inside(mask, src.person, drv.person, 1.0) < 0.95
                out[cls.name][name] += int(bad)
    return out


def reconstruction(d: Driver, t: Target) -> dict[str, dict[str, float]]:
    """The paper's reconstruction protocol on one clip: target = its frame 0, driver = the
    clip, ground truth = the clip. Masked PSNR and SSIM over the ground truth's person mask,
    SSBS/SSIS between the geometric parsing of each output and of the ground truth (the same
    parser for every row); the still baseline repeats the target photo."""
    import torch

    from dance_reenact.models.metrics import scores as M
    from dance_reenact.models.perception.human_parsing import HumanParser
    from dance_reenact.models.perception.pose import PoseEstimator

    h, w = d.frames[0].shape[:2]
    parser = HumanParser("geometric")
    est = PoseEstimator("mediapipe")

    def parse(rgb: np.ndarray) -> np.ndarray:
        found = est(rgb)
        lab = parser.parse_frame(rgb, detections=found) if found else None
        return lab if lab is not None else np.zeros((h, w), np.uint8)

    still = t.image if t.image.shape[:2] == (h, w) else cv2.resize(t.image, (w, h))
    makers = {"still photo (baseline)": None}
    for cls in RENDERERS:
        makers[cls.name] = cls(t, d.people, (h, w))
    out: dict[str, dict[str, float]] = {}
    try:
        gts = [(f, parse(f)) for f in d.frames[1:]]
        for name, r in makers.items():
            psnr, ssim, ssbs, ssis = [], [], [], []
            for i, (gt, gt_lab) in enumerate(gts, start=1):
                p = d.people[i]
                if not (gt_lab > 0).any():
                    continue
                if r is None or p is None:
                    pred = still if r is None else t.background
                else:
                    img, mask = r.frame(i, p)
                    pred = composite(img, mask, t.background)
                m = torch.from_numpy((gt_lab > 0).astype(np.float32))[None]
                a = torch.from_numpy(pred).permute(2, 0, 1)[None].float() / 255
                b = torch.from_numpy(gt).permute(2, 0, 1)[None].float() / 255
                psnr.append(float(M.masked_psnr(a, b, mask=m)[0]))
                try:
                    ssim.append(float(M.ssim(a, b, mask=m)[0]))
                except ValueError:
                    pass
                bs, is_ = M.parsing_similarity(parse(pred)[None], gt_lab[None])
                ssbs.append(float(bs[0]))
                ssis.append(float(is_[0]))
            out[name] = {"psnr": float(np.mean(psnr)), "ssim": float(np.mean(ssim)),
                         "ssbs": float(np.mean(ssbs)), "ssis": float(np.mean(ssis)),
                         "frames": len(psnr)}
    finally:
        est.close()
    return out


def synthetic_speed(frames: int = 40, hw: tuple[int, int] = (320, 512)) -> dict[str, float]:
    """Milliseconds per frame of each renderer (P2B + B2F warp) at 512x320, given the
    prepared target and the poses, on the same synthetic frames in the same run."""
    from dance_reenact.training import synthetic as S

    rng = np.random.default_rng(5)
    body = S.random_body(rng)
    src = S.render(body, S.SyntheticPose(), *hw, seed=1)
    people = [S.render(body, S.random_pose(rng, body), *hw, seed=1).person
              for _ in range(frames)]
    t = Target("synthetic", src.image, src.labels, src.person, src.image)
    out = {}
    for cls in RENDERERS:
        r = cls(t, people, hw)
        r.frame(0, people[0])  # warm-up
        t0 = time.perf_counter()
        for i, p in enumerate(people):
            r.frame(i, p)
        out[cls.name] = 1000 * (time.perf_counter() - t0) / frames
    return out


def end_to_end(d: Driver, target: np.ndarray, tmp: Path) -> tuple[float, int]:
    """Frames per second of the whole ``reenact`` pipeline (decode, MediaPipe on every driver
    frame, target analysis, rendering, blend, face paste, MP4 encode) on one clip."""
    from dance_reenact.models.io.video import read_video, write_mp4
    from dance_reenact.pipeline import reenact, write_outputs

    src = tmp / f"{d.name}.mp4"
    write_mp4(iter(d.frames), src, 24.0)
    t0 = time.perf_counter()
    frames, info = reenact(target, driver_frames=lambda: read_video(src), fps=24.0)
    _, _, n = write_outputs(frames, info, tmp / f"{d.name}_out")
    return n / (time.perf_counter() - t0), n


def fmt(x: float, pct: bool = True) -> str:
    if x != x:  # nan
        return "–"
    return f"{100 * x:.0f} %" if pct else f"{x:.1f}"


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clips", type=Path, default=DEFAULT_CLIPS)
    ap.add_argument("--out", type=Path, default=HERE.parent / "docs")
    ap.add_argument("--frames", type=int, default=None, help="at most N frames per clip")
    ap.add_argument("--no-sheets", action="store_true")
    ap.add_argument("--bodies", type=int, default=6, help="synthetic bodies per extreme pose")
    return ap


def load_drivers(clips: list[Path], limit: int | None) -> list[Driver]:
    """Each clip's frames (at most ``limit``) and smoothed MediaPipe poses."""
    drivers = []
    for c in clips:
        frames = read_frames(c, limit)
        drivers.append(analyse_driver(c.stem, frames))
        logger.info("driver %s: %d frames, %d with a person", c.stem, len(frames),
                    sum(p is not None for p in drivers[-1].people))
    return drivers


def load_targets(clips_dir: Path, drivers: list[Driver], astronaut: np.ndarray) -> list[Target]:
    """The targets at the drivers' frame size: the astronaut, the clips' ``*_photo.png`` and
    frame 0 of each clip; those without a usable person are left out."""
    hw = drivers[0].frames[0].shape[:2]
    target_images = {"astronaut": astronaut}
    for p in sorted(clips_dir.glob("*_photo.png")):
        target_images[p.stem] = np.asarray(__import__("PIL.Image").Image.open(p).convert("RGB"))
    for d in drivers:
        target_images[f"{d.name}_frame0"] = d.frames[0]
    return [t for t in (analyse_target(k, v, hw) for k, v in target_images.items()) if t]


@dataclass
class Measurements:
    """Everything the report shows: per pair and renderer (``rows``), the reconstruction
    protocol per clip and method, the synthetic sweep's failures per renderer and pose, the
    renderers' ms/frame, and per clip the end-to-end (frames/s, frames)."""

    rows: list[PairResult]
    recon: dict[str, dict[str, dict[str, float]]]
    sweep: dict[str, dict[str, int]]
    speed: dict[str, float]
    e2e: dict[str, tuple[float, int]]


def measure(drivers: list[Driver], targets: list[Target], sheet_dir: Path | None,
            bodies: int) -> Measurements:
    """Run both renderers on every driver x target pair, the reconstruction protocol on each
    clip's own frame 0, the synthetic sweep and speed, and the whole pipeline per clip."""
    import tempfile

    rows: list[PairResult] = []
    for d in drivers:
        for t in targets:
            rows += run_pair(d, t, sheet_dir)
            logger.info("%s x %s done", d.name, t.name)
    recon = {}
    for d in drivers:
        t0 = next((t for t in targets if t.name == f"{d.name}_frame0"), None)
        if t0 is not None:
            recon[d.name] = reconstruction(d, t0)
            logger.info("reconstruction %s done", d.name)
    sweep = synthetic_sweep(bodies)
    speed = synthetic_speed()
    e2e = {}
    with tempfile.TemporaryDirectory() as tmp:
        photo = next((t.image for t in targets if t.name == "fashion_photo"), targets[0].image)
        for d in drivers:
            e2e[d.name] = end_to_end(d, photo, Path(tmp))
    return Measurements(rows, recon, sweep, speed, e2e)


def _pair_table(rows: list[PairResult]) -> list[str]:
    lines = [
        "| driver | target | renderer | whole | torn | bones in | height ±10 % | area ±10 % "
        "| fringe | ms/frame |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r.driver} | {r.target} | {r.renderer} | {r.whole_frames} | {r.torn} "
                     f"| {fmt(r.bones_inside)} | {fmt(r.height_ok)} | {fmt(r.area_ok)} "
                     f"| {fmt(r.fringe)} | {r.ms:.1f} |")
    return lines


def _totals_table(rows: list[PairResult]) -> list[str]:
    lines = ["", "Totals over all pairs:", "",
             "| renderer | torn / whole frames | bones in | height ±10 % | area ±10 % | fringe "
             "| ms/frame (median) |", "|---|---|---|---|---|---|---|"]
    for cls in RENDERERS:
        rs = [r for r in rows if r.renderer == cls.name]
        lines.append(
            f"| {cls.name} | {sum(r.torn for r in rs)} / {sum(r.whole_frames for r in rs)} "
            f"| {fmt(np.nanmean([r.bones_inside for r in rs]))} "
            f"| {fmt(np.nanmean([r.height_ok for r in rs]))} "
            f"| {fmt(np.nanmean([r.area_ok for r in rs]))} "
            f"| {fmt(np.nanmean([r.fringe for r in rs]))} "
            f"| {np.median([r.ms for r in rs]):.1f} |")
    return lines


def _sweep_table(sweep: dict[str, dict[str, int]], bodies: int) -> list[str]:
    lines = ["", f"Synthetic extreme poses ({bodies} random bodies each, 512x320): "
             "failures = mask in several pieces or < 95 % of bone points inside.", "",
             "| pose | " + " | ".join(c.name for c in RENDERERS) + " |",
             "|---|" + "---|" * len(RENDERERS)]
    for pose in EXTREMES:
        lines.append(f"| {pose} | " + " | ".join(f"{sweep[c.name][pose]} / {bodies}"
                                                   for c in RENDERERS) + " |")
    return lines


def _speed_tables(speed: dict[str, float], e2e: dict[str, tuple[float, int]]) -> list[str]:
    base = speed[RENDERERS[0].name]
    lines = ["", "Renderer speed at 512x320 (synthetic people, 40 frames, P2B + B2F warp given "
             "the prepared target and the poses, both in this run):", "",
             "| renderer | ms/frame | frames/s | time vs the old warp |", "|---|---|---|---|"]
    for name, ms in speed.items():
        lines.append(f"| {name} | {ms:.1f} | {1000 / ms:.1f} | {ms / base:.2f}x |")
    lines += ["", "End to end (`reenact`: decode, MediaPipe on every driver frame, target "
              "analysis, mesh renderer, blend, face paste, MP4 encode; target "
              "`fashion_photo`):", "", "| clip | frames | frames/s |", "|---|---|---|"]
    for clip, (fps, n) in e2e.items():
        lines.append(f"| {clip} | {n} | {fps:.1f} |")
    return lines


def _recon_table(recon: dict[str, dict[str, dict[str, float]]]) -> list[str]:
    lines = ["", "The paper's reconstruction protocol (target = frame 0 of the clip, driver = the "
             "clip, ground truth = the clip; masked PSNR/SSIM over the ground truth's person, "
             "SSBS/SSIS between geometric parsings of output and ground truth):", "",
             "| clip | method | frames | masked PSNR | masked SSIM | SSBS | SSIS |",
             "|---|---|---|---|---|---|---|"]
    for clip, rows_ in recon.items():
        for name, v in rows_.items():
            lines.append(f"| {clip} | {name} | {v['frames']} | {v['psnr']:.2f} | "
                         f"{v['ssim']:.3f} | {v['ssbs']:.3f} | {v['ssis']:.3f} |")
    return lines


def report(m: Measurements, n_drivers: int, n_targets: int, clips_dir: Path, bodies: int,
           load: float) -> list[str]:
    """The markdown lines of docs/renderer_benchmark.md."""
    head = [
        "# Weightless renderer: per-part warp (old) vs skinned mesh (new)",
        "",
        "Generated by `python benchmarks/renderer.py` (both renderers in the same run, the same",
        f"perception for both; {n_drivers} driver clips x {n_targets} targets from "
        f"`{clips_dir.name}/`; load average {load:.2f} at the end, {os.cpu_count()} CPUs;",
        "the numbers move with the machine's load: rerun the command to compare).",
        "Columns: frames whose skeleton is whole (driver and target); torn = of those, frames",
        "whose person mask is not one connected piece (specks < 0.5 % ignored); bones in =",
        "share of points along the retargeted bones inside the mask; height/area ±10 % =",
        "share of frames within 10 % of the clip median; fringe = edge pixels closer to the",
        "target's person colours than to its background; ms = P2B+B2F warp per frame, given",
        "the prepared target and the poses.",
        "",
    ]
    return (head + _pair_table(m.rows) + _totals_table(m.rows) + _sweep_table(m.sweep, bodies)
            + _speed_tables(m.speed, m.e2e) + _recon_table(m.recon))


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from skimage import data as skdata

    clips = sorted(p for p in args.clips.glob("*.webp")) if args.clips.is_dir() else []
    if not clips:
        logger.error("no clips in %s", args.clips)
        return 2
    drivers = load_drivers(clips, args.frames)
    targets = load_targets(args.clips, drivers, skdata.astronaut())
    m = measure(drivers, targets, None if args.no_sheets else args.out / "renderer",
                args.bodies)
    lines = report(m, len(drivers), len(targets), args.clips, args.bodies, os.getloadavg()[0])
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "renderer_benchmark.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
