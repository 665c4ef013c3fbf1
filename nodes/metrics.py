"""Metric nodes: the paper's SSBS/SSIS, DPBS/DPIS, SSIM, masked PSNR, LPIPS and FID."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from ..models.core.cache import model_cache
from ..models.io.weights import WeightError
from ..models.metrics import scores as M
from ..models.metrics.evaluation import format_table
from .runtime import NodeInputError, Progress, get_device
from .sockets import (
    DENSEPOSE,
    IMAGE,
    MASK,
    PARSING,
    DensePose,
    check_image,
    check_mask,
    check_parsing,
    check_same_length,
    frame_to_rgb_uint8,
)

logger = logging.getLogger(__name__)
CATEGORY = "dance_reenact/metrics"
NOT_COMPUTED = -1.0
CHUNK = 8
METRIC_KIND = "metric_network"  # LPIPS / FID networks in the pack's model cache


def _cached(key: tuple, build: Callable[[], torch.nn.Module],
            device: torch.device) -> torch.nn.Module:
    return model_cache().get_or_create(METRIC_KIND, key, build, device=device, kind_limit=3)


def _check_pair_sizes(node: str, a: tuple[int, ...], b: tuple[int, ...], what: str) -> int:
    if tuple(a[1:3]) != tuple(b[1:3]):
        raise NodeInputError(node, "prediction/ground_truth",
                             f"{what} sizes differ ({a[2]}x{a[1]} vs {b[2]}x{b[1]})",
                             "resize the prediction to the ground truth's size first")
    return check_same_length(node, prediction=a[0], ground_truth=b[0])


def _pick(t: torch.Tensor, i: int) -> torch.Tensor:
    return t[0 if t.shape[0] == 1 else i]


def _seg_outputs(node: str, pred: torch.Tensor, gt: torch.Tensor, num_labels: int,
                 names: tuple[str, str]) -> tuple[float, float, str]:
    n = _check_pair_sizes(node, tuple(pred.shape), tuple(gt.shape), "label map")
    rows = []
    with Progress(n, node) as bar:
        for s in range(0, n, CHUNK):
            idx = list(range(s, min(n, s + CHUNK)))
            p = torch.stack([_pick(pred, i) for i in idx])
            g = torch.stack([_pick(gt, i) for i in idx])
            try:
                b, part = M.iou_scores(M.confusion_matrices(p, g, num_labels))
            except ValueError as exc:
                raise NodeInputError(node, "prediction/ground_truth", str(exc),
                                     f"give label maps with values 0..{num_labels - 1}") from exc
            rows += [{"frame": i, names[0]: float(x), names[1]: float(y)}
                     for i, x, y in zip(idx, b, part)]
            bar.update(len(idx))
    mean = {k: float(np.mean([r[k] for r in rows])) for k in names}
    return mean[names[0]], mean[names[1]], format_table(rows, list(names), mean)


class ParsingMetrics:
    """SSBS / SSIS between a predicted and a ground-truth PARSING (paper Tab. 1)."""

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {"required": {
            "prediction": (PARSING, {"tooltip": "Parsing to score, e.g. P2B's output."}),
            "ground_truth": (PARSING, {"tooltip": "Parsing of the real frames (a batch of 1 "
                                                  "is used for every frame)."}),
        }}

    RETURN_TYPES = ("FLOAT", "FLOAT", "STRING")
    RETURN_NAMES = ("ssbs", "ssis", "table")
    OUTPUT_TOOLTIPS = (
        'Structural similarity of the body shapes (SSBS).',
        'Structural similarity of the body parts (SSIS).',
        'The scores as a table.',
    )
    FUNCTION = "evaluate"
    CATEGORY = CATEGORY
    DESCRIPTION = ("SSBS (IoU of person vs background) and SSIS (mean IoU over the parts present "
                   "in either map), averaged over frames; 1 = identical. The table lists each "
                   "frame.")

    def evaluate(self, prediction: Any, ground_truth: Any) -> tuple[float, float, str]:
        node = "Parsing Metrics"
        p = check_parsing(prediction, node, "prediction")
        g = check_parsing(ground_truth, node, "ground_truth")
        return _seg_outputs(node, p.labels, g.labels, max(p.schema.num_labels,
                                                           g.schema.num_labels),
                            ("ssbs", "ssis"))


class DensePoseMetrics:
    """DPBS / DPIS between a predicted and a ground-truth DENSEPOSE."""

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {"required": {
            "prediction": (DENSEPOSE, {"tooltip": "DensePose of the rendered frames."}),
            "ground_truth": (DENSEPOSE, {"tooltip": "DensePose of the real frames."}),
        }}

    RETURN_TYPES = ("FLOAT", "FLOAT", "STRING")
    RETURN_NAMES = ("dpbs", "dpis", "table")
    OUTPUT_TOOLTIPS = (
        'DensePose body similarity (DPBS).',
        'DensePose instance similarity (DPIS).',
        'The scores as a table.',
    )
    FUNCTION = "evaluate"
    CATEGORY = CATEGORY
    DESCRIPTION = ("DPBS (IoU of body vs background) and DPIS (mean IoU over the DensePose part "
                   "indices 1..24 present in either map), averaged over frames.")

    def evaluate(self, prediction: Any, ground_truth: Any) -> tuple[float, float, str]:
        node = "DensePose Metrics"
        for v, name in ((prediction, "prediction"), (ground_truth, "ground_truth")):
            if not isinstance(v, DensePose):
                raise NodeInputError(node, name, f"expected DENSEPOSE, got {type(v).__name__}",
                                     "connect the DENSEPOSE output of the DensePose node")
        return _seg_outputs(node, prediction.index, ground_truth.index,
                            M.DENSEPOSE_INDICES, ("dpbs", "dpis"))


def _to_rgb_float(image: torch.Tensor, i: int) -> torch.Tensor:
    """Frame i of an IMAGE as float (3, H, W): RGB as is, gray/alpha through the pack's
    conversion (alpha over white)."""
    f = image[0 if image.shape[0] == 1 else i]
    if f.shape[-1] == 3:
        return f.float().clamp(0, 1).permute(2, 0, 1)
    return torch.from_numpy(frame_to_rgb_uint8(f)).permute(2, 0, 1).float() / 255.0


class ImageMetrics:
    """SSIM, masked PSNR, LPIPS and FID between two IMAGE batches."""

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {
            "required": {
                "prediction": (IMAGE, {"tooltip": "Frames to score."}),
                "ground_truth": (IMAGE, {"tooltip": "The real frames (same size and count; "
                                                    "a single image is used for every frame)."}),
                "lpips": (["off", "vgg", "squeeze", "alex"], {
                    "default": "off", "tooltip": "LPIPS backbone. vgg downloads timm VGG16 + the "
                    "v0.1 heads through the registry; squeeze/alex need ImageNet backbone weights "
                    "you provide (lpips_backbone_file)."}),
                "fid": ("BOOLEAN", {"default": False, "tooltip":
                                    "FID over the two frame sets (needs at least 2 frames; "
                                    "downloads the pytorch-fid Inception)."}),
                "psnr_cap_db": ("FLOAT", {"default": M.PSNR_CAP_DB, "min": 10.0, "max": 1000.0,
                                          "tooltip": "PSNR reported for identical pixels."}),
            },
            "optional": {
                "mask": (MASK, {"tooltip": "Score only inside this mask (PSNR, SSIM)."}),
                "lpips_backbone_file": ("STRING", {"default": "", "tooltip":
                                        "squeeze/alex: a torchvision state dict file name in "
                                        "models/dance_reenact or a full path."}),
            },
        }

    RETURN_TYPES = ("FLOAT", "FLOAT", "FLOAT", "FLOAT", "STRING")
    RETURN_NAMES = ("ssim", "psnr", "lpips", "fid", "table")
    OUTPUT_TOOLTIPS = (
        'SSIM (higher is closer).',
        'PSNR in dB (higher is closer).',
        'LPIPS (lower is closer).',
        'FID (lower is closer; needs enough frames).',
        'The scores as a table.',
    )
    FUNCTION = "evaluate"
    CATEGORY = CATEGORY
    DESCRIPTION = ("Mean SSIM, masked PSNR (dB), LPIPS and FID of predicted vs real frames. "
                   "Metrics that are off output -1.")

    def evaluate(self, prediction: Any, ground_truth: Any, lpips: str = "off", fid: bool = False,
                 psnr_cap_db: float = M.PSNR_CAP_DB, mask: Any = None,
                 lpips_backbone_file: str = "") -> tuple[float, float, float, float, str]:
        node = "Image Metrics"
        pred = check_image(prediction, node, "prediction")
        gt = check_image(ground_truth, node, "ground_truth")
        n = _check_pair_sizes(node, tuple(pred.shape), tuple(gt.shape), "image")
        H, W = int(pred.shape[1]), int(pred.shape[2])
        if H < 11 or W < 11:
            raise NodeInputError(node, "prediction", f"{W}x{H} is too small for SSIM's 11x11 "
                                 "window", "score images of at least 11x11 pixels")
        if lpips != "off" and (H < 32 or W < 32):
            raise NodeInputError(node, "lpips", f"{W}x{H} is too small for LPIPS",
                                 "use images of at least 32x32 or turn LPIPS off")
        if fid and n < 2:
            raise NodeInputError(node, "fid", "FID compares two distributions and needs at "
                                 f"least 2 frames per set, got {n}",
                                 "connect a video batch or turn FID off")
        mk = None
        if mask is not None:
            mk = check_mask(mask, node, "mask")
            if tuple(mk.shape[1:]) != (H, W):
                raise NodeInputError(node, "mask", f"mask is {mk.shape[2]}x{mk.shape[1]}, "
                                     f"the images {W}x{H}", "resize the mask to the images")
            check_same_length(node, prediction=n, mask=int(mk.shape[0]))
            sums = mk.flatten(1).sum(1)
            if bool((sums <= 0).any()):
                empty = [int(i) for i in torch.nonzero(sums <= 0).flatten()][:10]
                raise NodeInputError(node, "mask", f"the mask is empty in frame(s) {empty}",
                                     "give a mask with pixels in every frame, or none")
        device = get_device()
        lp_model = None
        if lpips != "off":
            backbone = M.LPIPS_ALIASES[lpips]
            src = lpips_backbone_file.strip() or None
            try:
                lp_model = _cached(("lpips", backbone, src, str(device)),
                                   lambda: M.load_lpips(backbone, backbone_weights=src,
                                                        device=device), device)
            except WeightError as exc:
                raise NodeInputError(node, "lpips", str(exc).rstrip("."),
                                     "provide the weights as described, or set lpips to off"
                                     ) from exc
        fid_model = None
        if fid:
            fid_model = _cached(("fid", str(device)), lambda: M.load_fid_inception(
                device=device), device)
        rows: list[dict[str, float]] = []
        fp, fg = [], []
        with Progress(n, node) as bar:
            for s in range(0, n, CHUNK):
                idx = list(range(s, min(n, s + CHUNK)))
                a = torch.stack([_to_rgb_float(pred, i) for i in idx]).to(device)
                b = torch.stack([_to_rgb_float(gt, i) for i in idx]).to(device)
                m = None if mk is None else torch.stack([_pick(mk, i) for i in idx]).to(device)
                try:
                    ss = M.ssim(a, b, mask=m)
                except ValueError as exc:  # a mask only within 5 px of the border
                    raise NodeInputError(node, "mask", f"frames {idx[0]}..{idx[-1]}: {exc}",
                                         "give a mask that covers the image's interior"
                                         ) from exc
                ps = M.masked_psnr(a, b, mask=m, max_db=psnr_cap_db)
                lp = M.lpips_distance(lp_model, a, b) if lp_model is not None else None
                if fid_model is not None:
                    fp.append(M.inception_features(fid_model, list(a)))
                    fg.append(M.inception_features(fid_model, list(b)))
                for j, i in enumerate(idx):
                    row = {"frame": i, "ssim": float(ss[j]), "psnr": float(ps[j])}
                    if lp is not None:
                        row["lpips"] = float(lp[j])
                    rows.append(row)
                bar.update(len(idx))
        cols = ["ssim", "psnr"] + (["lpips"] if lp_model is not None else [])
        mean = {c: float(np.mean([r[c] for r in rows])) for c in cols}
        fid_value = (M.fid_from_features(np.concatenate(fp), np.concatenate(fg))
                     if fid_model is not None else None)
        table = format_table(rows, cols, mean, fid_value)
        return (mean["ssim"], mean["psnr"], mean.get("lpips", NOT_COMPUTED),
                NOT_COMPUTED if fid_value is None else float(fid_value), table)


NODE_CLASS_MAPPINGS = {
    "DanceReenactParsingMetrics": ParsingMetrics,
    "DanceReenactImageMetrics": ImageMetrics,
    "DanceReenactDensePoseMetrics": DensePoseMetrics,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "DanceReenactParsingMetrics": "Parsing Metrics (Dance Reenact)",
    "DanceReenactImageMetrics": "Image Metrics (Dance Reenact)",
    "DanceReenactDensePoseMetrics": "DensePose Metrics (Dance Reenact)",
}
