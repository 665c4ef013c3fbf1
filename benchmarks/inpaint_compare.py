"""Which still-inpainting backend fills a person-shaped hole best: PatchMatch, Telea, NS, FSR.

Run: ``python benchmarks/inpaint_compare.py`` (with the pack importable as ``dance_reenact``;
about a minute on one core). It prints a markdown table and writes it into
``docs/inpainting.md``.

Method: photos with known content (frames of the dev clips in ``../shared/dev_clips`` when that
folder exists, and scikit-image's photos) get a person-shaped hole cut into a region where
they show no person (their own MediaPipe person mask, grown, is avoided). The hole shapes are
real people (MediaPipe's segmentation of other dev-clip frames and photos) and synthetic
silhouettes (``training/synthetic.py``), scaled to 40 % of the photo's height. Each backend
fills the hole; the fill is compared with the photo:

- PSNR inside the hole (dB, RGB);
- gradient ratio: mean Sobel gradient magnitude inside the hole over that in a 10-pixel ring
  around it. A smear (smooth fill) has a low ratio; the photo itself has about 1.
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CLIPS = ROOT.parent / "shared" / "dev_clips"
if not CLIPS.is_dir():
    CLIPS = Path("/work/shared/dev_clips")
DOC = ROOT / "docs" / "inpainting.md"
RING = 10
SIDE = 350  # photos are scaled so their longest side is this


def _clip_frame(name: str, i: int) -> np.ndarray:
    from PIL import Image

    im = Image.open(CLIPS / name)
    im.seek(i)
    return np.asarray(im.convert("RGB"))


def _fit(img: np.ndarray, side: int = SIDE) -> np.ndarray:
    s = side / max(img.shape[:2])
    size = (round(img.shape[1] * s), round(img.shape[0] * s))
    return cv2.resize(img, size, interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC)


def photos() -> list[tuple[str, np.ndarray]]:
    """(name, uint8 RGB) photos with known content."""
    from skimage import data

    out = []
    if CLIPS.is_dir():
        out += [(f"pisa_dancer #{i}", _clip_frame("pisa_dancer.webp", i)) for i in (0, 40)]
        out += [(f"hooded_runner #{i}", _clip_frame("hooded_runner.webp", i)) for i in (5, 35)]
    for name in ("astronaut", "coffee", "chelsea", "rocket"):
        out.append((name, _fit(getattr(data, name)())))
    return out


def _crop(mask: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(mask)
    return mask[ys.min():ys.max() + 1, xs.min():xs.max() + 1]


def person_mask(rgb: np.ndarray) -> np.ndarray:
    """bool (H, W): MediaPipe's person segmentation (empty when no one is found)."""
    from dance_reenact.models.perception.mediapipe_holistic import detect_people

    found = detect_people(rgb, with_mask=True)
    if not found or found[0].mask is None:
        return np.zeros(rgb.shape[:2], bool)
    return found[0].mask > 0.5


def hole_shapes() -> list[tuple[str, np.ndarray]]:
    """(name, bool mask cropped to its box) person shapes: real people, synthetic bodies."""
    from dance_reenact.training.synthetic import random_pair

    shapes = []
    if CLIPS.is_dir():
        for name, img in (("pisa person #60", _clip_frame("pisa_dancer.webp", 60)),
                          ("runner person #20", _clip_frame("hooded_runner.webp", 20)),
                          ("fashion photo person", _clip_frame("fashion_photo.png", 0)),
                          ("guitarist person", _clip_frame("guitarist_photo.png", 0))):
            m = person_mask(img)
            if m.sum() > 500:
                shapes.append((name, _crop(m)))
    rng = np.random.default_rng(0)
    for k in range(3):
        _, a, _ = random_pair(rng, 256, 192)
        shapes.append((f"synthetic body {k}", _crop(a.mask)))
    return shapes


def place(shape: np.ndarray, avoid: np.ndarray, rng: np.random.Generator,
          height_frac: float = 0.4) -> np.ndarray | None:
    """The shape scaled to ``height_frac`` of the photo, at a random spot that keeps a ring of
    RING pixels inside the photo and clear of ``avoid``. None when no spot is found."""
    h, w = avoid.shape
    for frac in (height_frac, 0.8 * height_frac, 0.6 * height_frac):
        s = frac * h / shape.shape[0]
        sh = cv2.resize(shape.astype(np.uint8), (max(1, round(shape.shape[1] * s)),
                        max(1, round(shape.shape[0] * s))), interpolation=cv2.INTER_NEAREST)
        hh, ww = sh.shape
        if hh + 2 * RING >= h or ww + 2 * RING >= w:
            continue
        for _ in range(300):
            y = int(rng.integers(RING, h - hh - RING))
            x = int(rng.integers(RING, w - ww - RING))
            m = np.zeros((h, w), bool)
            m[y:y + hh, x:x + ww] = sh > 0
            if not (_grow(m, RING) & avoid).any():
                return m
    return None


def _grow(m: np.ndarray, px: int) -> np.ndarray:
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * px + 1, 2 * px + 1))
    return cv2.dilate(m.astype(np.uint8), k) > 0


def psnr(a: np.ndarray, b: np.ndarray, m: np.ndarray) -> float:
    err = float(((a.astype(np.float64) - b.astype(np.float64)) ** 2)[m].mean())
    return 10 * np.log10(255.0 ** 2 / max(err, 1e-6))


def gradient_ratio(img: np.ndarray, m: np.ndarray) -> float:
    """Mean gradient magnitude in the hole / in a RING-pixel ring around it."""
    g = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float32)
    mag = np.hypot(cv2.Sobel(g, cv2.CV_32F, 1, 0), cv2.Sobel(g, cv2.CV_32F, 0, 1))
    ring = _grow(m, RING) & ~m
    return float(mag[m].mean() / max(mag[ring].mean(), 1e-6))


def backends() -> dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]]:
    from dance_reenact.models.compositing.inpaint import inpaint_opencv, inpaint_patchmatch

    out: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
        "patchmatch": lambda img, m: inpaint_patchmatch(img, m),
        "opencv_telea": lambda img, m: inpaint_opencv(img, m, method="telea"),
        "opencv_ns": lambda img, m: inpaint_opencv(img, m, method="ns"),
    }
    if hasattr(cv2, "xphoto"):
        def fsr(img: np.ndarray, m: np.ndarray) -> np.ndarray:
            dst = np.zeros_like(img)
            keep = (~m).astype(np.uint8) * 255  # xphoto: nonzero = known
            cv2.xphoto.inpaint(np.ascontiguousarray(img), keep, dst,
                               cv2.xphoto.INPAINT_FSR_FAST)
            return np.where(m[..., None], dst, img)

        out["xphoto_fsr_fast (not a backend)"] = fsr
    return out


def run(holes_per_photo: int = 2, seed: int = 0) -> tuple[str, dict[str, dict[str, float]]]:
    """Fill every case with every backend. Returns (markdown table, summary per backend)."""
    from dance_reenact.models.compositing.inpaint import patchmatch_available

    if not patchmatch_available():
        logging.warning("pypatchmatch is not installed: 'patchmatch' falls back to Telea")
    rng = np.random.default_rng(seed)
    shapes = hole_shapes()
    fills = backends()
    rows: dict[str, list[tuple[float, float, float]]] = {k: [] for k in fills}
    truth_ratio: list[float] = []
    cases = []
    for pname, img in photos():
        avoid = _grow(person_mask(img), 12)
        for _ in range(holes_per_photo):
            sname, shape = shapes[int(rng.integers(len(shapes)))]
            m = place(shape, avoid, rng)
            if m is None:
                logging.warning("no person-free spot for %s in %s", sname, pname)
                continue
            cases.append(f"{pname} / {sname}")
            truth_ratio.append(gradient_ratio(img, m))
            for name, fill in fills.items():
                t0 = time.perf_counter()
                out = fill(img, m)
                dt = time.perf_counter() - t0
                assert np.array_equal(out[~m], img[~m])
                rows[name].append((psnr(out, img, m), gradient_ratio(out, m), dt))
    summary = {k: {"psnr": float(np.mean([r[0] for r in v])),
                   "ratio": float(np.mean([r[1] for r in v])),
                   "ms": 1000 * float(np.mean([r[2] for r in v]))} for k, v in rows.items()}
    lines = ["| backend | PSNR in the hole (dB) | gradient ratio hole/ring | ms per fill |",
             "|---|---:|---:|---:|"]
    for name, s in summary.items():
        lines.append(f"| {name} | {s['psnr']:.2f} | {s['ratio']:.2f} | {s['ms']:.0f} |")
    lines.append(f"| (the photo itself) | | {np.mean(truth_ratio):.2f} | |")
    lines.append(f"\nMeans over {len(cases)} holes. Per hole (PSNR dB / gradient ratio):\n")
    names = list(fills)
    lines.append("| photo / hole shape | " + " | ".join(names) + " | photo's ratio |")
    lines.append("|---|" + "---:|" * (len(names) + 1))
    for i, case in enumerate(cases):
        cells = [f"{rows[k][i][0]:.1f} / {rows[k][i][1]:.2f}" for k in names]
        lines.append(f"| {case} | " + " | ".join(cells) + f" | {truth_ratio[i]:.2f} |")
    return "\n".join(lines), summary


DOC_HEAD = """# Inpainting backends compared

Generated by `python benchmarks/inpaint_compare.py` (do not edit by hand); its docstring
describes the method. Person-shaped holes (real people's MediaPipe masks and synthetic
silhouettes, 40 % of the photo's height) are cut into person-free regions of photos with known
content (dev-clip frames, scikit-image photos, longest side {side} px) and filled by each
backend. PSNR compares the fill with the photo inside the hole; the gradient ratio is the mean
gradient magnitude inside the hole over that in a {ring}-pixel ring around it: a smear scores
low, the photo itself about 1. Times: one core of the development machine.

"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--holes-per-photo", type=int, default=2)
    ap.add_argument("--no-write", action="store_true", help="print only")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    cv2.setNumThreads(1)
    table, s = run(args.holes_per_photo)
    best = max(("patchmatch", "opencv_telea", "opencv_ns"),
               key=lambda k: (s[k]["ratio"] >= 0.7
                              and s[k]["psnr"] >= s["opencv_telea"]["psnr"] - 1.0,
                              s[k]["ratio"]))
    verdict = (f"Default: **{best}**: the sharpest backend whose gradient ratio is at least 0.7 "
               f"and whose PSNR is within 1 dB of Telea's (or the sharpest, when none is). "
               f"{best}: ratio {s[best]['ratio']:.2f}, PSNR {s[best]['psnr']:.2f} dB; Telea: "
               f"ratio {s['opencv_telea']['ratio']:.2f}, PSNR "
               f"{s['opencv_telea']['psnr']:.2f} dB.")
    fsr = s.get("xphoto_fsr_fast (not a backend)")
    if fsr is not None:
        pm = s["patchmatch"]
        worse = fsr["ratio"] < pm["ratio"] and fsr["psnr"] < pm["psnr"] + 0.5
        verdict += (f" OpenCV-contrib's FSR (fast) gives ratio {fsr['ratio']:.2f}, PSNR "
                    f"{fsr['psnr']:.2f} dB in {fsr['ms']:.0f} ms: "
                    + ("not offered, PatchMatch is sharper at about the same PSNR."
                       if worse else "a candidate backend."))
    print(table + "\n\n" + verdict)
    if not args.no_write:
        DOC.parent.mkdir(exist_ok=True)
        DOC.write_text(DOC_HEAD.format(side=SIDE, ring=RING) + table + "\n\n" + verdict + "\n")
        print(f"wrote {DOC}")


if __name__ == "__main__":
    main()
