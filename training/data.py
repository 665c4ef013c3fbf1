"""P2B training data: synthetic pairs and a VIP-layout reader.

Every example is registered exactly as inference registers it (:mod:`..models.p2b`): the
source parsing p* cropped around its person mask, the driver's stick figure and DensePose
cropped around the driver (keypoints + DensePose extent), the ground truth with the driver's
box, all at the working resolution. An example is a dict of tensors::

    source (H, W) int64   p*, the same person in another frame
    stick  (3, H, W) float the driver's stick figure, 0..1
    iuv    (3, H, W) float the driver's DensePose I/24, U, V
    target (H, W) int64   the parsing to predict (the driver frame's own parsing)

VIP layout read by :class:`VIPPairs` (VIP / VIP_Fine as distributed, and anything shaped
like it)::

    <root>/Images/<video>/<frame>.jpg            RGB frames (any of .jpg/.png)
    <root>/Category_ids/<video>/<frame>.png      per-frame parsing, the 20 CIHP/VIP labels
        (also found under <root>/Annotations/Category_ids/)
    <root>/Human_ids/<video>/<frame>.png         optional: person instance ids; when present
        the person with the largest area in the video's first annotated frame is used
    <root>/lists/<split>_videos.txt              optional: one video name per line
    <root>/prepared/<video>/<frame>.json         POSE_KEYPOINT frame (``reenact prepare``)
    <root>/prepared/<video>/<frame>.dp.npz       DensePose arrays i (uint8), u, v (float16)

Pairs are two annotated frames of the same video at most ``max_gap`` frames apart (the paper
uses 250): the first gives p*, the second the driver's pose, DensePose and the target.
Labels 20/21 (hands) are drawn onto both parsings from the frames' hand keypoints.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ..models.core.schema import NUM_LABELS, Person, frame_to_people, select_person
from ..models.geometry.warp import paint_hands
from ..models.networks.p2b import DriverFrame, crop_labels, driver_inputs, labels_box
from . import synthetic as syn
from .augment import ParsingAugment, PoseAugment

logger = logging.getLogger(__name__)

__all__ = ["make_example", "SyntheticPairs", "VIPPairs", "synthetic_eval_pairs"]


def make_example(source_labels: np.ndarray, driver: DriverFrame, target_labels: np.ndarray,
                 work_hw: tuple[int, int], *, rng: np.random.Generator | None = None,
                 pose_aug: PoseAugment | None = None, parsing_aug: ParsingAugment | None = None,
                 margin: float = 0.1) -> dict[str, torch.Tensor]:
    """Register one (p*, driver frame, ground truth) triple at the working resolution."""
    if not (source_labels > 0).any():
        raise ValueError("the source parsing is empty")
    src = crop_labels(source_labels, labels_box(source_labels, work_hw, margin), work_hw)
    box = driver.box(work_hw, margin)
    tgt = crop_labels(target_labels, box, work_hw)
    if rng is not None and pose_aug is not None and driver.person is not None:
        driver = DriverFrame(driver.height, driver.width, pose_aug(driver.person, rng),
                             driver.stick, driver.index, driver.u, driver.v)
    stick, iuv = driver_inputs(driver, box, work_hw)
    if rng is not None and parsing_aug is not None:
        src, tgt = parsing_aug(src, tgt, rng)
    return {"source": torch.from_numpy(src.astype(np.int64)),
            "stick": torch.from_numpy(stick), "iuv": torch.from_numpy(iuv),
            "target": torch.from_numpy(tgt.astype(np.int64))}


def _driver_from_sample(s: syn.SyntheticSample) -> DriverFrame:
    h, w = s.labels.shape
    return DriverFrame(h, w, s.person, None, s.densepose_i, s.densepose_u, s.densepose_v)


@dataclass
class SyntheticPairs(Dataset):
    """``length`` synthetic pairs (one body, two poses), example i fully determined by
    (seed, i). Rendered at ``render_hw`` and registered to ``work_hw``; ``upper`` is the share
    of waist-up framings."""

    length: int
    work_hw: tuple[int, int] = (64, 40)
    render_hw: tuple[int, int] = (128, 80)
    seed: int = 0
    upper: float = 0.2
    pose_aug: PoseAugment | None = None
    parsing_aug: ParsingAugment | None = None
    cache: bool = False  # keep made examples (they are deterministic per index) in memory
    _cache: dict = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return self.length

    def pair(self, i: int) -> tuple[syn.SyntheticSample, syn.SyntheticSample]:
        rng = np.random.default_rng([self.seed, i])
        kind = "upper" if rng.random() < self.upper else "full"
        _, a, b = syn.random_pair(rng, *self.render_hw, kind=kind)
        return a, b

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        if not 0 <= i < self.length:
            raise IndexError(i)
        if i in self._cache:
            return self._cache[i]
        a, b = self.pair(i)
        rng = np.random.default_rng([self.seed, i, 1])
        ex = make_example(a.labels, _driver_from_sample(b), b.labels, self.work_hw, rng=rng,
                          pose_aug=self.pose_aug, parsing_aug=self.parsing_aug)
        if self.cache:
            self._cache[i] = ex
        return ex


def synthetic_eval_pairs(n: int, render_hw: tuple[int, int] = (128, 80), seed: int = 10_000,
                         upper: float = 0.2
                         ) -> list[tuple[np.ndarray, DriverFrame, np.ndarray]]:
    """Held-out (p* labels, driver frame, ground-truth labels) triples in frame pixels."""
    ds = SyntheticPairs(n, render_hw=render_hw, seed=seed, upper=upper)
    out = []
    for i in range(n):
        a, b = ds.pair(i)
        out.append((a.labels, _driver_from_sample(b), b.labels))
    return out


# --------------------------------------------------------------------------------------------
# VIP layout
# --------------------------------------------------------------------------------------------

_IMAGE_EXTS = (".jpg", ".jpeg", ".png")


def _find_dir(root: Path, name: str) -> Path | None:
    for cand in (root / name, root / "Annotations" / name):
        if cand.is_dir():
            return cand
    return None


def load_prepared(prepared: Path, video: str, stem: str
                  ) -> tuple[Person | None, np.ndarray, np.ndarray, np.ndarray]:
    """The keypoints (largest person) and DensePose arrays ``reenact prepare`` wrote."""
    js = prepared / video / f"{stem}.json"
    dp = prepared / video / f"{stem}.dp.npz"
    if not js.is_file() or not dp.is_file():
        raise FileNotFoundError(f"{js} or {dp} is missing: run `reenact prepare` on the "
                                "dataset first (or copy keypoint/DensePose files there)")
    frame = json.loads(js.read_text())
    if isinstance(frame, list):
        frame = frame[0]
    person = select_person(frame_to_people(frame))
    with np.load(dp) as z:
        return person, z["i"].astype(np.uint8), z["u"].astype(np.float32), \
            z["v"].astype(np.float32)


class VIPPairs(Dataset):
    """Pairs of annotated frames of one person from a VIP-layout folder (see module doc)."""

    def __init__(self, root: str | Path, *, split: str | None = None, max_gap: int = 250,
                 work_hw: tuple[int, int] = (512, 320), length: int | None = None,
                 seed: int = 0, pose_aug: PoseAugment | None = None,
                 parsing_aug: ParsingAugment | None = None) -> None:
        from PIL import Image  # noqa: F401  (fail early if Pillow is missing)

        self.root = Path(root)
        cat = _find_dir(self.root, "Category_ids")
        if cat is None:
            raise FileNotFoundError(f"{self.root} has no Category_ids/ (or "
                                    "Annotations/Category_ids/) folder: not a VIP layout")
        self.cat_dir = cat
        self.human_dir = _find_dir(self.root, "Human_ids")
        self.prepared = self.root / "prepared"
        videos = sorted(p.name for p in cat.iterdir() if p.is_dir())
        if split:
            lst = self.root / "lists" / f"{split}_videos.txt"
            if lst.is_file():
                wanted = {ln.strip() for ln in lst.read_text().splitlines() if ln.strip()}
                videos = [v for v in videos if v in wanted]
        self.frames: dict[str, list[str]] = {}
        for v in videos:
            stems = sorted(p.stem for p in (cat / v).glob("*.png"))
            if len(stems) >= 2:
                self.frames[v] = stems
        if not self.frames:
            raise FileNotFoundError(f"{self.root}: no video has two or more annotated frames")
        self.videos = list(self.frames)
        self.max_gap, self.work_hw, self.seed = max_gap, work_hw, seed
        self.pose_aug, self.parsing_aug = pose_aug, parsing_aug
        self.length = length or sum(len(s) for s in self.frames.values())
        self._person_id: dict[str, int | None] = {}

    def __len__(self) -> int:
        return self.length

    def _labels(self, video: str, stem: str) -> np.ndarray:
        from PIL import Image

        lab = np.array(Image.open(self.cat_dir / video / f"{stem}.png"))
        if lab.ndim == 3:
            lab = lab[..., 0]
        lab = lab.astype(np.uint8)
        lab[lab >= 20] = 0  # VIP has 20 labels; 255 marks "ignore"
        if self.human_dir is not None:
            hid = self._person(video)
            hp = self.human_dir / video / f"{stem}.png"
            if hid is not None and hp.is_file():
                ids = np.array(Image.open(hp))
                if ids.ndim == 3:
                    ids = ids[..., 0]
                lab[ids != hid] = 0
        return lab

    def _person(self, video: str) -> int | None:
        if video not in self._person_id:
            from PIL import Image

            hp = self.human_dir / video / f"{self.frames[video][0]}.png"  # type: ignore[operator]
            pid = None
            if hp.is_file():
                ids = np.array(Image.open(hp))
                if ids.ndim == 3:
                    ids = ids[..., 0]
                vals, counts = np.unique(ids[ids > 0], return_counts=True)
                pid = int(vals[np.argmax(counts)]) if len(vals) else None
            self._person_id[video] = pid
        return self._person_id[video]

    def pair_names(self, i: int) -> tuple[str, str, str]:
        rng = np.random.default_rng([self.seed, i])
        video = self.videos[int(rng.integers(len(self.videos)))]
        stems = self.frames[video]
        a = int(rng.integers(len(stems)))
        nums = [_frame_number(s, k) for k, s in enumerate(stems)]
        ok = [k for k in range(len(stems)) if k != a and abs(nums[k] - nums[a]) <= self.max_gap]
        b = int(rng.choice(ok)) if ok else (a + 1) % len(stems)
        return video, stems[a], stems[b]

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        video, sa, sb = self.pair_names(i)
        pa, _, _, _ = load_prepared(self.prepared, video, sa)
        pb, di, du, dv = load_prepared(self.prepared, video, sb)
        la, lb = self._labels(video, sa), self._labels(video, sb)
        if pa is not None:
            paint_hands(la, pa)
        if pb is not None:
            paint_hands(lb, pb)
        if la.max() >= NUM_LABELS or lb.max() >= NUM_LABELS:  # pragma: no cover - guarded above
            raise ValueError("labels outside the schema")
        h, w = lb.shape
        driver = DriverFrame(h, w, pb, None, di, du, dv)
        rng = np.random.default_rng([self.seed, i, 1])
        return make_example(la, driver, lb, self.work_hw, rng=rng, pose_aug=self.pose_aug,
                            parsing_aug=self.parsing_aug)


def _frame_number(stem: str, default: int) -> int:
    digits = "".join(ch for ch in stem if ch.isdigit())
    return int(digits[-9:]) if digits else default
