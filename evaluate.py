"""``reenact evaluate``: the paper's reconstruction protocol from the command line.

The target person is a frame of the driver video itself, so the video is the ground truth.
Either a pipeline renders the video from that frame (``--pipeline NAME`` from
:data:`PIPELINES`, or ``--pipeline package.module:function``), or the frames some pipeline
already rendered are given (``--pred``). Every metric is written per frame and averaged to
``metrics.csv`` and ``metrics.json``.

A pipeline is ``fn(target: uint8 (H, W, 3), driver: Iterator[uint8 (H, W, 3)], **options)
-> Iterable[uint8 (H, W, 3)]``, one output frame per driver frame, at the driver's size.
"""

from __future__ import annotations

import argparse
import importlib
import logging
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

Pipeline = Callable[..., Iterable[np.ndarray]]


def still_pipeline(target: np.ndarray, driver: Iterator[np.ndarray],
                   **_: Any) -> Iterator[np.ndarray]:
    """The do-nothing baseline: the target frame held for every driver frame (what any
    reenactment must beat)."""
    for _frame in driver:
        yield target


def offline_pipeline(target: np.ndarray, driver: Iterator[np.ndarray],
                     **options: Any) -> Iterator[np.ndarray]:
    """The whole method with the weightless backends (models/pipeline.py); ``options`` are
    :class:`PipelineConfig` fields (e.g. ``face="none"``)."""
    from .models.pipeline import PipelineConfig, reenact

    frames, _ = reenact(target, driver_frames=lambda: driver, cfg=PipelineConfig(**options))
    return frames


# name -> pipeline
PIPELINES: dict[str, Pipeline] = {"still": still_pipeline, "offline": offline_pipeline}


def get_pipeline(name: str) -> Pipeline:
    """A pipeline from :data:`PIPELINES` or a ``package.module:function`` path."""
    if name in PIPELINES:
        return PIPELINES[name]
    if ":" not in name:
        raise ValueError(f"unknown pipeline {name!r}: use one of {', '.join(PIPELINES)} or "
                         "'package.module:function'")
    mod, _, fn = name.partition(":")
    try:
        obj = getattr(importlib.import_module(mod), fn)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"pipeline {name!r} cannot be imported ({exc})") from exc
    if not callable(obj):
        raise ValueError(f"pipeline {name!r} is not callable")
    return obj


def _skip(it: Iterable[Any], index: int | None) -> Iterator[Any]:
    for i, x in enumerate(it):
        if i != index:
            yield x


def add_parser(sub: Any) -> None:
    p = sub.add_parser("evaluate", help="score a reconstruction against its driver video "
                       "(SSIM, PSNR, LPIPS, FID, SSBS/SSIS, DPBS/DPIS)",
                       description=__doc__.split("\n\n")[1])
    p.add_argument("--gt", required=True, help="the driver video (file or folder of frames)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--pred", help="rendered frames (video file or folder), one per gt frame")
    src.add_argument("--pipeline", help=f"render now: one of {', '.join(PIPELINES)} or "
                     "package.module:function")
    p.add_argument("--target-frame", type=int, default=0,
                   help="with --pipeline: the frame used as the target photo")
    p.add_argument("--keep-target-frame", action="store_true",
                   help="also score the target frame itself (excluded by default)")
    p.add_argument("--pred-parsing", help="folder of predicted label maps (PNG/NPY)")
    p.add_argument("--gt-parsing", help="folder of ground-truth label maps (PNG/NPY)")
    p.add_argument("--pred-densepose", help="folder of predicted DensePose I maps (PNG/NPY)")
    p.add_argument("--gt-densepose", help="folder of ground-truth DensePose I maps")
    p.add_argument("--mask", help="folder of masks: PSNR/SSIM inside them only")
    p.add_argument("--densepose-backend", choices=["weightless", "densepose_r50"],
                   help="without DensePose folders: estimate DensePose on the predicted and "
                   "the real frames with this backend (DPBS/DPIS as in the paper)")
    p.add_argument("--pose-backend", default="mediapipe",
                   help="keypoints for --densepose-backend weightless (mediapipe, openpose, "
                   "dwpose)")
    p.add_argument("--lpips", nargs="*", default=[], choices=["vgg", "squeeze", "alex"],
                   help="LPIPS backbones (vgg through the registry; squeeze/alex need "
                   "--lpips-backbone)")
    p.add_argument("--lpips-backbone", action="append", default=[], metavar="NET=FILE",
                   help="ImageNet backbone weights for an LPIPS net, e.g. "
                   "squeeze=squeezenet1_1-b8a52dc0.pth")
    p.add_argument("--fid", action="store_true", help="also compute FID (>= 2 frames)")
    p.add_argument("--psnr-cap", type=float, default=100.0)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    p.add_argument("--out", default="out/evaluate", help="folder for metrics.csv/.json")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from .models import metrics as M
    from .models.evaluation import (
        evaluate_reconstruction,
        iter_frames,
        iter_label_maps,
        iter_masks,
        make_densepose_estimator,
    )

    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu")
                          if args.device == "auto" else args.device)
    backbones: dict[str, str] = {}
    for item in args.lpips_backbone:
        net, sep, path = item.partition("=")
        if not sep or net not in ("vgg", "squeeze", "alex"):
            raise ValueError(f"--lpips-backbone {item!r}: write NET=FILE with NET in "
                             "vgg/squeeze/alex")
        backbones[net] = path
    lpips_models = {net: M.load_lpips(net, backbone_weights=backbones.get(net), device=device)
                    for net in args.lpips}
    fid_model = M.load_fid_inception(device=device) if args.fid else None
    dp_estimator = None
    if args.densepose_backend and not (args.pred_densepose or args.gt_densepose):
        dp_estimator = make_densepose_estimator(args.densepose_backend,
                                                pose_backend=args.pose_backend, device=device)

    skip = None
    if args.pipeline:
        pipeline = get_pipeline(args.pipeline)
        target = None
        for i, frame in enumerate(iter_frames(args.gt)):
            if i == args.target_frame:
                target = frame
                break
        if target is None:
            raise ValueError(f"--target-frame {args.target_frame} is past the end of {args.gt}")
        pred: Iterable[np.ndarray] = pipeline(target, iter_frames(args.gt))
        skip = None if args.keep_target_frame else args.target_frame
    else:
        pred = iter_frames(args.pred)

    def opt(path: str | None, reader: Callable[[str], Iterable[Any]]) -> Iterable[Any] | None:
        return None if path is None else _skip(reader(path), skip)

    result = evaluate_reconstruction(
        _skip(pred, skip), _skip(iter_frames(args.gt), skip),
        opt(args.pred_parsing, iter_label_maps), opt(args.gt_parsing, iter_label_maps),
        pred_densepose=opt(args.pred_densepose, iter_label_maps),
        gt_densepose=opt(args.gt_densepose, iter_label_maps),
        masks=opt(args.mask, iter_masks), lpips_models=lpips_models, fid_model=fid_model,
        frame_indices=_skip(range(1 << 30), skip), densepose_estimator=dp_estimator,
        psnr_cap=args.psnr_cap, device=device,
        progress=lambda done, _t: logger.debug("frame %d", done))
    total = len(result.rows)
    result.config.update({"gt": str(args.gt), "pred": args.pred, "pipeline": args.pipeline,
                          "target_frame": args.target_frame if args.pipeline else None,
                          "device": str(device)})
    csv_path, json_path = result.write(Path(args.out))
    print(result.table())
    print(f"{total} frames scored")
    print(f"csv: {csv_path}")
    print(f"json: {json_path}")
    return 0
