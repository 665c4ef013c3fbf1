"""Video and image files: H.264 MP4 through PyAV, contact sheets through Pillow."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np


def write_mp4(frames: Iterable[np.ndarray], path: str | os.PathLike[str], fps: float = 24.0,
              *, crf: int = 18) -> int:
    """Stream uint8 RGB frames (H, W, 3) into an H.264 MP4 (yuv420p, odd sizes padded by one
    pixel). Returns the number of frames written."""
    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    tmp = path.with_name(path.stem + ".partial" + path.suffix)
    with av.open(str(tmp), mode="w") as container:
        stream = None
        for frame in frames:
            frame = np.ascontiguousarray(frame, dtype=np.uint8)
            if frame.ndim != 3 or frame.shape[2] != 3:
                raise ValueError(f"frames must be (H, W, 3) uint8, got {frame.shape}")
            h, w = frame.shape[:2]
            if stream is None:
                stream = container.add_stream("libx264", rate=round(fps))
                stream.width, stream.height = w + (w % 2), h + (h % 2)
                stream.pix_fmt = "yuv420p"
                stream.options = {"crf": str(crf)}
            if (w % 2) or (h % 2):
                frame = np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
            n += 1
        if stream is None:
            raise ValueError("no frames to write")
        for packet in stream.encode():
            container.mux(packet)
    os.replace(tmp, path)
    return n


def read_video(path: str | os.PathLike[str]) -> Iterator[np.ndarray]:
    """Decode a video file into uint8 RGB frames (H, W, 3), one at a time."""
    import av

    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            yield frame.to_ndarray(format="rgb24")


def video_fps(path: str | os.PathLike[str]) -> float:
    import av

    with av.open(str(path)) as container:
        rate = container.streams.video[0].average_rate
        return float(rate) if rate else 24.0


def contact_sheet(frames: list[np.ndarray], columns: int = 6, width: int = 1200) -> np.ndarray:
    """Tile frames (H, W, 3) into one uint8 image ``width`` pixels wide."""
    import cv2

    if not frames:
        raise ValueError("no frames for the contact sheet")
    h, w = frames[0].shape[:2]
    cols = min(columns, len(frames))
    tw = max(width // cols, 1)
    th = max(round(h * tw / w), 1)
    rows = (len(frames) + cols - 1) // cols
    sheet = np.zeros((rows * th, cols * tw, 3), np.uint8)
    for i, f in enumerate(frames):
        r, c = divmod(i, cols)
        sheet[r * th:(r + 1) * th, c * tw:(c + 1) * tw] = cv2.resize(
            f, (tw, th), interpolation=cv2.INTER_AREA)
    return sheet
