"""Video and image files: H.264 MP4 through PyAV, contact sheets through Pillow.

Outputs are written to a temporary file of their own next to the destination and moved into
place at the end (atomic), so an interrupted or failed write never leaves a half file at the
path and two runs writing the same path never share a temporary file. With
``overwrite=False`` an existing file is never replaced: the output goes to the first free
name (``clip-1.mp4``, ...) and the caller is told which.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)


class VideoError(ValueError):
    """A video file cannot be read or written; the message names the file and what to do."""


def numbered(path: Path, i: int) -> Path:
    """``clip.mp4`` -> ``clip-<i>.mp4`` (``i`` = 0 gives the path itself)."""
    return path if i == 0 else path.with_name(f"{path.stem}-{i}{path.suffix}")


def free_path(path: str | os.PathLike[str],
              companions: Callable[[Path], Iterable[Path]] = lambda p: ()) -> Path:
    """The first of ``path``, ``path-1``, ``path-2``, ... that does not exist, together with
    every file ``companions(candidate)`` names (e.g. the contact sheet of a video)."""
    path = Path(path)
    for i in range(100000):
        cand = numbered(path, i)
        if not cand.exists() and not any(c.exists() for c in companions(cand)):
            return cand
    raise VideoError(f"no free file name like {path} (tried 100000)")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _make_parent(path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as exc:
        blocker = next((p for p in [path.parent, *path.parent.parents] if p.is_file()),
                       path.parent)
        raise VideoError(f"cannot write {path}: {blocker} is a file, not a folder") from exc
    except OSError as exc:
        raise VideoError(f"cannot create the folder {path.parent}: "
                         f"{exc.strerror or exc}") from exc


@contextlib.contextmanager
def output_file(path: str | os.PathLike[str], *, overwrite: bool = True
                ) -> Iterator[tuple[Path, list[Path]]]:
    """Write ``path`` through a private temporary file in the same folder.

    Yields ``(tmp, final)``: write to ``tmp``; when the block ends without error ``final[0]``
    is where the file now is (``path``, or the next free name when ``overwrite`` is False
    and ``path`` exists by then). On any error, Ctrl-C included, the temporary file is
    removed and nothing appears at ``path``.
    """
    path = Path(path)
    _make_parent(path)
    try:
        fd, name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".partial" + path.suffix,
                                    dir=path.parent)
    except OSError as exc:
        raise VideoError(f"cannot write {path}: {exc.strerror or exc} (the folder "
                         f"{path.parent} is not writable?)") from exc
    os.close(fd)
    tmp = Path(name)
    final: list[Path] = []
    try:
        yield tmp, final
        os.chmod(tmp, 0o666 & ~_umask())
        final.append(_place(tmp, path, overwrite))
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _place(tmp: Path, path: Path, overwrite: bool) -> Path:
    """Move ``tmp`` to ``path`` atomically; without ``overwrite``, never replace a file
    (a hard link fails if the name is taken: the next free name is used instead)."""
    if overwrite:
        os.replace(tmp, path)
        return path
    for i in range(100000):
        cand = numbered(path, i)
        try:
            os.link(tmp, cand)
        except FileExistsError:
            continue
        except OSError as exc:  # no hard links here (FAT, some network shares)
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV,
                                 errno.EMLINK):
                raise
            if cand.exists():
                continue
            os.replace(tmp, cand)
            return cand
        tmp.unlink()
        return cand
    raise VideoError(f"no free file name like {path}")


def write_mp4(frames: Iterable[np.ndarray], path: str | os.PathLike[str], fps: float = 24.0,
              *, crf: int = 18, overwrite: bool = True) -> int:
    """Stream uint8 RGB frames (H, W, 3) into an H.264 MP4 (yuv420p, odd sizes padded by one
    pixel). Returns the number of frames written (see :func:`encode_mp4` for the path)."""
    return encode_mp4(frames, path, fps, crf=crf, overwrite=overwrite)[1]


def encode_mp4(frames: Iterable[np.ndarray], path: str | os.PathLike[str], fps: float = 24.0,
               *, crf: int = 18, overwrite: bool = True) -> tuple[Path, int]:
    """Like :func:`write_mp4`, returning ``(where the file is, frames written)``: the path,
    or the next free name when ``overwrite`` is False and the path was taken meanwhile."""
    import av

    n = 0
    with output_file(path, overwrite=overwrite) as (tmp, final):
        try:
            container = av.open(str(tmp), mode="w", format="mp4")
        except OSError as exc:
            raise VideoError(f"cannot write {path}: {exc}") from exc
        with container:
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
    return final[0], n


@dataclass(frozen=True)
class VideoInfo:
    """What a video file's header says: frame rate, size and frame count (0 = unknown)."""

    fps: float
    width: int
    height: int
    frames: int


# FFmpeg's WebP decoder reads still WebP only: an animated WebP (what ComfyUI's own workflow
# templates and many sites hand out) opens but decodes no frame. Pillow reads both.
_PILLOW_VIDEO_SUFFIXES = (".webp",)


def _check_file(p: Path, role: str) -> None:
    if not p.is_file():
        raise VideoError((f"the {role} {p} does not exist" if not p.exists()
                          else f"the {role} {p} is not a file") + ". Fix: check the path")


def _is_pillow_video(path: str | os.PathLike[str]) -> bool:
    return Path(path).suffix.lower() in _PILLOW_VIDEO_SUFFIXES


def _open_image(p: Path, role: str) -> Any:
    from PIL import Image, UnidentifiedImageError

    _check_file(p, role)
    try:
        return Image.open(p)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError,
            Image.DecompressionBombError) as exc:  # Pillow's plugins raise all of these
        raise VideoError(f"cannot read the {role} {p}: {exc}; the file is damaged, truncated "
                         "or not an animation. Fix: re-export or re-download it") from exc


def _probe_image(p: Path, role: str) -> VideoInfo:
    """An animated image's frame rate (from its first frame's duration), size and frames."""
    with _open_image(p, role) as im:
        try:
            im.load()
        except (OSError, ValueError, SyntaxError) as exc:
            raise VideoError(f"the {role} {p} is truncated or damaged: {exc}. Fix: re-export "
                             "or re-download it") from exc
        ms = float(im.info.get("duration") or 0)
        fps = 1000.0 / ms if ms > 0 else 24.0
        return VideoInfo(round(min(max(fps, 1.0), 120.0), 3), im.width, im.height,
                         int(getattr(im, "n_frames", 1)))


def _read_image(p: Path, role: str) -> Iterator[np.ndarray]:
    """An animated image's frames as uint8 RGB, one at a time (transparency dropped)."""
    n = 0
    with _open_image(p, role) as im:
        for i in range(int(getattr(im, "n_frames", 1))):
            try:
                im.seek(i)
                frame = np.asarray(im.convert("RGB")).copy()
            except (OSError, ValueError, EOFError, SyntaxError) as exc:
                raise VideoError(f"the {role} {p} is truncated or damaged: {n} frames "
                                 f"decoded fine, then: {exc}. Fix: re-export or re-download "
                                 f"it, or cut it to its first {n} frames") from exc
            yield frame
            n += 1


def _open(path: str | os.PathLike[str], role: str) -> object:
    import av

    p = Path(path)
    _check_file(p, role)
    try:
        container = av.open(str(p))
    except (av.error.FFmpegError, OSError) as exc:
        raise VideoError(f"cannot read the {role} {p}: {exc}; the file is damaged, truncated "
                         "or not a video. Fix: re-export or re-download it") from exc
    if not container.streams.video:
        kinds = ", ".join(sorted({s.type for s in container.streams})) or "no streams"
        container.close()
        raise VideoError(f"the {role} {p} has no video stream ({kinds}): an audio-only file? "
                         "Fix: give a video file")
    return container


def probe_video(path: str | os.PathLike[str], role: str = "video") -> VideoInfo:
    """Read a video's header (nothing decoded; an animated WebP's first frame). Raises
    VideoError naming the file and role."""
    if _is_pillow_video(path):
        return _probe_image(Path(path), role)
    container = _open(path, role)
    with container:  # type: ignore[attr-defined]
        st = container.streams.video[0]  # type: ignore[attr-defined]
        rate = st.average_rate
        return VideoInfo(float(rate) if rate else 24.0, int(st.width or 0),
                         int(st.height or 0), int(st.frames or 0))


def read_video(path: str | os.PathLike[str], role: str = "video") -> Iterator[np.ndarray]:
    """Decode a video file (or an animated WebP) into uint8 RGB frames (H, W, 3), one at a
    time.

    Raises:
        VideoError naming the file, its role and how many frames decoded fine when the file
        is missing, audio-only, or breaks off mid-way (a truncated file).
    """
    import av

    if _is_pillow_video(path):
        yield from _read_image(Path(path), role)
        return
    container = _open(path, role)
    n = 0
    with container:  # type: ignore[attr-defined]
        promised = int(container.streams.video[0].frames or 0)  # type: ignore[attr-defined]
        try:
            for frame in container.decode(video=0):  # type: ignore[attr-defined]
                yield frame.to_ndarray(format="rgb24")
                n += 1
        except av.error.FFmpegError as exc:
            raise VideoError(f"the {role} {path} is truncated or damaged: {n} frames decoded "
                             f"fine, then: {exc}. Fix: re-export or re-download it, or cut "
                             f"it to its first {n} frames") from exc
    if n == 0:
        raise VideoError(f"the {role} {path} has no decodable frames. Fix: re-export it")
    if promised > n:
        logger.warning("the %s %s: its header promises %d frames but only %d decoded; the "
                       "file is probably truncated (using the %d good frames)", role, path,
                       promised, n, n)


def video_fps(path: str | os.PathLike[str]) -> float:
    return probe_video(path).fps


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


def copy_audio(video: str | os.PathLike[str], source: str | os.PathLike[str]) -> bool:
    """Put the first audio stream of ``source`` (the driver video) into the MP4 ``video``,
    cut to the video's length: AAC is copied as it is, any other codec re-encoded to AAC. The
    video stream is copied, not re-encoded; the file is replaced atomically.

    Returns:
        True when audio was added; False when ``source`` has none (``video`` is unchanged).
    Raises:
        VideoError: ``source`` or ``video`` cannot be read.
    """
    import av

    source, video = Path(source), Path(video)
    try:
        src = av.open(str(source))
    except (OSError, av.error.FFmpegError) as exc:
        raise VideoError(f"cannot read the audio of {source}: {exc}") from exc
    with src:
        if not src.streams.audio:
            return False
        a_in = src.streams.audio[0]
        with av.open(str(video)) as vin, output_file(video) as (tmp, _):
            v_in = vin.streams.video[0]
            end = float(v_in.duration * v_in.time_base) if v_in.duration else None
            with av.open(str(tmp), "w", format="mp4") as dst:
                v_out = dst.add_stream_from_template(v_in)
                copy = a_in.codec_context.name == "aac"
                a_out = dst.add_stream_from_template(a_in) if copy else \
                    dst.add_stream("aac", rate=a_in.codec_context.sample_rate or 48000)
                for pkt in vin.demux(v_in):
                    if pkt.dts is not None:
                        pkt.stream = v_out
                        dst.mux(pkt)
                _mux_audio(src, a_in, a_out, dst, copy, end)
    return True


def _mux_audio(src: Any, a_in: Any, a_out: Any, dst: Any, copy: bool, end: float | None) -> None:
    """Audio packets of ``a_in`` into ``a_out`` up to ``end`` seconds (copied or encoded)."""
    if copy:
        for pkt in src.demux(a_in):
            if pkt.dts is None:
                continue
            if end is not None and pkt.pts is not None and float(pkt.pts * pkt.time_base) >= end:
                break
            pkt.stream = a_out
            dst.mux(pkt)
        return
    for frame in src.decode(a_in):
        if end is not None and frame.time is not None and frame.time >= end:
            break
        for pkt in a_out.encode(frame):
            dst.mux(pkt)
    for pkt in a_out.encode(None):
        dst.mux(pkt)
