"""The paper's reconstruction protocol: compare a rendered video frame by frame with the video
it was driven by (the target is a frame of the driver video, so the video is ground truth).

:func:`evaluate_reconstruction` streams predicted and ground-truth frames (and, where
available, parsing / DensePose maps and masks) and returns every metric per frame, their
means and the set-level FID. :class:`EvaluationResult` writes the CSV/JSON table. Frame and
label-map readers for files and folders are here too, so the CLI and tests share them.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import zip_longest
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import scores as M

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
VIDEO_EXTENSIONS = (".mp4", ".mov", ".mkv", ".avi", ".webm", ".gif")

_END = object()


@dataclass
class EvaluationResult:
    """Per-frame metric rows, their means, and the set-level FID (None if not computed)."""

    rows: list[dict[str, float]]
    columns: list[str]
    fid: float | None = None
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def mean(self) -> dict[str, float]:
        """Per column, the mean over the frames that have a score (NaN = no score, e.g. SSBS
        on a frame where both parsings are empty: left out, see :attr:`both_empty`)."""
        out: dict[str, float] = {}
        for c in self.columns:
            vals = [r[c] for r in self.rows
                    if c in r and r[c] is not None and not math.isnan(r[c])]
            out[c] = float(np.mean(vals)) if vals else float("nan")
        return out

    @property
    def both_empty(self) -> dict[str, int]:
        """Frames left out of the shift-invariant scores because both maps were empty:
        ``{"parsing": n}`` (SSBS/SSIS) and/or ``{"densepose": n}`` (DPBS/DPIS)."""
        out = {}
        for kind, col in (("parsing", "ssbs"), ("densepose", "dpbs")):
            if col in self.columns:
                out[kind] = sum(1 for r in self.rows if math.isnan(r.get(col, 0.0)))
        return out

    def table(self, max_rows: int = 12) -> str:
        """A fixed-width text table: the first ``max_rows`` frames, the mean, and how many
        frames the shift-invariant scores left out (both maps empty)."""
        text = format_table(self.rows, self.columns, self.mean, self.fid, max_rows=max_rows)
        return text + "\n" + both_empty_note(self.both_empty, len(self.rows))

    def write(self, out_dir: str | os.PathLike[str], stem: str = "metrics") -> tuple[Path, Path]:
        """Write ``<stem>.csv`` (one row per frame + a ``mean`` row) and ``<stem>.json``."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        csv_path, json_path = out / f"{stem}.csv", out / f"{stem}.json"
        with open(csv_path, "w", newline="") as f:
            w = csv.writer(f)
            # FID is a set-level number: an extra column, filled on the mean row only
            extra = ["fid"] if self.fid is not None else []
            w.writerow(["frame", *self.columns, *extra])
            for r in self.rows:
                w.writerow([int(r["frame"]), *(_fmt(r.get(c)) for c in self.columns),
                            *([""] * len(extra))])
            w.writerow(["mean", *(_fmt(v) for v in self.mean.values()),
                        *([_fmt(self.fid)] if extra else [])])
        doc = {"columns": self.columns, "frames": [_jsonable(r) for r in self.rows],
               "mean": _jsonable(self.mean), "fid": self.fid, "both_empty": self.both_empty,
               "config": self.config}
        json_path.write_text(json.dumps(doc, indent=1))
        return csv_path, json_path


def both_empty_note(counts: Mapping[str, int], frames: int) -> str:
    """One line saying how many frames SSBS/SSIS and DPBS/DPIS left out (both maps empty)."""
    if not counts:
        return "both-empty frames: no parsing or DensePose scored"
    what = {"parsing": "SSBS/SSIS: both parsings empty", "densepose":
            "DPBS/DPIS: both DensePose maps empty"}
    return "; ".join(f"{what[k]} in {n} of {frames} frames (left out of the mean)"
                     for k, n in counts.items())


def _fmt(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    return f"{v:.6g}" if isinstance(v, float) else str(v)


def _jsonable(d: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
            for k, v in d.items()}


def format_table(rows: list[Mapping[str, float]], columns: list[str],
                 mean: Mapping[str, float] | None = None, fid: float | None = None, *,
                 max_rows: int = 12) -> str:
    """Rows of metrics as an aligned text table (the nodes' STRING output)."""
    head = ["frame", *columns]
    lines = [head]
    for r in rows[:max_rows]:
        lines.append([str(int(r["frame"])), *(_fmt(r.get(c)) for c in columns)])
    if len(rows) > max_rows:
        lines.append([f"... {len(rows) - max_rows} more", *([""] * len(columns))])
    if mean is not None:
        lines.append(["mean", *(_fmt(mean.get(c)) for c in columns)])
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    text = "\n".join("  ".join(c.rjust(w) for c, w in zip(line, widths)) for line in lines)
    if fid is not None:
        text += f"\nFID ({len(rows)} frames): {fid:.6g}"
    return text


def _opt_iter(x: Iterable[Any] | None) -> Iterator[Any] | None:
    return None if x is None else iter(x)


def _next(it: Iterator[Any] | None, name: str, i: int) -> Any:
    if it is None:
        return None
    v = next(it, _END)
    if v is _END:
        raise ValueError(f"{name} has only {i} frames but the prediction has more: give one "
                         f"per frame")
    return v


def _check_maps(what: str, pred: Iterable[np.ndarray] | None, gt: Iterable[np.ndarray] | None,
                estimator: Callable[[np.ndarray], np.ndarray] | None) -> None:
    """Refuse maps of one side only when nothing can estimate the other side's."""
    if (pred is None) != (gt is None) and estimator is None:
        raise ValueError(f"give both predicted and ground-truth {what}, or neither (or a "
                         f"{what} estimator for the missing one)")


@dataclass
class _MapPair:
    """One kind of label map (parsing -> SSBS/SSIS, DensePose -> DPBS/DPIS) for both sides:
    the given maps, frame by frame, or the estimator run on the frame where none is given."""

    what: str                   # "parsing" or "DensePose", as messages name it
    columns: tuple[str, str]    # (boundary score, shift-invariant score)
    similarity: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]
    pred: Iterator[Any] | None
    gt: Iterator[Any] | None
    estimator: Callable[[np.ndarray], np.ndarray] | None

    @classmethod
    def of(cls, what: str, columns: tuple[str, str],
           similarity: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]],
           pred: Iterable[np.ndarray] | None, gt: Iterable[np.ndarray] | None,
           estimator: Callable[[np.ndarray], np.ndarray] | None) -> _MapPair | None:
        """The pair, or None when neither maps nor an estimator are given (no columns)."""
        if pred is None and gt is None and estimator is None:
            return None
        return cls(what, columns, similarity, _opt_iter(pred), _opt_iter(gt), estimator)

    def scores(self, i: int, pred_rgb: np.ndarray, gt_rgb: np.ndarray, ref: torch.Tensor,
               ) -> dict[str, float]:
        """Frame ``i``'s two scores by column; NaN where both maps are empty (no score: left
        out of the mean and counted)."""
        key = self.what.lower()  # the arguments' name: pred_parsing, gt_densepose...
        pm = _map(self.pred, f"pred_{key}", i, self.estimator, pred_rgb)
        gm = _map(self.gt, f"gt_{key}", i, self.estimator, gt_rgb)
        s_b, s_i = self.similarity(_labels(pm, ref, i, self.what), _labels(gm, ref, i, self.what))
        return {self.columns[0]: float(s_b[0]), self.columns[1]: float(s_i[0])}


def _frame_pair(pred: Any, gt: Any, i: int) -> tuple[np.ndarray, np.ndarray]:
    """Frame ``i`` of both videos as arrays.

    Raises:
        ValueError: one video ran out (``_END``), or the frames differ in size.
    """
    if pred is _END or gt is _END:
        which = "prediction" if pred is _END else "ground truth"
        raise ValueError(f"the {which} ran out after {i} frames: prediction and ground "
                         f"truth must have the same number of frames")
    pred, gt = np.asarray(pred), np.asarray(gt)
    if pred.shape != gt.shape:
        raise ValueError(f"frame {i}: prediction {pred.shape} and ground truth {gt.shape} "
                         f"differ in size; resize the prediction to the video's size")
    return pred, gt


def _mask_tensor(mask: Any, ref: torch.Tensor, i: int, dev: torch.device
                 ) -> torch.Tensor | None:
    """Frame ``i``'s mask as a float (1, H, W) tensor on ``dev`` (its first channel if it has
    three), or None without one.

    Raises:
        ValueError: the mask's size differs from the frame's, or the mask is empty.
    """
    if mask is None:
        return None
    mt = torch.as_tensor(np.asarray(mask, dtype=np.float32))
    if mt.ndim == 3:
        mt = mt[..., 0]
    if mt.shape != ref.shape[-2:]:
        raise ValueError(f"frame {i}: mask {tuple(mt.shape)} does not match the frame "
                         f"{tuple(ref.shape[-2:])}")
    if float(mt.sum()) <= 0:
        raise ValueError(f"frame {i}: the mask is empty; PSNR and SSIM inside it are "
                         f"undefined. Give masks with pixels in every frame, or none")
    return mt[None].to(dev)


def _image_scores(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor | None,
                  lpips_models: Mapping[str, M.LPIPS], psnr_cap: float) -> dict[str, float]:
    """SSIM and PSNR (inside the mask when given) and each LPIPS of one frame pair."""
    row = {"ssim": float(M.ssim(a, b, mask=mask)[0]),
           "psnr": float(M.masked_psnr(a, b, mask=mask, max_db=psnr_cap)[0])}
    for name, model in lpips_models.items():
        row[f"lpips_{name}"] = float(M.lpips_distance(model, a, b)[0])
    return row


def evaluate_reconstruction(

    pred_frames: Iterable[np.ndarray],
    gt_frames: Iterable[np.ndarray],
    pred_parsing: Iterable[np.ndarray] | None = None,
    gt_parsing: Iterable[np.ndarray] | None = None,
    *,
    pred_densepose: Iterable[np.ndarray] | None = None,
    gt_densepose: Iterable[np.ndarray] | None = None,
    masks: Iterable[np.ndarray] | None = None,
    lpips_models: Mapping[str, M.LPIPS] | None = None,
    fid_model: M.FIDInceptionV3 | None = None,
    frame_indices: Iterable[int] | None = None,
    densepose_estimator: Callable[[np.ndarray], np.ndarray] | None = None,
    parsing_estimator: Callable[[np.ndarray], np.ndarray] | None = None,
    psnr_cap: float = M.PSNR_CAP_DB,
    device: torch.device | str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> EvaluationResult:
    """Score a rendered video against its ground truth, frame by frame (streamed).

    Args:
        pred_frames, gt_frames: uint8 RGB ``(H, W, 3)`` frames, same count and size.
        pred_parsing, gt_parsing: optional uint8 label maps ``(H, W)`` (22-label schema) per
            frame -> SSBS, SSIS.
        pred_densepose, gt_densepose: optional DensePose part-index maps ``(H, W)`` 0..24 ->
            DPBS, DPIS.
        masks: optional ``(H, W)`` masks (0..1 or bool) per frame: PSNR and SSIM inside them.
        lpips_models: name -> loaded :class:`~.metrics.LPIPS` (e.g. ``{"vgg": ..., "squeeze":
            ...}``); a column ``lpips_<name>`` each.
        fid_model: the loaded FID Inception; FID over all frames (needs >= 2).
        frame_indices: the frame numbers written in the table (default 0, 1, ...).
        densepose_estimator / parsing_estimator: ``rgb uint8 (H, W, 3) -> (H, W)`` label map,
            run on both the predicted and the real frame when the maps are not given (the
            paper's protocol: DensePose / the parser applied to generated and real frames).
        psnr_cap: PSNR of identical frames (dB) instead of infinity.
        device: where the networks run (default: where ``fid_model``/LPIPS live, else CPU).
        progress: ``(done, total_or_0)`` callback per frame.
    Returns:
        an :class:`EvaluationResult`.
    Raises:
        ValueError: counts or sizes differ, an empty mask, fewer than 2 frames for FID.
    """
    dev = torch.device(device) if device is not None else torch.device("cpu")
    lpips_models = dict(lpips_models or {})
    columns = ["ssim", "psnr"] + [f"lpips_{k}" for k in lpips_models]
    # a map that is not given is estimated (e.g. the ground truth's maps computed once and
    # reused for several methods, the prediction's estimated here)
    _check_maps("parsing", pred_parsing, gt_parsing, parsing_estimator)
    _check_maps("DensePose", pred_densepose, gt_densepose, densepose_estimator)
    parsing = _MapPair.of("parsing", ("ssbs", "ssis"), M.parsing_similarity, pred_parsing,
                          gt_parsing, parsing_estimator)
    densepose = _MapPair.of("DensePose", ("dpbs", "dpis"), M.densepose_similarity,
                            pred_densepose, gt_densepose, densepose_estimator)
    maps = [pair for pair in (parsing, densepose) if pair is not None]
    for pair in maps:
        columns += pair.columns
    mask_it, idx_it = _opt_iter(masks), _opt_iter(frame_indices)
    rows: list[dict[str, float]] = []
    feats_pred: list[np.ndarray] = []
    feats_gt: list[np.ndarray] = []
    i = 0
    for pred, gt in zip_longest(pred_frames, gt_frames, fillvalue=_END):
        pred, gt = _frame_pair(pred, gt, i)
        a = M.to_nchw(pred).to(dev)
        b = M.to_nchw(gt).to(dev)
        mt = _mask_tensor(_next(mask_it, "masks", i), a, i, dev)
        idx = next(idx_it, i) if idx_it is not None else i
        row: dict[str, float] = {"frame": int(idx), **_image_scores(a, b, mt, lpips_models,
                                                                     psnr_cap)}
        for pair in maps:
            row.update(pair.scores(i, pred, gt, a))
        if fid_model is not None:
            feats_pred.append(M.inception_features(fid_model, [a[0]]))
            feats_gt.append(M.inception_features(fid_model, [b[0]]))
        rows.append(row)
        i += 1
        if progress is not None:
            progress(i, 0)
    if i == 0:
        raise ValueError("no frames to evaluate")
    fid = None
    if fid_model is not None:
        if i < 2:
            raise ValueError(f"FID needs at least 2 frames per set, got {i}: evaluate a longer "
                             f"clip or turn FID off")
        fid = M.fid_from_features(np.concatenate(feats_pred), np.concatenate(feats_gt))
    return EvaluationResult(rows, columns, fid,
                            {"frames": i, "lpips": list(lpips_models), "fid": fid is not None,
                             "psnr_cap_db": psnr_cap, "masked": masks is not None})


def _map(it: Iterator[Any] | None, name: str, i: int,
         estimator: Callable[[np.ndarray], np.ndarray] | None, rgb: np.ndarray) -> Any:
    """The ``i``-th given map, or ``estimator(rgb)`` when none is given."""
    if it is not None:
        return _next(it, name, i)
    assert estimator is not None
    return estimator(rgb)


def make_parsing_estimator(backend: str = "geometric", *, pose_backend: str = "mediapipe",
                           device: torch.device | str = "cpu"
                           ) -> Callable[[np.ndarray], np.ndarray]:
    """``rgb -> parsing (H, W) uint8`` (22-label schema) of the largest person, all background
    when nobody is found. ``backend``: a :class:`.perception.human_parsing.HumanParser`
    backend (``geometric``: no download; ``schp_lip``/``schp_lip_onnx``: the paper's
    parser); people are found with ``pose_backend``."""
    from ..perception.human_parsing import HumanParser
    from ..perception.pose import PoseEstimator

    parser = HumanParser(backend, device=device)
    estimator = PoseEstimator(pose_backend, device=device, video=False)

    def run(rgb: np.ndarray) -> np.ndarray:
        rgb = np.ascontiguousarray(rgb)
        labels = parser.parse_frame(rgb, detections=estimator(rgb))
        return np.zeros(rgb.shape[:2], np.uint8) if labels is None else labels

    return run


def make_densepose_estimator(backend: str = "weightless", *, pose_backend: str = "mediapipe",
                             device: torch.device | str = "cpu"
                             ) -> Callable[[np.ndarray], np.ndarray]:
    """``rgb -> DensePose I (H, W) uint8`` for the largest person (zeros when nobody is found).

    ``weightless``: keypoints and person mask from ``pose_backend`` (see
    :class:`.perception.pose.PoseEstimator`), then :func:`.perception.densepose.
    densepose_from_keypoints`; ``densepose_r50``: the registry's TorchScript DensePose.
    """
    from ..perception import densepose as dp

    if backend == "densepose_r50":
        from ..io.weights import resolve

        runner = dp.DensePoseTorchScript(
            dp.load_densepose_torchscript(resolve("densepose_r50"), device), device=device)
        return lambda rgb: runner(rgb).index
    if backend != "weightless":
        raise ValueError(f"unknown DensePose backend {backend!r}: weightless or densepose_r50")
    from ..perception.pose import PoseEstimator

    estimator = PoseEstimator(pose_backend, device=device, video=False)

    def run(rgb: np.ndarray) -> np.ndarray:
        h, w = rgb.shape[:2]
        dets = [d for d in estimator(np.ascontiguousarray(rgb)) if d.person.bbox() is not None]
        if not dets:
            return np.zeros((h, w), np.uint8)

        def area(d: Any) -> float:
            x0, y0, x1, y1 = d.person.bbox()
            return float((x1 - x0 + 1) * (y1 - y0 + 1))

        det = max(dets, key=area)
        return dp.densepose_from_keypoints(det.person, det.mask, h, w).index

    return run


def _labels(x: Any, ref: torch.Tensor, i: int, what: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim == 3 and arr.shape[-1] in (1, 3):
        arr = arr[..., 0]
    if arr.shape != tuple(ref.shape[-2:]):
        raise ValueError(f"frame {i}: {what} map {arr.shape} does not match the frame "
                         f"{tuple(ref.shape[-2:])}")
    return arr[None].astype(np.int64)


# --------------------------------------------------------------------------------------------
# readers
# --------------------------------------------------------------------------------------------


def _sorted_files(folder: Path, exts: tuple[str, ...]) -> list[Path]:
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in exts)
    if not files:
        raise ValueError(f"{folder} holds no files of type {', '.join(exts)}")
    return files


def count_frames(path: str | os.PathLike[str]) -> int:
    p = Path(path)
    if p.is_dir():
        return len(_sorted_files(p, IMAGE_EXTENSIONS))
    return sum(1 for _ in iter_frames(p))


def iter_frames(path: str | os.PathLike[str]) -> Iterator[np.ndarray]:
    """uint8 RGB frames from a video file or a folder of images (sorted by name)."""
    from PIL import Image

    from ..io.video import read_video

    p = Path(path)
    if p.is_dir():
        for f in _sorted_files(p, IMAGE_EXTENSIONS):
            with Image.open(f) as im:
                yield np.asarray(im.convert("RGB"))
    elif p.is_file():
        yield from read_video(p)
    else:
        raise ValueError(f"{p} is neither a video file nor a folder of frames")


def iter_label_maps(path: str | os.PathLike[str]) -> Iterator[np.ndarray]:
    """uint8 label maps ``(H, W)`` from a folder of single-channel PNGs (label value per pixel,
    mode L or P) or ``.npy`` files, sorted by name."""
    from PIL import Image

    p = Path(path)
    if not p.is_dir():
        raise ValueError(f"{p} is not a folder of label maps (.png or .npy)")
    for f in _sorted_files(p, (".png", ".npy")):
        if f.suffix == ".npy":
            arr = np.load(f)
        else:
            with Image.open(f) as im:
                if im.mode not in ("L", "P", "I", "I;16"):
                    raise ValueError(f"{f} is a {im.mode} image; label maps must be "
                                     "single-channel PNGs holding the label id per pixel")
                arr = np.asarray(im)
        if arr.ndim != 2:
            raise ValueError(f"{f}: a label map must be (H, W), got {arr.shape}")
        yield arr.astype(np.uint8)


def iter_masks(path: str | os.PathLike[str]) -> Iterator[np.ndarray]:
    """Float masks ``(H, W)`` in 0..1 from a folder of grayscale images or ``.npy`` files."""
    from PIL import Image

    p = Path(path)
    if not p.is_dir():
        raise ValueError(f"{p} is not a folder of masks")
    for f in _sorted_files(p, (".png", ".jpg", ".npy")):
        if f.suffix == ".npy":
            yield np.load(f).astype(np.float32)
        else:
            with Image.open(f) as im:
                yield np.asarray(im.convert("L"), np.float32) / 255.0
