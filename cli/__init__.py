"""The standalone command line: ``reenact <subcommand>``.

It calls the same library functions as the nodes (its streamed driver is ``pipeline.py``).
Besides ``run``, ``demo`` and ``weights``, the subcommands come from ``cli/evaluate.py``
(``evaluate``) and ``training/cli.py`` (``train``, ``prepare``), imported by name below.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

log = logging.getLogger("reenact")


def _cmd_weights(args: argparse.Namespace) -> int:
    from ..models.io import weights

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
    from ..pipeline import PipelineConfig

    return PipelineConfig(pose_backend=args.pose_backend, parse_backend=args.parse_backend,
                          p2b=args.p2b, densepose=args.densepose, b2f=args.b2f, face=args.face,
                          min_face_px=args.min_face_px, inpaint=args.inpaint,
                          smooth=not args.no_smooth, stabilize=not args.no_stabilize,
                          feather=args.feather, device=args.device)


def _read_image(path: str, role: str = "image") -> object:
    """An image file -> uint8 RGB; alpha is composited over white (as the nodes do)."""
    import numpy as np
    from PIL import Image

    p = Path(path)
    if not p.is_file():
        raise ValueError((f"the {role} {p} does not exist" if not p.exists()
                          else f"the {role} {p} is not a file") + ". Fix: check the path")
    try:
        with Image.open(p) as im:
            im.load()
            if im.mode in ("I;16", "I;16B", "I;16L", "I"):  # 16-bit grey: keep its range
                arr = np.asarray(im, dtype=np.float64)
                top = 65535.0 if arr.max() > 255 else 255.0
                return np.repeat((arr / top * 255 + 0.5).clip(0, 255).astype(np.uint8)
                                 [..., None], 3, axis=2)
            has_alpha = im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info
            if not has_alpha:
                return np.asarray(im.convert("RGB"))
            rgba = np.asarray(im.convert("RGBA")).astype(np.float32)
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read the {role} {p}: {exc}. Fix: give a PNG or JPEG "
                         "file") from exc
    alpha = rgba[..., 3:4] / 255.0
    return (rgba[..., :3] * alpha + 255.0 * (1.0 - alpha) + 0.5).astype(np.uint8)


def _is_video(path: str) -> bool:
    return Path(path).suffix.lower() in {".mp4", ".mov", ".avi", ".mkv", ".webm", ".gif",
                                         ".m4v"}


def _same_file(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return a.resolve() == b.resolve()


def _plan_output(args: argparse.Namespace, inputs: dict[str, Path]) -> Path:
    """Where this run writes its video, checked before any work: not an input, in a folder
    that exists or can be made and is writable; an existing file is replaced only with
    ``--overwrite`` (else the next free name is taken and said)."""
    from ..models.io.video import VideoError, free_path
    from ..pipeline import sheet_path

    video = Path(args.out).with_suffix(".mp4")
    for out in (video, sheet_path(video)):
        for role, path in inputs.items():
            if _same_file(out, path):
                raise ValueError(f"--out {args.out}: {out} is the {role} {path}; refusing to "
                                 "write over an input. Fix: choose another --out")
    blocker = next((p for p in [video.parent, *video.parent.parents] if p.exists()), None)
    if blocker is not None and not blocker.is_dir():
        raise ValueError(f"--out {args.out}: {blocker} is a file, not a folder. Fix: choose "
                         "an --out in a folder")
    try:
        video.parent.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".reenact-write-test-", dir=video.parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ValueError(f"--out {args.out}: cannot write in the folder {video.parent} "
                         f"({exc.strerror or exc}). Fix: choose an --out in a folder you can "
                         "write to") from exc
    taken = [p for p in (video, sheet_path(video)) if p.exists()]
    if taken and args.overwrite:
        log.info("replacing %s (--overwrite)", " and ".join(map(str, taken)))
    elif taken:
        try:
            chosen = free_path(video, lambda p: [sheet_path(p)])
        except VideoError as exc:
            raise ValueError(f"--out {args.out}: {exc}") from exc
        log.warning("%s already exists: writing %s instead (pass --overwrite to replace it)",
                    " and ".join(map(str, taken)), chosen)
        video = chosen
    return video


def _check_weights(cfg: object, inputs: dict[str, Path]) -> None:
    """Every weight file this configuration needs, checked (or fetched) up front: a missing
    checkpoint is reported in seconds, not after the driver pass."""
    from ..models.io import weights
    from ..models.io.loading import check_checkpoint
    from ..models.perception.pose import POSE_WEIGHTS

    names: list[str] = list(POSE_WEIGHTS.get(cfg.pose_backend, ()))  # type: ignore[attr-defined]
    if cfg.parse_backend != "geometric":  # type: ignore[attr-defined]
        names.append(cfg.parse_backend)  # type: ignore[attr-defined]
    if cfg.inpaint == "lama":  # type: ignore[attr-defined]
        names.append("big_lama")
    for flag, arch, weightless, train in (
            ("p2b", "P2BGenerator", ("warp",), "p2b"), ("b2f", "B2FGenerator", ("warp",), "b2f"),
            ("face", "FaceRefineNet", ("weightless", "none"), "face")):
        value = getattr(cfg, flag)
        if value in weightless:
            continue
        path = Path(value)
        if not path.is_file():
            raise ValueError(f"--{flag} {value}: no such file. Fix: give a {arch} .safetensors "
                             f"written by `reenact train {train}`, or --{flag} {weightless[0]}")
        check_checkpoint(path, expected_arch=arch)
        inputs[f"--{flag} checkpoint"] = path
        if flag == "b2f":
            names += ["facenet_vggface2", "vgg19"]
        if flag == "p2b" and cfg.densepose == "densepose_r50":  # type: ignore[attr-defined]
            names.append("densepose_r50")
    for name in names:
        weights.resolve(name)


def _driver_audio(video: Path, driver: str) -> None:
    """The driver's sound under the output, as the workflows keep it (the video is kept
    silent, with a warning, when the audio cannot be copied)."""
    from ..models.io.video import VideoError, copy_audio

    try:
        if not copy_audio(video, driver):
            log.info("the --driver video has no audio: %s is silent", video)
    except (VideoError, OSError, ValueError) as exc:
        log.warning("could not copy the --driver video's audio into %s (%s); the video is "
                    "kept, silent", video, exc)


def _driver_reader(path: str, role: str, total: int) -> object:
    """A factory of frame iterators over a video, each pass shown as a progress bar."""
    from tqdm.auto import tqdm

    from ..models.io.video import read_video

    def frames() -> object:
        with tqdm(total=total or None, desc=role, unit="frame", mininterval=1.0) as bar:
            for f in read_video(path, role):
                yield f
                bar.update()

    return frames


def _cmd_run(args: argparse.Namespace) -> int:
    """The whole method on a photo and a driver video (or motion clip)."""
    import time

    from ..models.geometry.motion import load_motion
    from ..models.io.video import probe_video
    from ..pipeline import reenact, write_outputs

    # Everything that can be checked in seconds is checked before the long passes: inputs,
    # the output path, the weights; the target photo's person comes first inside reenact().
    inputs: dict[str, Path] = {"--target photo": Path(args.target)}
    target = _read_image(args.target, "--target photo")
    kwargs: dict = {}
    if args.driver:
        info = probe_video(args.driver, "--driver video")
        inputs["--driver video"] = Path(args.driver)
        kwargs["driver_frames"] = _driver_reader(args.driver, "--driver video", info.frames)
        kwargs["fps"] = info.fps
    else:
        frames, fps = load_motion(args.motion)
        if args.max_frames:
            frames = frames[: args.max_frames]
        kwargs["driver_pose"], kwargs["fps"] = frames, fps
    if args.background == "driver":
        kwargs["background"] = "driver"
    elif args.background:
        bg = args.background
        inputs["--background"] = Path(bg)
        if _is_video(bg):
            bg_info = probe_video(bg, "--background video")
            kwargs["background"] = _driver_reader(bg, "--background video", bg_info.frames)
        else:
            kwargs["background"] = _read_image(bg, "--background image")
    cfg = _config(args)
    _check_weights(cfg, inputs)
    video_out = _plan_output(args, inputs)
    t0 = time.perf_counter()
    frames_it, info = reenact(target, cfg=cfg, on_frame=_progress("reenact"), **kwargs)
    video, sheet, n = write_outputs(frames_it, info, video_out, overwrite=args.overwrite)
    took = time.perf_counter() - t0
    if args.driver:
        _driver_audio(video, args.driver)
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
    from ..pipeline import PipelineConfig

    d = PipelineConfig()  # one set of defaults: the offline_weightless workflow's
    p.add_argument("--pose-backend", default=d.pose_backend,
                   choices=["mediapipe", "openpose", "dwpose"])
    p.add_argument("--parse-backend", default=d.parse_backend,
                   choices=["geometric", "schp_lip", "schp_lip_onnx"])
    p.add_argument("--p2b", default=d.p2b, help="'warp' or a P2B .safetensors file")
    p.add_argument("--densepose", default=d.densepose, choices=["densepose_r50", "weightless"],
                   help="what a learned --p2b reads: the DensePose network (as full_method.json)"
                        " or DensePose drawn from the keypoints")
    p.add_argument("--b2f", default=d.b2f, help="'warp' or a B2F .safetensors file")
    p.add_argument("--face", default=d.face,
                   help="'weightless' (landmark paste), 'none', or a FaceRefineNet .safetensors")
    p.add_argument("--min-face-px", type=int, default=d.min_face_px,
                   help="faces smaller than this pass FaceRefine unchanged")
    p.add_argument("--inpaint", default=d.inpaint, choices=["patchmatch", "opencv", "lama"])
    p.add_argument("--no-smooth", action="store_true", help="keep driver keypoints raw")
    p.add_argument("--no-stabilize", action="store_true",
                   help="no motion-gated mask averaging (Stabilize Mask)")
    p.add_argument("--feather", type=float, default=d.feather, help="mask feather, px")
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
    r.add_argument("--driver", default=None,
                   help="driver video: any file FFmpeg reads, or an animated WebP (else --motion)")
    r.add_argument("--background", default=None,
                   help="image or video file, or 'driver' (the driver's clean plate); "
                        "default: the target photo inpainted")
    r.add_argument("--out", default="out/reenact.mp4", help="output MP4 path")
    r.add_argument("--overwrite", action="store_true",
                   help="replace an existing --out (default: write to the next free name)")
    _add_pipeline_args(r)
    r.set_defaults(func=_cmd_run)

    d = sub.add_parser("demo", help="the offline demo: astronaut + shipped motion, no download")
    d.add_argument("--out", default="out/demo", help="output folder")
    d.add_argument("--overwrite", action="store_true",
                   help="replace an earlier demo.mp4 (default: write to the next free name)")
    _add_pipeline_args(d)
    d.set_defaults(func=_cmd_demo)

    from ..training import cli as training_cli
    from . import evaluate

    evaluate.add_parser(sub)
    training_cli.add_parser(sub)
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
        out = getattr(args, "out", None)
        print(f"interrupted: nothing was written{f' to {out}' if out else ''} (its partial "
              "file was removed)", file=sys.stderr)
        return 130
    except (ValueError, RuntimeError) as exc:  # our errors are written for people
        log.error("%s", _strip_unsafe_advice(str(exc)))
        return 1
    except OSError as exc:  # a file we did not foresee: name it, no traceback
        where = f" {exc.filename}" if exc.filename else ""
        log.error("cannot access%s: %s. Fix: check the path and its permissions", where,
                  exc.strerror or exc)
        return 1


def _strip_unsafe_advice(message: str) -> str:
    from ..models.io.loading import strip_unsafe_advice

    return strip_unsafe_advice(message)
