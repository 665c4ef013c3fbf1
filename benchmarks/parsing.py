"""Human-parsing speed at 512x320 (portrait, as B2F renders): every backend, this machine.

    python benchmarks/parsing.py                   # 5 frames per backend, CPU
    python benchmarks/parsing.py --frames 20 --size 512x320 --onnx

Measures per frame, after one warm-up frame:
- ``mediapipe``: MediaPipe Holistic keypoints + person mask (what the node runs when no
  POSE_KEYPOINT is connected);
- ``geometric``: the weightless parser given those keypoints and mask;
- ``schp_lip``: SCHP LIP ResNet-101 at 473x473 + LIP -> schema + hands. Uses the real
  checkpoint when it is present in the weight folders (no download is attempted); otherwise a
  randomly initialised network of the exact architecture — same speed, meaningless labels —
  and the table says so;
- ``schp_lip_onnx`` (with ``--onnx``): the same network through onnxruntime (the real export if
  present, else an export of the random network made here, which takes a minute).

Prints a Markdown table; docs/nodes.md ("Human parsing") points here.
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

if __package__ in (None, ""):  # run as a script from a clone: make the pack importable
    root = Path(__file__).resolve().parents[1]
    try:
        import dance_reenact  # noqa: F401
    except ImportError:
        import types

        pkg = types.ModuleType("dance_reenact")
        pkg.__path__ = [str(root)]  # type: ignore[attr-defined]
        sys.modules["dance_reenact"] = pkg

from dance_reenact.models.core.schema import Person  # noqa: E402
from dance_reenact.models.io import weights  # noqa: E402
from dance_reenact.models.perception import schp  # noqa: E402
from dance_reenact.models.perception.human_parsing import HumanParser  # noqa: E402

logger = logging.getLogger("benchmarks.parsing")


def test_frame(height: int, width: int) -> np.ndarray:
    """The astronaut photo cropped to the aspect and resized (uint8 (H, W, 3))."""
    import cv2
    from skimage import data

    img = data.astronaut()
    h, w = img.shape[:2]
    aspect = width / height
    cw = min(w, int(round(h * aspect)))
    ch = min(h, int(round(cw / aspect)))
    x0 = (w - cw) // 2
    crop = img[:ch, x0:x0 + cw]
    return cv2.resize(crop, (width, height), interpolation=cv2.INTER_AREA)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def timed(fn, frames: int) -> float:
    """Mean seconds per call over ``frames`` calls after one warm-up call."""
    fn()
    t0 = time.perf_counter()
    for _ in range(frames):
        fn()
    return (time.perf_counter() - t0) / frames


def random_net(rgb: np.ndarray) -> schp.SCHPNet:
    return schp.random_schp([rgb, rgb[::-1].copy()])


def schp_parser(device: str, rgb: np.ndarray) -> tuple[HumanParser, str]:
    try:
        path = weights.resolve("schp_lip", allow_download=False)
        return HumanParser("schp_lip", device=device, weights=path), "real checkpoint"
    except weights.WeightError:
        pass
    net = random_net(rgb)
    tmp = Path(tempfile.mkdtemp(prefix="schp-bench-")) / "random-schp-lip.pth"
    torch.save({"state_dict": {"module." + k: v for k, v in net.state_dict().items()}}, tmp)
    return HumanParser("schp_lip", device=device, weights=tmp), \
        "GENERATED random weights (real file absent)"


def onnx_parser(device: str, rgb: np.ndarray) -> tuple[HumanParser, str]:
    try:
        path = weights.resolve("schp_lip_onnx", allow_download=False)
        return HumanParser("schp_lip_onnx", device=device, weights=path), "real export"
    except weights.WeightError:
        pass
    net = random_net(rgb)
    path = Path(tempfile.mkdtemp(prefix="schp-bench-")) / "random-parsing_lip.onnx"
    with torch.inference_mode():
        torch.onnx.export(net, torch.zeros(1, 3, 473, 473), str(path), dynamo=False,
                          input_names=["input.1"], opset_version=11)
    return HumanParser("schp_lip_onnx", device=device, weights=path), \
        "GENERATED random weights (real file absent)"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="512x320", help="HEIGHTxWIDTH (default 512x320)")
    ap.add_argument("--frames", type=int, default=5)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--onnx", action="store_true", help="also time the ONNX backend")
    ap.add_argument("--threads", type=int, default=0,
                    help="torch threads (0 = torch's default); on a busy shared machine 1 is "
                         "often faster than all cores")
    args = ap.parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    height, width = (int(v) for v in args.size.lower().split("x"))
    rgb = test_frame(height, width)
    rows: list[tuple[str, str, float]] = []

    person, mask = Person(), None
    try:
        from dance_reenact.models.perception.mediapipe_holistic import detect_people

        dets = detect_people(rgb)
        if dets:
            person, mask = dets[0].person, dets[0].mask
        rows.append(("mediapipe (keypoints + mask)", "in the wheel",
                     timed(lambda: detect_people(rgb), args.frames)))
    except (ImportError, RuntimeError) as exc:
        logger.warning("MediaPipe unavailable (%s): the geometric backend gets no keypoints", exc)

    geo = HumanParser("geometric")
    rows.append(("geometric", "none", timed(lambda: geo.parse(rgb, person, mask=mask),
                                            args.frames)))
    parser, source = schp_parser(args.device, rgb)
    rows.append(("schp_lip", source, timed(lambda: parser.parse(rgb, person), args.frames)))
    if args.onnx:
        oparser, osource = onnx_parser(args.device, rgb)
        rows.append(("schp_lip_onnx", osource, timed(lambda: oparser.parse(rgb, person),
                                                     args.frames)))

    threads = torch.get_num_threads()
    print(f"\nHuman parsing, {height}x{width} frame, {args.frames} frames after a warm-up, "
          f"device {args.device}, torch threads {threads}, cores {os.cpu_count()}:\n")
    print("| backend | weights | ms / frame | frames / s |")
    print("|---|---|---|---|")
    for name, src, sec in rows:
        print(f"| {name} | {src} | {sec * 1000:.0f} | {1.0 / sec:.2f} |")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\npeak RSS {peak_rss_mb():.0f} MB; 1-minute load average {load:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
