"""B2F training data: synthetic people, the CIHP and MHPv2 layouts, and the pre-inpainting step.

Every sample is a dict of numpy arrays at the training size (H, W):

* ``target_image`` uint8 (H, W, 3), ``target_labels`` uint8 (H, W): the appearance source
  (PartCropper + AppearanceEncoder give ``e_z``);
* ``image`` uint8 (H, W, 3): the frame to reproduce, ``labels`` uint8 (H, W) its parsing
  (the body map), ``face`` float32 (70, 3) its face landmarks (zeros if unknown);
* ``background`` uint8 (H, W, 3): ``image`` with the person inpainted away (paper §3.2
  "blending mask": so the mask has a background to learn against).

Dataset layouts (as distributed):

CIHP (``--layout cihp``, root = ``instance-level_human_parsing/Training``)::

    Images/<id>.jpg            the photo
    Category_ids/<id>.png      semantic labels 0..19 (the same ids as our schema 0..19)
    Human_ids/<id>.png         person instance per pixel (0 = background, 1..N)

MHPv2 (``--layout mhpv2``, root = ``LV-MHP-v2/train``)::

    images/<id>.jpg
    parsing_annos/<id>_<NN>_<KK>.png   one map per person (NN people, KK = 01..NN),
                                       58 categories + background (:data:`MHP_TO_SCHEMA`)

One sample per annotated person: the person is cropped with :func:`models.crop.person_box`
(aspect H:W), resized, and both the target and the frame come from that crop with independent
augmentation (horizontal flip with left/right labels swapped, scale jitter): single images have
no second pose. Pre-inpainted backgrounds are cached in ``<root>/inpainted/<id>.png`` by
``reenact train b2f --prepare`` (or made on the fly and cached on first use).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from torch.utils.data import Dataset

from ..models.core.schema import LABEL, NUM_FACE
from ..models.geometry.crop import crop_to_box, person_box
from ..models.networks.p2b import crop_labels

logger = logging.getLogger(__name__)

# MHPv2's 59 labels (LV-MHP-v2 README order) onto our 22; accessories that are not part of
# the body (bags, balls, umbrellas, ...) become background, but they still count as "person"
# for the inpainting mask (they must not be left as ghosts in the background).
_MHP_NAMES = (
    "background", "cap/hat", "helmet", "face", "hair", "left-arm", "right-arm", "left-hand",
    "right-hand", "protector", "bikini/bra", "jacket/windbreaker/hoodie", "t-shirt",
    "polo-shirt", "sweater", "singlet", "torso-skin", "pants", "shorts/swim-shorts", "skirt",
    "stockings", "socks", "left-boot", "right-boot", "left-shoe", "right-shoe",
    "left-highheel", "right-highheel", "left-sandal", "right-sandal", "left-leg", "right-leg",
    "left-foot", "right-foot", "coat", "dress", "robe", "jumpsuits", "other-full-body-clothes",
    "headwear", "backpack", "ball", "bats", "belt", "bottle", "carrybag", "cases",
    "sunglasses", "eyewear", "gloves", "scarf", "umbrella", "wallet/purse", "watch",
    "wristband", "tie", "other-accessories", "other-upper-body-clothes",
    "other-lower-body-clothes",
)
_L = LABEL
_MHP_MAP = {
    "cap/hat": _L["hat"], "helmet": _L["hat"], "headwear": _L["hat"], "face": _L["face"],
    "hair": _L["hair"], "left-arm": _L["left_arm"], "right-arm": _L["right_arm"],
    "left-hand": _L["left_hand"], "right-hand": _L["right_hand"],
    "protector": _L["upper_clothes"], "bikini/bra": _L["upper_clothes"],
    "jacket/windbreaker/hoodie": _L["coat"], "t-shirt": _L["upper_clothes"],
    "polo-shirt": _L["upper_clothes"], "sweater": _L["upper_clothes"],
    "singlet": _L["upper_clothes"], "torso-skin": _L["torso_skin"], "pants": _L["pants"],
    "shorts/swim-shorts": _L["pants"], "skirt": _L["skirt"], "stockings": _L["socks"],
    "socks": _L["socks"], "left-boot": _L["left_shoe"], "right-boot": _L["right_shoe"],
    "left-shoe": _L["left_shoe"], "right-shoe": _L["right_shoe"],
    "left-highheel": _L["left_shoe"], "right-highheel": _L["right_shoe"],
    "left-sandal": _L["left_shoe"], "right-sandal": _L["right_shoe"],
    "left-leg": _L["left_leg"], "right-leg": _L["right_leg"], "left-foot": _L["left_leg"],
    "right-foot": _L["right_leg"], "coat": _L["coat"], "dress": _L["dress"],
    "robe": _L["dress"], "jumpsuits": _L["dress"], "other-full-body-clothes": _L["dress"],
    "belt": _L["pants"], "sunglasses": _L["sunglasses"], "eyewear": _L["sunglasses"],
    "gloves": _L["glove"], "scarf": _L["scarf"], "tie": _L["upper_clothes"],
    "other-upper-body-clothes": _L["upper_clothes"],
    "other-lower-body-clothes": _L["pants"],
}
MHP_TO_SCHEMA: np.ndarray = np.array([_MHP_MAP.get(n, 0) for n in _MHP_NAMES], np.uint8)

# Left/right label pairs swapped by a horizontal flip.
FLIP_LABELS: np.ndarray = np.arange(256, dtype=np.uint8)
for _a, _b in (("left_arm", "right_arm"), ("left_leg", "right_leg"),
               ("left_shoe", "right_shoe"), ("left_hand", "right_hand")):
    FLIP_LABELS[_L[_a]], FLIP_LABELS[_L[_b]] = _L[_b], _L[_a]


def inpaint_person(image: np.ndarray, person: np.ndarray, dilate: int = 7,
                   radius: int = 5) -> np.ndarray:
    """The paper's pre-inpainting: remove the (dilated) person region with cv2.inpaint
    (Telea). image uint8 (H, W, 3), person bool (H, W) -> uint8 (H, W, 3)."""
    m = person.astype(np.uint8)
    if dilate > 0:
        m = cv2.dilate(m, cv2.getStructuringElement(cv2.MORPH_ELLIPSE,
                                                    (2 * dilate + 1, 2 * dilate + 1)))
    return cv2.inpaint(np.ascontiguousarray(image), m * 255, radius, cv2.INPAINT_TELEA)


def _read_rgb(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise FileNotFoundError(f"cannot read image {path}")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def _read_gray(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise FileNotFoundError(f"cannot read label map {path}")
    return img if img.ndim == 2 else img[..., 0]


class PersonCropDataset(Dataset):
    """Shared logic of the CIHP / MHPv2 readers: one item per (image, person)."""

    def __init__(self, root: str | Path, height: int, width: int, *, augment: bool = True,
                 min_pixels: int = 2000, seed: int = 0) -> None:
        self.root = Path(root)
        self.height, self.width = height, width
        self.augment = augment
        self.min_pixels = min_pixels
        self.seed = seed
        self.items: list[tuple[str, int]] = self._index()
        if not self.items:
            raise FileNotFoundError(f"no annotated people found under {self.root} "
                                    f"({type(self).__name__} layout; see training/b2f_data.py)")

    # -- to implement per layout --
    def _index(self) -> list[tuple[str, int]]:
        raise NotImplementedError

    def _load(self, item: tuple[str, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(image uint8 RGB, schema labels of THIS person (others 0), raw person mask)."""
        raise NotImplementedError

    def __len__(self) -> int:
        return len(self.items)

    def inpainted_path(self, item: tuple[str, int]) -> Path:
        return self.root / "inpainted" / f"{item[0]}.png"  # everyone removed: one per photo

    def background(self, item: tuple[str, int], image: np.ndarray,
                   all_people: np.ndarray) -> np.ndarray:
        """The cached inpainted photo (everyone removed), made on first use."""
        p = self.inpainted_path(item)
        if p.is_file():
            bg = _read_rgb(p)
            if bg.shape == image.shape:
                return bg
        bg = inpaint_person(image, all_people)
        p.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(p), cv2.cvtColor(bg, cv2.COLOR_RGB2BGR))
        return bg

    def _view(self, image: np.ndarray, labels: np.ndarray, bg: np.ndarray,
              rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        h, w = self.height, self.width
        box = person_box(labels.shape, mask=labels > 0, out_hw=(h, w),
                         margin=float(rng.uniform(0.05, 0.2)) if self.augment else 0.1)
        lab = crop_labels(labels, box, (h, w))
        img = crop_to_box(image, box, (h, w))
        bgc = crop_to_box(bg, box, (h, w))
        if self.augment and rng.random() < 0.5:
            img, bgc = img[:, ::-1].copy(), bgc[:, ::-1].copy()
            lab = FLIP_LABELS[lab[:, ::-1]].copy()
        return img, lab, bgc

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = self.items[index]
        image, labels, everyone = self._load(item)
        bg = self.background(item, image, everyone)
        rng = np.random.default_rng((self.seed, index, np.random.randint(1 << 30)))
        t_img, t_lab, _ = self._view(image, labels, bg, rng)
        img, lab, bgc = self._view(image, labels, bg, rng)
        bgc = np.where(lab[..., None] > 0, bgc, img)  # outside this person: the photo itself
        return {"target_image": t_img, "target_labels": t_lab, "image": img, "labels": lab,
                "face": np.zeros((NUM_FACE, 3), np.float32), "background": bgc}


class CIHPDataset(PersonCropDataset):
    """CIHP instance-level human parsing (see the module docstring for the layout)."""

    def _index(self) -> list[tuple[str, int]]:
        items = []
        for p in sorted((self.root / "Human_ids").glob("*.png")):
            ids = _read_gray(p)
            for k in np.unique(ids):
                if k and int((ids == k).sum()) >= self.min_pixels:
                    items.append((p.stem, int(k)))
        return items

    def _load(self, item: tuple[str, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        stem, k = item
        image = _read_rgb(self.root / "Images" / f"{stem}.jpg")
        cats = _read_gray(self.root / "Category_ids" / f"{stem}.png").astype(np.uint8)
        ids = _read_gray(self.root / "Human_ids" / f"{stem}.png")
        cats = np.where(cats < 20, cats, 0).astype(np.uint8)
        return image, np.where(ids == k, cats, 0).astype(np.uint8), ids > 0


_MHP_RE = re.compile(r"^(?P<id>.+)_(?P<n>\d+)_(?P<k>\d+)$")


class MHPv2Dataset(PersonCropDataset):
    """LV-MHP-v2 (see the module docstring for the layout)."""

    def _index(self) -> list[tuple[str, int]]:
        items = []
        for p in sorted((self.root / "parsing_annos").glob("*.png")):
            m = _MHP_RE.match(p.stem)
            if m is None:
                continue
            ann = _read_gray(p)
            if int((MHP_TO_SCHEMA[np.clip(ann, 0, 58)] > 0).sum()) >= self.min_pixels:
                items.append((m["id"], int(m["k"])))
        return items

    def _load(self, item: tuple[str, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        stem, k = item
        image = _read_rgb(self.root / "images" / f"{stem}.jpg")
        everyone = np.zeros(image.shape[:2], bool)
        mine = None
        for p in sorted((self.root / "parsing_annos").glob(f"{stem}_*.png")):
            m = _MHP_RE.match(p.stem)
            if m is None or m["id"] != stem:
                continue
            ann = _read_gray(p)
            everyone |= ann > 0
            if int(m["k"]) == k:
                mine = MHP_TO_SCHEMA[np.clip(ann, 0, 58)]
        if mine is None:
            raise FileNotFoundError(f"no parsing for person {k} of {stem}")
        return image, mine, everyone


class SyntheticB2FDataset(Dataset):
    """Synthetic textured people (training/synthetic.py): the same body in two random poses
    over a known background (so "inpainting" is exact). Deterministic per index."""

    def __init__(self, length: int, height: int, width: int, *, seed: int = 0,
                 kind: str = "full") -> None:
        self.length, self.height, self.width = length, height, width
        self.seed, self.kind = seed, kind

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, Any]:
        from .synthetic import random_body, random_pose, render

        rng = np.random.default_rng((self.seed, index))
        h, w = self.height, self.width
        c0, c1 = rng.integers(30, 225, size=(2, 3))
        ramp = np.linspace(0, 1, h)[:, None, None]
        bg = (c0 * (1 - ramp) + c1 * ramp) + rng.normal(0, 6, (h, w, 3))
        bg = np.clip(bg, 0, 255).astype(np.uint8)
        body = random_body(rng)
        seed = int(rng.integers(1 << 30))
        a = render(body, random_pose(rng, body, self.kind), h, w, background=bg, seed=seed)
        b = render(body, random_pose(rng, body, self.kind), h, w, background=bg, seed=seed)
        return {"target_image": a.image, "target_labels": a.labels, "image": b.image,
                "labels": b.labels, "face": b.person.face.astype(np.float32),
                "background": bg}


def make_dataset(layout: str, root: str | None, height: int, width: int, *,
                 synthetic_length: int = 2000, seed: int = 0) -> Dataset:
    """The dataset for ``--layout`` (synthetic needs no root)."""
    if layout == "synthetic":
        return SyntheticB2FDataset(synthetic_length, height, width, seed=seed)
    if root is None:
        raise ValueError(f"--data is required for layout {layout!r}")
    if layout == "cihp":
        return CIHPDataset(root, height, width, seed=seed)
    if layout == "mhpv2":
        return MHPv2Dataset(root, height, width, seed=seed)
    raise ValueError(f"unknown layout {layout!r}; use synthetic, cihp or mhpv2")


def prepare_inpainting(dataset: PersonCropDataset) -> int:
    """Make every cached inpainted background of a CIHP/MHPv2 dataset; returns the count."""
    done = 0
    seen: set[str] = set()
    for item in dataset.items:
        if item[0] in seen:
            continue
        seen.add(item[0])
        image, _, everyone = dataset._load(item)
        dataset.background(item, image, everyone)
        done += 1
    return done
