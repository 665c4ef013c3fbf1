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
    """The whole method with the weightless backends (pipeline.py); ``options`` are
    :class:`PipelineConfig` fields (e.g. ``face="none"``)."""
    from ..pipeline import PipelineConfig, reenact

    frames, _ = reenact(target, driver_frames=lambda: driver, cfg=PipelineConfig(**options))
    return frames


def blank_pipeline(target: np.ndarray, driver: Iterator[np.ndarray],
                   **_: Any) -> Iterator[np.ndarray]:
    """The floor: a black frame for every driver frame (nobody shown). Every metric must rank
    it below the still baseline, or the metric can be gamed."""
    for frame in driver:
        yield np.zeros_like(np.asarray(frame))


# name -> pipeline
PIPELINES: dict[str, Pipeline] = {"still": still_pipeline, "offline": offline_pipeline,
                                  "blank": blank_pipeline}

# --protocol: the method and the baseline it must beat, scored in one table
PROTOCOL_METHODS = (("offline", "weightless pipeline (pipeline.py reenact)"),
                    ("still", "still baseline: the target frame held"))


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
    src.add_argument("--protocol", action="store_true",
                     help="the paper's whole protocol in one command: target = the first gt "
                     "frame with a person (or --target-frame), the weightless pipeline and "
                     "the still baseline rendered from it, parsing (--parsing-backend) and "
                     "DensePose (--densepose-backend) of both and of the gt, SSIM, PSNR, "
                     "LPIPS (vgg unless --lpips says otherwise), FID (unless --no-fid); one "
                     "table, one row per method")
    p.add_argument("--target-frame", type=int, default=None,
                   help="with --pipeline: the frame used as the target photo (default 0); "
                   "with --protocol: default the first frame with a person")
    p.add_argument("--parsing-backend", choices=["geometric", "schp_lip", "schp_lip_onnx"],
                   help="without parsing folders: parse the predicted and the real frames "
                   "with this backend (SSBS/SSIS); --protocol default geometric")
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
    p.add_argument("--lpips", nargs="*", default=None, choices=["vgg", "squeeze", "alex"],
                   help="LPIPS backbones (vgg through the registry; squeeze/alex need "
                   "--lpips-backbone); --protocol default vgg, '--lpips' alone for none")
    p.add_argument("--lpips-backbone", action="append", default=[], metavar="NET=FILE",
                   help="ImageNet backbone weights for an LPIPS net, e.g. "
                   "squeeze=squeezenet1_1-b8a52dc0.pth")
    p.add_argument("--fid", action="store_true", help="also compute FID (>= 2 frames)")
    p.add_argument("--no-fid", action="store_true", help="--protocol without FID")
    p.add_argument("--psnr-cap", type=float, default=100.0)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    p.add_argument("--out", default="out/evaluate", help="folder for metrics.csv/.json")
    p.set_defaults(func=run)


def first_person_frame(frames: Iterable[np.ndarray], pose_backend: str = "mediapipe",
                       device: Any = "cpu") -> tuple[int, np.ndarray]:
    """The index and pixels of the first frame where ``pose_backend`` finds a person."""
    from ..models.perception.pose import PoseEstimator

    estimator = PoseEstimator(pose_backend, device=device, video=False)
    for i, frame in enumerate(frames):
        rgb = np.ascontiguousarray(frame)
        if any(d.person.bbox() is not None for d in estimator(rgb)):
            return i, rgb
    raise ValueError(f"no frame of the ground-truth video shows a person ({pose_backend})")


def run(args: argparse.Namespace) -> int:
    import torch

    from ..models.metrics import scores as M
    from ..models.metrics.evaluation import (
        evaluate_reconstruction,
        iter_frames,
        iter_label_maps,
        iter_masks,
        make_densepose_estimator,
        make_parsing_estimator,
    )

    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu")
                          if args.device == "auto" else args.device)
    if args.protocol:
        return run_protocol(args, device)
    if args.lpips is None:
        args.lpips = []
    if args.target_frame is None:
        args.target_frame = 0
    lpips_models = _lpips_models(args, device)
    fid_model = M.load_fid_inception(device=device) if args.fid else None
    dp_estimator = None
    if args.densepose_backend and not (args.pred_densepose or args.gt_densepose):
        dp_estimator = make_densepose_estimator(args.densepose_backend,
                                                pose_backend=args.pose_backend, device=device)
    parse_estimator = None
    if args.parsing_backend and not (args.pred_parsing or args.gt_parsing):
        parse_estimator = make_parsing_estimator(args.parsing_backend,
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
        parsing_estimator=parse_estimator,
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


def _lpips_models(args: argparse.Namespace, device: Any) -> dict[str, Any]:
    from ..models.metrics import scores as M

    backbones: dict[str, str] = {}
    for item in args.lpips_backbone:
        net, sep, path = item.partition("=")
        if not sep or net not in ("vgg", "squeeze", "alex"):
            raise ValueError(f"--lpips-backbone {item!r}: write NET=FILE with NET in "
                             "vgg/squeeze/alex")
        backbones[net] = path
    return {net: M.load_lpips(net, backbone_weights=backbones.get(net), device=device)
            for net in args.lpips}


PROTOCOL_COLUMNS = ("frames", "ssim", "psnr", "lpips", "fid", "ssbs", "ssis", "dpbs", "dpis",
                    "both_empty")


def protocol_table(results: dict[str, Any], descriptions: dict[str, str]) -> str:
    """A Markdown table, one row per method, of the means (FID over the set) and the frames
    the shift-invariant scores left out (both maps empty)."""
    first = next(iter(results.values()))
    lp = [c for c in first.columns if c.startswith("lpips_")]
    cols = ["frames", "ssim", "psnr", *lp, "fid", "ssbs", "ssis", "dpbs", "dpis"]
    head = ["method", *cols, "both empty (parsing / DensePose)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, r in results.items():
        mean = r.mean
        cells = [f"{name}: {descriptions.get(name, name)}", str(len(r.rows))]
        for c in cols[1:]:
            v = r.fid if c == "fid" else mean.get(c)
            cells.append("-" if v is None or v != v else f"{v:.4g}")
        be = r.both_empty
        cells.append(f"{be.get('parsing', '-')} / {be.get('densepose', '-')}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run_protocol(args: argparse.Namespace, device: Any) -> int:
    """``--protocol``: target frame, prediction by every method of :data:`PROTOCOL_METHODS`,
    parsing and DensePose of prediction and ground truth, every metric, one table."""
    import json

    from ..models.metrics import scores as M
    from ..models.metrics.evaluation import (
        evaluate_reconstruction,
        iter_frames,
        make_densepose_estimator,
        make_parsing_estimator,
    )

    if args.pred_parsing or args.gt_parsing or args.pred_densepose or args.gt_densepose \
            or args.mask:
        raise ValueError("--protocol computes parsing and DensePose itself: drop the map "
                         "folders (or score given frames with --pred)")
    parsing_backend = args.parsing_backend or "geometric"
    densepose_backend = args.densepose_backend or "weightless"
    if args.lpips is None:
        args.lpips = ["vgg"]
    use_fid = not args.no_fid
    if args.target_frame is None:
        t_index, target = first_person_frame(iter_frames(args.gt), args.pose_backend, device)
        how = f"the first frame with a person ({args.pose_backend})"
    else:
        t_index, target = next(((i, f) for i, f in enumerate(iter_frames(args.gt))
                                if i == args.target_frame), (None, None))
        if target is None:
            raise ValueError(f"--target-frame {args.target_frame} is past the end of {args.gt}")
        how = "--target-frame"
    print(f"target: frame {t_index} of {args.gt} ({how}); it is left out of the scores"
          if not args.keep_target_frame else f"target: frame {t_index} ({how}), scored too")
    skip = None if args.keep_target_frame else t_index

    lpips_models = _lpips_models(args, device)
    fid_model = M.load_fid_inception(device=device) if use_fid else None
    parse = make_parsing_estimator(parsing_backend, pose_backend=args.pose_backend,
                                   device=device)
    dense = make_densepose_estimator(densepose_backend, pose_backend=args.pose_backend,
                                     device=device)
    # the ground truth's maps once (uint8 (H, W) each), reused for every method
    gt_parsing, gt_dense = [], []
    for frame in _skip(iter_frames(args.gt), skip):
        gt_parsing.append(parse(frame))
        gt_dense.append(dense(frame))
    out = Path(args.out)
    results = {}
    descriptions = dict(PROTOCOL_METHODS)
    for name, _desc in PROTOCOL_METHODS:
        pred = get_pipeline(name)(target, iter_frames(args.gt))
        results[name] = evaluate_reconstruction(
            _skip(pred, skip), _skip(iter_frames(args.gt), skip), gt_parsing=gt_parsing,
            gt_densepose=gt_dense, parsing_estimator=parse, densepose_estimator=dense,
            lpips_models=lpips_models, fid_model=fid_model,
            frame_indices=_skip(range(1 << 30), skip), psnr_cap=args.psnr_cap, device=device)
        results[name].config.update({"gt": str(args.gt), "pipeline": name,
                                     "target_frame": t_index, "device": str(device)})
        results[name].write(out, stem=f"metrics_{name}")
        logger.info("%s scored", name)
    table = protocol_table(results, descriptions)
    header = (f"Reconstruction protocol on `{args.gt}`: target = frame {t_index} ({how}); "
              f"parsing `{parsing_backend}`, DensePose `{densepose_backend}` (poses "
              f"`{args.pose_backend}`) on prediction and ground truth; LPIPS "
              f"{', '.join(args.lpips) or 'off'}; FID {'on' if use_fid else 'off'}. "
              "SSBS/SSIS/DPBS/DPIS leave out frames where both maps are empty (counted in "
              "the last column).")
    print(header)
    print(table)
    out.mkdir(parents=True, exist_ok=True)
    (out / "protocol.md").write_text(header + "\n\n" + table + "\n")
    (out / "protocol.json").write_text(json.dumps({
        "gt": str(args.gt), "target_frame": t_index, "target_frame_rule": how,
        "parsing_backend": parsing_backend, "densepose_backend": densepose_backend,
        "pose_backend": args.pose_backend, "lpips": args.lpips, "fid": use_fid,
        "methods": {n: {"description": descriptions[n], "frames": len(r.rows),
                        "mean": {k: (None if v != v else v) for k, v in r.mean.items()},
                        "fid": r.fid, "both_empty": r.both_empty}
                    for n, r in results.items()}}, indent=1))
    print(f"table: {out / 'protocol.md'}")
    return 0
