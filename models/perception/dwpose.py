"""DWPose (yzd-v/DWPose) with onnxruntime: YOLOX-L person boxes, then RTMPose whole-body
(133 keypoints, SimCC heads) per box, mapped onto OpenPose body 18 / face 70 / hands 21.

Pre/post-processing follows DWPose's ONNX annotator (IDEA-Research/DWPose
``ControlNet-v1-1-nightly/annotator/dwpose/onnxdet.py``, ``onnxpose.py``, ``wholebody.py``,
as comfyui_controlnet_aux ``dwpose/dw_onnx/cv_ox_det.py``/``cv_ox_pose.py`` runs it):

- detector: the frame letterboxed to 640x640 (top-left, pad 114, float 0..255, no
  normalisation) in the SAME channel order as the pose model gets. Upstream passes one array,
  ``oriImg``, to both models, and that array is the RGB frame (ControlNet's gradio demo,
  comfyui_controlnet_aux); so the detector is fed RGB, although YOLOX's own demo reads BGR.
  Grid decode, person score = objectness x class-0 probability, class-aware NMS (IoU 0.45
  over the boxes whose class-0 score exceeds 0.1), then boxes scoring more than 0.3. A box
  is kept when its PERSON score passes, whatever its best class is (upstream's
  ``multiclass_nms`` is per class, there is no arg-max filter).
- pose: RTMPose on the box padded 1.25x, aspect fixed to 288:384, warped to 288x384,
  ImageNet mean/std in RGB order; ``get_simcc_maximum``: location = arg-max of each SimCC
  vector / split ratio (2), score = the SMALLER of the two maxima. A keypoint is drawn when
  its score is above 0.3 (body: ``score > 0.3``; face and hands: not ``score < 0.3``).

COCO-WholeBody 133 = body 17, feet 6, face 68, left hand 21, right hand 21.
"""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np

from ..core.schema import NUM_BODY, NUM_FACE, NUM_HAND, Person
from .base import Detection

logger = logging.getLogger(__name__)

# OpenPose body index <- COCO-17 index (neck = shoulder midpoint, computed).
BODY_FROM_COCO: tuple[int, ...] = (0, -1, 6, 8, 10, 5, 7, 9, 12, 14, 16, 11, 13, 15, 2, 1, 4, 3)
KEYPOINT_THRESHOLD = 0.3  # DWPose's visibility threshold
DET_SCORE_THRESHOLD = 0.1  # onnxdet.multiclass_nms(score_thr=0.1): candidates for NMS
PERSON_CLASS = 0  # COCO "person"
MEAN = np.array([123.675, 116.28, 103.53], np.float32)
STD = np.array([58.395, 57.12, 57.375], np.float32)


def _session(path: str | Path, providers: list[str] | None):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), sess_options=opts,
                                    providers=providers or ort.get_available_providers())
    except Exception as exc:  # truncated / not ONNX
        raise ValueError(f"{path} is not a loadable ONNX model "
                         f"({type(exc).__name__}: {str(exc)[:200]})") from exc


def _hw(shape, default: tuple[int, int]) -> tuple[int, int]:
    h, w = shape[2], shape[3]
    if isinstance(h, int) and isinstance(w, int) and h > 0 and w > 0:
        return h, w
    return default


def _nms(boxes: np.ndarray, scores: np.ndarray, thr: float) -> list[int]:
    x0, y0, x1, y1 = boxes.T
    areas = (x1 - x0 + 1) * (y1 - y0 + 1)
    order = scores.argsort()[::-1]
    keep: list[int] = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        xx0 = np.maximum(x0[i], x0[order[1:]])
        yy0 = np.maximum(y0[i], y0[order[1:]])
        xx1 = np.minimum(x1[i], x1[order[1:]])
        yy1 = np.minimum(y1[i], y1[order[1:]])
        inter = np.maximum(0.0, xx1 - xx0 + 1) * np.maximum(0.0, yy1 - yy0 + 1)
        iou = inter / (areas[i] + areas[order[1:]] - inter)
        order = order[1:][iou <= thr]
    return keep


class DWPoseOnnx:
    """Whole-body pose with the two DWPose ONNX files.

    Args:
        det_path: ``yolox_l.onnx`` (input (1, 3, 640, 640) RGB 0..255 as upstream feeds it,
            output (1, A, 85)).
        pose_path: ``dw-ll_ucoco_384.onnx`` (input (1, 3, 384, 288) normalised RGB, outputs
            simcc_x (1, 133, 2*288) and simcc_y (1, 133, 2*384)).
        providers: onnxruntime execution providers (default: all available).
        det_score: a box is kept when its person score is above this (upstream 0.3).
        nms_threshold: IoU above which the lower-scoring person box is suppressed (0.45).
    """

    def __init__(self, det_path: str | Path, pose_path: str | Path, *,
                 providers: list[str] | None = None, det_score: float = 0.3,
                 nms_threshold: float = 0.45) -> None:
        self.det = _session(det_path, providers)
        self.pose = _session(pose_path, providers)
        self.det_hw = _hw(self.det.get_inputs()[0].shape, (640, 640))
        self.pose_hw = _hw(self.pose.get_inputs()[0].shape, (384, 288))
        self.det_score = det_score
        self.nms_threshold = nms_threshold

    # -- detector ---------------------------------------------------------------------------
    def detect_boxes(self, rgb: np.ndarray) -> np.ndarray:
        """Person boxes (N, 4) xyxy in pixels of ``rgb`` (not clipped to it), best first."""
        H, W = self.det_hw
        h, w = rgb.shape[:2]
        ratio = min(H / h, W / w)
        nh, nw = max(1, int(h * ratio)), max(1, int(w * ratio))
        padded = np.full((H, W, 3), 114, np.uint8)
        # Upstream feeds the detector the same (RGB) array as the pose model: no swap here.
        padded[:nh, :nw] = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_LINEAR)
        x = padded.transpose(2, 0, 1)[None].astype(np.float32)
        out = self.det.run(None, {self.det.get_inputs()[0].name: x})[0]
        pred = np.asarray(out, np.float32).reshape(-1, out.shape[-1]).copy()
        grids, strides = [], []
        for s in (8, 16, 32):
            gy, gx = np.meshgrid(np.arange(H // s), np.arange(W // s), indexing="ij")
            grids.append(np.stack([gx, gy], -1).reshape(-1, 2))
            strides.append(np.full((grids[-1].shape[0], 1), s))
        grid = np.concatenate(grids).astype(np.float32)
        stride = np.concatenate(strides).astype(np.float32)
        if len(grid) != len(pred) or pred.shape[1] < 6:
            raise ValueError(f"the DWPose detector returned {pred.shape}, expected "
                             f"({len(grid)}, 85) for a {W}x{H} input (YOLOX without NMS)")
        xy = (pred[:, :2] + grid) * stride
        wh = np.exp(np.clip(pred[:, 2:4], -20, 20)) * stride
        # Class-aware NMS restricted to the person class, as upstream keeps only class 0 after
        # its per-class NMS: the other classes' boxes never suppress a person box.
        person = pred[:, 4] * pred[:, 5 + PERSON_CLASS]
        cand = person > DET_SCORE_THRESHOLD
        if not cand.any():
            return np.zeros((0, 4), np.float32)
        boxes = np.concatenate([xy - wh / 2, xy + wh / 2], 1)[cand] / ratio
        scores = person[cand]
        order = _nms(boxes, scores, self.nms_threshold)
        boxes, scores = boxes[order], scores[order]
        # Upstream neither clips the boxes nor drops thin ones: the pose crop uses them as-is.
        return boxes[scores > self.det_score].astype(np.float32)

    # -- pose -------------------------------------------------------------------------------
    def keypoints(self, rgb: np.ndarray, box: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """133 whole-body keypoints (133, 2) in pixels and their scores (133,) for one box."""
        H, W = self.pose_hw
        x0, y0, x1, y1 = (float(v) for v in box)
        center = np.array([(x0 + x1) / 2, (y0 + y1) / 2], np.float32)
        bw, bh = (x1 - x0) * 1.25, (y1 - y0) * 1.25
        aspect = W / H
        if bw > bh * aspect:
            bh = bw / aspect
        else:
            bw = bh * aspect
        src = np.array([[center[0] - bw / 2, center[1] - bh / 2],
                        [center[0] + bw / 2, center[1] - bh / 2],
                        [center[0] - bw / 2, center[1] + bh / 2]], np.float32)
        dst = np.array([[0, 0], [W, 0], [0, H]], np.float32)
        m = cv2.getAffineTransform(src, dst)
        crop = cv2.warpAffine(rgb, m, (W, H), flags=cv2.INTER_LINEAR)
        x = ((crop.astype(np.float32) - MEAN) / STD).transpose(2, 0, 1)[None]
        sx, sy = self.pose.run(None, {self.pose.get_inputs()[0].name: np.ascontiguousarray(x)})
        sx, sy = np.asarray(sx)[0], np.asarray(sy)[0]
        loc, score = simcc_maximum(sx, sy, sx.shape[-1] / W, sy.shape[-1] / H)
        # crop pixels -> frame pixels
        loc = loc / np.array([W, H], np.float32) * np.array([bw, bh], np.float32) \
            + center - np.array([bw, bh], np.float32) / 2
        return loc, score.astype(np.float32)

    def __call__(self, rgb: np.ndarray) -> list[Detection]:
        """All people in ``rgb`` (uint8 (H, W, 3) RGB) in the OpenPose layouts, in pixels."""
        out: list[Detection] = []
        for box in self.detect_boxes(rgb):
            loc, score = self.keypoints(rgb, box)
            if loc.shape[0] < 133:
                raise ValueError(f"the DWPose pose model returned {loc.shape[0]} keypoints, "
                                 "expected 133 (COCO-WholeBody)")
            out.append(Detection(person=wholebody_to_person(loc, score), mask=None,
                                 score=float(np.clip(score[:17].mean(), 0, 1))))
        return out


def simcc_maximum(simcc_x: np.ndarray, simcc_y: np.ndarray, ratio_x: float = 2.0,
                  ratio_y: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """mmpose's ``get_simcc_maximum`` + ``decode`` for one instance.

    Args:
        simcc_x: (K, Wx) x-axis SimCC logits; simcc_y: (K, Wy) y-axis logits.
        ratio_x, ratio_y: SimCC split ratios (bins per input pixel; DWPose uses 2).
    Returns:
        (K, 2) locations in input pixels (arg-max bin / ratio; -1 / ratio where the score is
        not positive, as upstream marks them) and (K,) scores: the SMALLER of the two maxima.
    """
    sx = np.asarray(simcc_x, np.float32)
    sy = np.asarray(simcc_y, np.float32)
    locs = np.stack([sx.argmax(1), sy.argmax(1)], 1).astype(np.float32)
    vals = np.minimum(sx.max(1), sy.max(1)).astype(np.float32)
    locs[vals <= 0.0] = -1.0
    return locs / np.array([ratio_x, ratio_y], np.float32), vals


def wholebody_to_person(loc: np.ndarray, score: np.ndarray,
                        threshold: float = KEYPOINT_THRESHOLD) -> Person:
    """COCO-WholeBody 133 keypoints (pixels, scores) -> :class:`Person` (OpenPose layouts).

    Visibility as DWPose's annotator decides it: a body point is kept when its score is
    ``> threshold``; face and hand points unless their score is ``< threshold``. The neck is
    the shoulders' midpoint when both shoulders are kept (its score: the smaller of theirs,
    where upstream writes 1).
    """
    def pack(rows: slice | list[int], strict: bool) -> np.ndarray:
        arr = np.concatenate([loc[rows], score[rows, None]], 1).astype(np.float32)
        hidden = arr[:, 2] <= threshold if strict else arr[:, 2] < threshold
        arr[hidden] = 0.0
        return arr

    coco = pack(slice(0, 17), strict=True)
    body = np.zeros((NUM_BODY, 3), np.float32)
    for i, j in enumerate(BODY_FROM_COCO):
        if j >= 0:
            body[i] = coco[j]
    if coco[5, 2] > 0 and coco[6, 2] > 0:
        body[1] = ((coco[5, 0] + coco[6, 0]) / 2, (coco[5, 1] + coco[6, 1]) / 2,
                   min(coco[5, 2], coco[6, 2]))
    face = np.zeros((NUM_FACE, 3), np.float32)
    face[:68] = pack(slice(23, 91), strict=False)
    for pupil, eye in ((68, slice(36, 42)), (69, slice(42, 48))):
        e = face[eye]
        if (e[:, 2] > 0).all():
            face[pupil] = (e[:, 0].mean(), e[:, 1].mean(), e[:, 2].min())
    left = pack(slice(91, 91 + NUM_HAND), strict=False)
    right = pack(slice(112, 112 + NUM_HAND), strict=False)
    return Person(body=body, face=face, left_hand=left, right_hand=right)
