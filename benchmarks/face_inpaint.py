"""Per-frame times of FaceRefine and Inpaint at 512x320 (portrait, H=512, W=320) on this machine.

Run: ``python benchmarks/face_inpaint.py [--frames 300]`` (with the pack importable as
``dance_reenact``). Prints one line per stage: ms per frame, and for the 300-frame temporal
median the peak resident memory above the decoded input. Uses the astronaut photo and
synthetic videos; big-LaMa is timed only when its weight file is already present.
"""

from __future__ import annotations

import argparse
import logging
import resource
import time

import cv2
import numpy as np
import torch


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _portrait(img: np.ndarray, h: int = 512, w: int = 320) -> np.ndarray:
    """Centre-crop the astronaut to 512x320 with her face in frame."""
    return np.ascontiguousarray(cv2.resize(img, (512, 512))[:h, 96:96 + w])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--repeat", type=int, default=10)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    from skimage import data

    from dance_reenact.models.compositing import face as F
    from dance_reenact.models.compositing.inpaint import inpaint_opencv, load_lama, median_plate
    from dance_reenact.models.io import weights
    from dance_reenact.models.networks.face_refine import (
        FaceRefineNet,
        refine_face_network,
        target_embedding,
    )
    from dance_reenact.nodes.sockets import frame_to_rgb_uint8, rgb_uint8_to_image

    h, w = 512, 320
    frame = _portrait(data.astronaut())
    print(f"torch threads {torch.get_num_threads()}, frame {h}x{w}")

    def timed(name: str, fn, n: int = args.repeat) -> None:
        fn()
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        print(f"{name:38s} {1000 * (time.perf_counter() - t0) / n:8.1f} ms/frame")

    with F.MediaPipeFaceLandmarks() as det:
        lm = det(frame)
        assert lm is not None, "no face in the benchmark frame"
        target = F.FaceTarget.from_image(frame, lm)
        timed("face landmarks (mediapipe)", lambda: det(frame))
    timed("face weightless (feather)", lambda: F.refine_face_weightless(frame, lm, target))
    timed("face weightless (seamless)",
          lambda: F.refine_face_weightless(frame, lm, target, seamless=True))
    net = FaceRefineNet().eval()
    emb = target_embedding(net, target)
    timed("face FaceRefineNet 256 (default cfg)", lambda: refine_face_network(net, frame, lm, emb))

    mask = np.zeros((h, w), bool)
    cv2.ellipse(mask.view(np.uint8), (160, 300), (70, 200), 0, 0, 360, 1, -1)
    timed("inpaint opencv_telea", lambda: inpaint_opencv(frame, mask, method="telea"))
    timed("inpaint opencv_ns", lambda: inpaint_opencv(frame, mask, method="ns"))
    if weights.find_local(weights.spec_for("big_lama")) is not None:
        lama = load_lama()
        timed("inpaint lama", lambda: lama(frame, mask), n=3)
    else:
        print(f"{'inpaint lama':38s}     skipped (big-lama.pt not present)")

    # temporal median over a video held as a ComfyUI IMAGE batch (float32), as the node does
    n = args.frames
    bg = frame
    video = torch.empty((n, h, w, 3), dtype=torch.float32)
    masks = torch.zeros((n, h, w), dtype=torch.float32)
    for t in range(n):
        m = np.zeros((h, w), np.uint8)
        cv2.ellipse(m, (int(40 + 240 * t / n), 300), (50, 180), 0, 0, 360, 1, -1)
        f = bg.copy()
        f[m > 0] = (200, 40, 40)
        video[t] = rgb_uint8_to_image(f)[0]
        masks[t] = torch.from_numpy(m.astype(np.float32))
    base = _rss_mb()
    t0 = time.perf_counter()
    plate, never = median_plate(lambda t, a, b: frame_to_rgb_uint8(video[t, a:b]),
                                lambda t, a, b: masks[t, a:b].numpy() > 0.5, n, h, w)
    dt = time.perf_counter() - t0
    print(f"{'inpaint video_median (plate)':38s} {1000 * dt / n:8.1f} ms/frame "
          f"({n} frames, {dt:.1f} s, peak RSS +{_rss_mb() - base:.0f} MB over the "
          f"{video.numel() * 4 / 2**20:.0f} MB input, {100 * never.mean():.1f}% never seen)")


if __name__ == "__main__":
    main()
