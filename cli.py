"""The standalone command line: ``reenact <subcommand>``.

It calls the same library functions as the nodes. Subcommands live in modules that expose
``add_parser(subparsers)``; the list below is the only place that names them.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

_COMMAND_MODULES: tuple[str, ...] = ("evaluate", "training.cli")


def _cmd_weights(args: argparse.Namespace) -> int:
    from .models import weights

    if args.action == "list":
        for name, spec in weights.REGISTRY.items():
            local = weights.find_local(spec)
            state = f"present at {local}" if local else "not downloaded"
            print(f"{name:20s} {spec.repo_id}/{spec.filename} [{spec.license}] - {state}")
        print(f"download folder: {weights.search_roots()[0]}")
        return 0
    for name in args.names:
        print(weights.resolve(name))
    return 0


def _progress(total_hint: str) -> object:
    from tqdm.auto import tqdm

    bar = tqdm(desc=total_hint, unit="frame", mininterval=2.0)

    def update(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)

    return update


def _config(args: argparse.Namespace) -> object:
    from .models.pipeline import PipelineConfig

    return PipelineConfig(pose_backend=args.pose_backend, parse_backend=args.parse_backend,
                          p2b=args.p2b, b2f=args.b2f, face=args.face, inpaint=args.inpaint,
                          smooth=not args.no_smooth, device=args.device)


def _read_image(path: str) -> object:
    import numpy as np
    from PIL import Image

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read image {path}: {exc}") from exc


def _is_video(path: str) -> bool:
    return Path(path).suffix.lower() in {".mp4", ".mov", ".avi", ".mkv", ".webm", ".gif",
                                         ".m4v"}


def _cmd_run(args: argparse.Namespace) -> int:
    """The whole method on a photo and a driver video (or motion clip)."""
    import time

    from .models.motion import load_motion
    from .models.pipeline import reenact, write_outputs
    from .models.video_io import read_video, video_fps

    target = _read_image(args.target)
    kwargs: dict = {}
    if args.driver:
        if not Path(args.driver).is_file():
            raise ValueError(f"driver video {args.driver} does not exist")
        kwargs["driver_frames"] = lambda: read_video(args.driver)
        kwargs["fps"] = video_fps(args.driver)
    else:
        frames, fps = load_motion(args.motion)
        if args.max_frames:
            frames = frames[: args.max_frames]
        kwargs["driver_pose"], kwargs["fps"] = frames, fps
    if args.background == "driver":
        kwargs["background"] = "driver"
    elif args.background:
        bg = args.background
        if not Path(bg).is_file():
            raise ValueError(f"background {bg} does not exist")
        kwargs["background"] = (lambda: read_video(bg)) if _is_video(bg) else _read_image(bg)
    t0 = time.perf_counter()
    frames_it, info = reenact(target, cfg=_config(args), on_frame=_progress("reenact"),
                              **kwargs)
    video, sheet, n = write_outputs(frames_it, info, Path(args.out))
    took = time.perf_counter() - t0
    print(f"video: {video}")
    print(f"contact sheet: {sheet}")
    print(f"{n} frames at {info['width']}x{info['height']}, {info['fps']:g} fps, "
          f"in {took:.1f} s ({n / max(took, 1e-9):.2f} frames/s)")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    """The offline demo: the astronaut photo (scikit-image) dancing the shipped motion."""
    try:
        from skimage import data
    except ImportError as exc:
        raise ValueError("the demo needs scikit-image for its photo: pip install "
                         "scikit-image (or use `reenact run --target PHOTO`)") from exc
    from PIL import Image

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    target = out / "astronaut.png"
    Image.fromarray(data.astronaut()).save(target)
    args.target, args.driver, args.background = str(target), None, None
    args.out = str(out / "demo.mp4")
    return _cmd_run(args)


def _add_pipeline_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pose-backend", default="mediapipe",
                   choices=["mediapipe", "openpose", "dwpose"])
    p.add_argument("--parse-backend", default="geometric",
                   choices=["geometric", "schp_lip", "schp_lip_onnx"])
    p.add_argument("--p2b", default="warp", help="'warp' or a P2B .safetensors file")
    p.add_argument("--b2f", default="warp", help="'warp' or a B2F .safetensors file")
    p.add_argument("--face", default="weightless", choices=["weightless", "none"])
    p.add_argument("--inpaint", default="patchmatch", choices=["patchmatch", "opencv", "lama"])
    p.add_argument("--no-smooth", action="store_true", help="keep driver keypoints raw")
    p.add_argument("--device", default=None, help="torch device (default: cuda if present)")
    p.add_argument("--motion", default="upper_body_dance",
                   help="shipped motion clip name or JSON path (when no --driver)")
    p.add_argument("--max-frames", type=int, default=0, help="only the first N motion frames")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="reenact", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    w = sub.add_parser("weights", help="list or download registered weight files")
    w.add_argument("action", choices=["list", "fetch"])
    w.add_argument("names", nargs="*", help="registry names for 'fetch'")
    w.set_defaults(func=_cmd_weights)

    r = sub.add_parser("run", help="reenact: a target photo dancing a driver video")
    r.add_argument("--target", required=True, help="photo of the person (any size)")
    r.add_argument("--driver", default=None, help="driver video (else --motion)")
    r.add_argument("--background", default=None,
                   help="image or video file, or 'driver' (the driver's clean plate); "
                        "default: the target photo inpainted")
    r.add_argument("--out", default="out/reenact.mp4", help="output MP4 path")
    _add_pipeline_args(r)
    r.set_defaults(func=_cmd_run)

    d = sub.add_parser("demo", help="the offline demo: astronaut + shipped motion, no download")
    d.add_argument("--out", default="out/demo", help="output folder")
    _add_pipeline_args(d)
    d.set_defaults(func=_cmd_demo)

    for mod in _COMMAND_MODULES:
        importlib.import_module(f".{mod}", __package__).add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("--target", "--driver", "--background", "--out"):
        argv.insert(0, "run")  # `reenact --target PHOTO --driver VIDEO --out OUT.mp4`
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except (ValueError, RuntimeError) as exc:  # our errors are written for people
        logging.getLogger("reenact").error("%s", exc)
        return 1


if __name__ == "__main__":
    sys.exit(main())
