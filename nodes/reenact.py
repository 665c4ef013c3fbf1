"""Reenact (all-in-one, streamed): the whole weightless method in one node, for long videos.

The stage nodes hand whole videos to each other as float IMAGE batches, and ComfyUI keeps every
node's output until the prompt ends, so a graph of stages holds several copies of a long
1080p driver. This node reads ComfyUI's VIDEO frame by frame, runs the same stage functions
as the stage nodes and the ``reenact`` CLI (``models/stages.py``; the CLI's driver), and writes
the frames straight into an MP4 that it returns as a VIDEO: memory does not grow with the
video's length (docs/comfyui.md measures it).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..models.compositing.face import MIN_FACE_PX
from ..models.io.video import VideoError, copy_audio, encode_mp4, probe_video, read_video
from ..pipeline import PipelineConfig, PipelineError, reenact
from .runtime import NodeInputError, Progress, check_interrupt
from .sockets import IMAGE, check_image, frame_to_rgb_uint8, iter_rgb_frames

logger = logging.getLogger(__name__)
CATEGORY = "dance_reenact"
NODE = "Reenact (all-in-one)"
VIDEO = "VIDEO"
BACKGROUNDS = ("target_inpainted", "driver_plate", "image")


class VideoFile:
    """A VIDEO value for SaveVideo outside ComfyUI's own classes (tests, old ComfyUI): an MP4
    on disk. Inside ComfyUI the node returns ``comfy_api``'s ``VideoFromFile`` instead."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = str(path)

    def get_stream_source(self) -> str:
        return self.path

    def get_dimensions(self) -> tuple[int, int]:
        info = probe_video(self.path)
        return info.width, info.height

    def save_to(self, path: str, **_: Any) -> None:
        shutil.copyfile(self.path, path)


def _video_value(path: Path) -> Any:
    try:
        from comfy_api.input_impl import VideoFromFile  # type: ignore[import-not-found]
    except ImportError:
        return VideoFile(path)
    return VideoFromFile(str(path))


def _driver_reader(video: Any) -> tuple[Callable[[], Iterator[np.ndarray]], float, str | None]:
    """(a factory of fresh uint8 RGB frame iterators, fps, the file or None) for a ComfyUI
    VIDEO value: decoded one frame at a time from its file; a video made from an IMAGE batch
    (CreateVideo) is read from that batch, which is already in memory."""
    source = None
    if hasattr(video, "get_stream_source"):
        try:
            source = video.get_stream_source()
        except (ValueError, OSError):  # VideoFromComponents: no file behind it
            source = None
    if source is not None and not isinstance(source, (str, os.PathLike)):
        # an in-memory file (BytesIO): copied once to disk so it can be read twice (into
        # ComfyUI's temp folder, which ComfyUI empties when it starts and exits)
        folder = _output_dir()
        folder.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(suffix=".mp4", prefix="driver_", dir=folder)
        with os.fdopen(fd, "wb") as f:
            source.seek(0)
            shutil.copyfileobj(source, f)
        source = name
    if source is not None:
        path = str(source)
        try:
            fps = probe_video(path, "driver video").fps
        except VideoError as exc:
            raise NodeInputError(NODE, "driver", str(exc), "connect a Load Video node with a "
                                 "readable video") from exc

        def frames() -> Iterator[np.ndarray]:
            for f in read_video(path, "driver video"):
                check_interrupt()
                yield f
        return frames, fps, path
    if hasattr(video, "get_components"):
        comp = video.get_components()
        images = check_image(comp.images, NODE, "driver")

        def batch() -> Iterator[np.ndarray]:
            for f in iter_rgb_frames(images):
                check_interrupt()
                yield f
        return batch, float(comp.frame_rate), None
    raise NodeInputError(NODE, "driver", f"expected a VIDEO, got {type(video).__name__}",
                         "connect the VIDEO output of Load Video")


def _output_dir() -> Path:
    try:
        import folder_paths  # type: ignore[import-not-found]
    except ImportError:
        return Path(tempfile.gettempdir()) / "dance_reenact"
    return Path(folder_paths.get_temp_directory()) / "dance_reenact"


def _copy_driver_audio(written: Path, driver_file: str | None) -> str:
    """The driver's sound under the output; says in words what happened."""
    if driver_file is None:
        return "no audio (the driver VIDEO has no file behind it)"
    try:
        if copy_audio(written, driver_file):
            return "with the driver's audio"
        return "the driver has no audio"
    except (VideoError, OSError, ValueError) as exc:
        logger.warning("%s: the driver's audio could not be copied (%s)", NODE, exc)
        return f"no audio: the driver's could not be copied ({exc})"


class ReenactStreamed:
    """Target photo + driver VIDEO -> the reenacted VIDEO, streamed frame by frame."""

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {
            "required": {
                "target": (IMAGE, {"tooltip": "The photo of the person who will dance (its "
                                   "first frame)."}),
                "driver": (VIDEO, {"tooltip": "The dancing video (Load Video). Read twice, "
                                   "frame by frame: never held in memory."}),
                "background": (list(BACKGROUNDS), {"default": "target_inpainted", "tooltip":
                               "target_inpainted: the target photo without the person. "
                               "driver_plate: the driver video's scene without the dancer. "
                               "image: the background_image input (a still, or a batch "
                               "looped as a video)."}),
            },
            "optional": {
                "background_image": (IMAGE, {"tooltip": "Used when background = image."}),
                "face_refine": ("BOOLEAN", {"default": True, "tooltip": "Paste the target's "
                                "face on every frame (the weightless FaceRefine)."}),
                "min_face_px": ("INT", {"default": MIN_FACE_PX, "min": 8, "max": 512,
                                "tooltip": "Faces smaller than this pass through unchanged."}),
                "stabilize_mask": ("BOOLEAN", {"default": True, "tooltip": "Remove mask "
                                   "flicker where the picture is still (Stabilize Mask)."}),
                "feather": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 32.0, "step": 0.5,
                                      "tooltip": "Feather of the person's mask, px."}),
            },
        }

    RETURN_TYPES = (VIDEO, "STRING")
    RETURN_NAMES = ("video", "report")
    OUTPUT_TOOLTIPS = (
        "The reenacted video with the driver's audio (an MP4 in ComfyUI's temp folder): "
        "connect Save Video.",
        "What was done: frames, size, driver frames without a person and how they were "
        "filled; connect a Preview Any node to read it.",
    )
    FUNCTION = "run"
    CATEGORY = CATEGORY
    DESCRIPTION = ("The whole weightless method in one node, streamed: the same stages and "
                   "defaults as offline_weightless.json (and the reenact CLI), but the driver "
                   "is read frame by frame and the result written straight to an MP4, so a "
                   "long 1080p video fits in memory. The driver's audio is copied.")

    def run(self, target: Any, driver: Any, background: str = "target_inpainted",
            background_image: Any = None, face_refine: bool = True,
            min_face_px: int = MIN_FACE_PX, stabilize_mask: bool = True,
            feather: float = 1.0) -> tuple[Any, str]:
        target = check_image(target, NODE, "target")
        photo = frame_to_rgb_uint8(target[0])
        frames, fps, driver_file = _driver_reader(driver)
        bg: Any = None
        if background == "driver_plate":
            bg = "driver"
        elif background == "image":
            if background_image is None:
                raise NodeInputError(NODE, "background_image", "background = image but no "
                                     "image is connected", "connect an IMAGE, or choose "
                                     "target_inpainted / driver_plate")
            still = check_image(background_image, NODE, "background_image")
            bg = frame_to_rgb_uint8(still[0]) if still.shape[0] == 1 else \
                (lambda: iter_rgb_frames(still))
        elif background != "target_inpainted":
            raise NodeInputError(NODE, "background", f"unknown choice {background!r}",
                                 f"choose one of {', '.join(BACKGROUNDS)}")
        cfg = PipelineConfig(face="weightless" if face_refine else "none",
                             min_face_px=int(min_face_px), stabilize=bool(stabilize_mask),
                             feather=float(feather))
        try:
            out, info = reenact(photo, driver_frames=frames, fps=fps, background=bg, cfg=cfg)
        except PipelineError as exc:
            raise NodeInputError(NODE, "target/driver", str(exc),
                                 "change the input as the message says") from exc
        folder = _output_dir()
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"reenact_{time.strftime('%Y%m%d-%H%M%S')}_{os.getpid()}.mp4"
        with Progress(info["count"], NODE) as bar:
            def counted() -> Iterator[np.ndarray]:
                for f in out:
                    yield f
                    bar.update()
            try:
                written, n = encode_mp4(counted(), path, fps, overwrite=False)
            except PipelineError as exc:
                raise NodeInputError(NODE, "target/driver", str(exc),
                                     "change the input as the message says") from exc
        sound = _copy_driver_audio(written, driver_file)
        missing = info["missing_frames"]
        report = (f"{n} frames at {info['width']}x{info['height']}, {fps:g} fps, streamed to "
                  f"{written.name}; ")
        report += (f"no driver person in {len(missing)} frame(s) "
                   f"({', '.join(map(str, missing[:12]))}{', ...' if len(missing) > 12 else ''}"
                   "): their pose was interpolated from the neighbouring frames"
                   if missing else "a driver person in every frame")
        report += f"; {sound}"
        logger.info("%s: %s", NODE, report)
        return _video_value(written), report


NODE_CLASS_MAPPINGS = {"DanceReenactReenactStreamed": ReenactStreamed}
NODE_DISPLAY_NAME_MAPPINGS = {
    "DanceReenactReenactStreamed":
        "Reenact (all-in-one, streamed) · Long videos in little memory (Dance Reenact)",
}
