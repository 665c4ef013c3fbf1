"""The whole method, streamed frame by frame: one target photo + driver poses -> frames.

The same library functions the nodes call, chained per driver frame (SPEC §1, paper eqs. 1–8):
the target is analysed ONCE (pose, parsing p*, part assignment, appearance, face, inpainted
background); then every driver frame goes P2B -> B2F -> MaskBlend -> FaceRefine and is yielded,
so a 300-frame video never sits in memory as parsing maps, one-hot tensors or output frames.

Backends default to the weightless ones (no download): MediaPipe poses, geometric parsing, the
warp P2B and B2F, PatchMatch inpainting and the landmark-aligned face paste. Learned P2B / B2F
checkpoints (our safetensors) plug in by path.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from .schema import LABEL, Person, frame_to_people, select_person, sequence_is_normalized
from .temporal import fill_missing_people

logger = logging.getLogger(__name__)


class PipelineError(ValueError):
    """The pipeline cannot run on these inputs; the message says what to change."""


@dataclass
class PipelineConfig:
    """Backends and options of :func:`reenact` (every default needs no download).

    Args:
        pose_backend: ``mediapipe`` | ``openpose`` | ``dwpose`` (target photo and driver video).
        parse_backend: ``geometric`` | ``schp_lip`` | ``schp_lip_onnx``.
        p2b: ``warp`` or the path of a P2BGenerator safetensors file.
        b2f: ``warp`` or the path of a B2FGenerator safetensors file (needs the pretrained
            appearance encoder's weights).
        face: ``weightless`` (landmark-aligned paste) or ``none``.
        inpaint: ``patchmatch`` | ``opencv`` (Telea) | ``lama``: how the target photo's own
            background is cleaned (docs/inpainting.md compares them).
        smooth: Savitzky–Golay smoothing + gap filling of the driver keypoints.
        feather: B2F warp mask feather (px); blend_feather: extra feather at the blend.
        device: torch device for learned stages (None = CUDA if available, else CPU).
    """

    pose_backend: str = "mediapipe"
    parse_backend: str = "geometric"
    p2b: str = "warp"
    b2f: str = "warp"
    face: str = "weightless"
    inpaint: str = "patchmatch"
    smooth: bool = True
    feather: float = 1.0
    blend_feather: float = 0.0
    device: str | None = None
    extra: dict = field(default_factory=dict)

    def torch_device(self) -> torch.device:
        if self.device:
            return torch.device(self.device)
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@dataclass
class TargetState:
    """Everything computed once per target photo."""

    image: np.ndarray          # uint8 (h, w, 3)
    person: Person
    labels: np.ndarray         # uint8 (h, w) parsing p*
    background: np.ndarray     # uint8 (h, w, 3) target photo with the person inpainted
    warp_parts: object         # mesh_warp.BodyRig (the weightless renderer's target)
    p2b_net: torch.nn.Module | None = None
    b2f_net: torch.nn.Module | None = None
    b2f_x0: torch.Tensor | None = None
    face: object | None = None  # face.FaceTarget


def _to_rgb(image: np.ndarray, what: str, min_side: int = 32) -> np.ndarray:
    img = np.asarray(image)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    if img.ndim != 3 or img.shape[2] not in (1, 3, 4):
        raise PipelineError(f"{what} must be an RGB image (H, W, 3), got shape {img.shape}")
    if img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    if img.shape[2] == 4:
        alpha = img[..., 3:4].astype(np.float32) / 255.0
        img = (img[..., :3] * alpha + 255.0 * (1 - alpha)).round()
    if img.dtype != np.uint8:
        img = np.clip(img, 0, 255).astype(np.uint8)
    if min(img.shape[:2]) < min_side:
        raise PipelineError(f"{what} is {img.shape[1]}x{img.shape[0]} pixels: too small to "
                            f"find a person (at least {min_side} px on each side)")
    return np.ascontiguousarray(img)


def prepare_target(target: np.ndarray, cfg: PipelineConfig,
                   out_hw: tuple[int, int] | None = None) -> TargetState:
    """Analyse the target photo once: keypoints, parsing p*, parts, background, face.

    With ``out_hw`` (the driver frame size), a photo much larger than the frames is reduced
    after parsing (:func:`.warp.limit_source`): it adds no detail to the warped frames, only
    cost.
    """
    from .inpaint import dilate_mask, inpaint_still
    from .mesh_warp import BodyRig
    from .perception.human_parsing import HumanParser
    from .perception.pose import PoseEstimator

    rgb = _to_rgb(target, "the target photo")
    device = cfg.torch_device()
    with PoseEstimator(cfg.pose_backend, device=device) as estimator:
        detections = estimator(rgb)
    if not detections:
        raise PipelineError("no person found in the target photo: use a photo that shows one "
                            "person clearly (face and upper body at least)")
    person = select_person([d.person for d in detections])
    parser = HumanParser(cfg.parse_backend, device=device)
    labels = parser.parse_frame(rgb, detections=detections)
    if labels is None or not labels.any():
        raise PipelineError("the target photo's parsing found no person")
    if out_hw is not None:
        from .warp import limit_source

        labels, person, rgb = limit_source(labels, person, out_hw, image=rgb)
    mask = dilate_mask((labels > 0).astype(np.float32), max(3, round(0.02 * max(rgb.shape))))
    if cfg.inpaint == "lama":
        from .inpaint import load_lama

        background = load_lama(device=device)(rgb, mask)
    elif cfg.inpaint in ("patchmatch", "opencv"):
        background = inpaint_still(rgb, mask, "patchmatch" if cfg.inpaint == "patchmatch"
                                   else "opencv_telea")
    else:
        raise PipelineError(f"unknown inpaint backend {cfg.inpaint!r}: use patchmatch, opencv "
                            "or lama")
    try:
        parts = BodyRig.build(rgb, labels, person, device=device)
    except ValueError as exc:
        raise PipelineError(f"the target photo: {exc}") from exc
    state = TargetState(image=rgb, person=person, labels=labels, background=background,
                        warp_parts=parts)
    if cfg.p2b != "warp":
        from .loading import load_model

        state.p2b_net = load_model(cfg.p2b, expected_arch="P2BGenerator", device=device)
    if cfg.b2f != "warp":
        from .appearance import crops_to_tensor, load_pretrained_encoder
        from .loading import load_model
        from .parts import crop_parts

        net = load_model(cfg.b2f, expected_arch="B2FGenerator", device=device)
        crops = crop_parts(rgb, labels)
        encoder = load_pretrained_encoder(device)
        with torch.inference_mode():
            e_z = encoder(crops_to_tensor(crops.crops[None]).to(device),
                          torch.from_numpy(crops.present[None]).to(device))
            state.b2f_x0 = net.project(e_z)  # once per target
        state.b2f_net = net
    if cfg.face == "weightless":
        from .face import FaceFinder, FaceTarget, MediaPipeFaceLandmarks

        with MediaPipeFaceLandmarks() as lm, FaceFinder(lm) as find:
            found = find(rgb)  # small faces: found on an upscaled crop
        if found.landmarks is not None:
            state.face = FaceTarget.from_image(rgb, found.landmarks)
        else:
            logger.warning("no usable face on the target photo (%s, %.0f px): FaceRefine is "
                           "skipped", found.status, found.size)
    elif cfg.face != "none":
        raise PipelineError(f"unknown face backend {cfg.face!r}: use weightless or none")
    return state


def driver_people_from_pose(frames: Sequence[dict]) -> tuple[list[Person | None], int, int]:
    """POSE_KEYPOINT frames -> one (largest) person per frame and the canvas (H, W)."""
    if not frames:
        raise PipelineError("the driver motion has no frames")
    h, w = int(frames[0]["canvas_height"]), int(frames[0]["canvas_width"])
    people: list[Person | None] = []
    normalized = sequence_is_normalized(frames)  # once for the clip, not per frame
    for f in frames:
        found = frame_to_people(f, normalized=normalized)
        if found and (int(f["canvas_height"]), int(f["canvas_width"])) != (h, w):
            sy, sx = h / float(f["canvas_height"]), w / float(f["canvas_width"])
            found = [p.scaled(sx, sy) for p in found]
        people.append(select_person(found) if found else None)
    return people, h, w


def driver_people_from_video(frames: Iterable[np.ndarray], cfg: PipelineConfig
                             ) -> tuple[list[Person | None], int, int]:
    """Detect the driver's pose in every frame (streamed; only keypoints are kept).

    Frames without a person come back as None (:func:`reenact` fills them from their
    neighbours); how many, and any tracked ghosts dropped or small people found in an
    enlarged crop, is logged."""
    from .perception.pose import PoseEstimator

    people: list[Person | None] = []
    hw: tuple[int, int] | None = None
    with PoseEstimator(cfg.pose_backend, device=cfg.torch_device(), video=True) as est:
        for frame in frames:
            rgb = _to_rgb(frame, "a driver frame")
            if hw is None:
                hw = rgb.shape[:2]
            elif rgb.shape[:2] != hw:
                raise PipelineError("the driver video changes size between frames")
            found = est(rgb)
            people.append(select_person([d.person for d in found]) if found else None)
    if hw is None:
        raise PipelineError("the driver video has no frames")
    if est.stats.missing or est.stats.notes():
        logger.warning("driver poses: %s", est.stats)
    return people, int(hw[0]), int(hw[1])


def smooth_people(people: list[Person | None], height: int, width: int,
                  fps: float) -> list[Person | None]:
    """Savitzky–Golay smoothing with short-gap filling (models/temporal.py)."""
    from .schema import people_to_frame
    from .temporal import SmoothingOptions, smooth_pose_sequence

    if len(people) < 3:
        return people
    frames = [people_to_frame([p] if p is not None else [], width, height) for p in people]
    smoothed, _ = smooth_pose_sequence(frames, SmoothingOptions(method="savgol", fps=fps))
    out: list[Person | None] = []
    for f in smoothed:
        found = frame_to_people(f)
        out.append(found[0] if found else None)
    return out


class Background:
    """Background frames for the blend: one still (never copied per frame) or a video
    (looped), fitted to the driver canvas by ``cover``."""

    def __init__(self, still: np.ndarray | None = None,
                 frames: Callable[[], Iterator[np.ndarray]] | None = None) -> None:
        self.still, self._factory = still, frames
        self._it: Iterator[np.ndarray] | None = None
        self._cache: tuple[tuple[int, int], np.ndarray] | None = None

    @staticmethod
    def fit(img: np.ndarray, h: int, w: int) -> np.ndarray:
        ih, iw = img.shape[:2]
        s = max(h / ih, w / iw)
        rh, rw = max(h, round(ih * s)), max(w, round(iw * s))
        resized = cv2.resize(img, (rw, rh), interpolation=cv2.INTER_AREA if s < 1
                             else cv2.INTER_LINEAR)
        y0, x0 = (rh - h) // 2, (rw - w) // 2
        return resized[y0:y0 + h, x0:x0 + w]

    def frame(self, h: int, w: int) -> np.ndarray:
        if self._factory is None:
            assert self.still is not None
            if self._cache is None or self._cache[0] != (h, w):
                self._cache = ((h, w), self.fit(self.still, h, w))
            return self._cache[1]
        if self._it is None:
            self._it = self._factory()
        try:
            img = next(self._it)
        except StopIteration:  # loop the background video
            self._it = self._factory()
            img = next(self._it)
        return self.fit(_to_rgb(img, "a background frame", min_side=1), h, w)


def render(state: TargetState, people: Sequence[Person | None], height: int, width: int,
           background: Background, cfg: PipelineConfig,
           on_frame: Callable[[int, int], None] | None = None) -> Iterator[np.ndarray]:
    """Yield the reenacted frames (uint8 (height, width, 3)), one per driver frame.

    A frame without a driver person shows the background alone.
    """
    from .b2f import run_b2f_frame
    from .mesh_warp import clip_scales, warp_frame_mesh

    device = cfg.torch_device()
    landmarker = finder = None
    if state.face is not None:
        from .face import FaceFinder, MediaPipeFaceLandmarks

        landmarker = MediaPipeFaceLandmarks()
        finder = FaceFinder(landmarker)
    rig = state.warp_parts
    scales = clip_scales(state.person, list(people))  # one slowly changing body scale
    try:
        for i, person in enumerate(people):
            bg = background.frame(height, width)
            if person is None or person.bbox() is None:
                yield bg.copy()
                if on_frame:
                    on_frame(i + 1, len(people))
                continue
            rendered = None
            if state.p2b_net is not None:
                labels = _p2b_network(state, person, height, width, device)
            else:
                rendered = rig.render(person, float(scales[i]), (height, width),
                                      with_image=state.b2f_net is None)
                labels = rendered.labels
            if state.b2f_net is not None:
                with torch.inference_mode():
                    res = run_b2f_frame(state.b2f_net, state.b2f_x0, labels, person.face,
                                        device=device)
                if res is None:
                    z = np.zeros((height, width, 3), np.float32)
                    m = np.zeros((height, width), np.float32)
                else:
                    z, m = res[0].cpu().numpy(), res[1].cpu().numpy()
            else:
                wf = warp_frame_mesh(rig, labels, person, float(scales[i]),
                                     feather=cfg.feather, rendered=rendered)
                z, m = wf.image.astype(np.float32) / 255.0, wf.mask
            if cfg.blend_feather > 0:
                m = cv2.GaussianBlur(m, (0, 0), cfg.blend_feather)
            m3 = m[..., None]
            frame = (z * m3 + (bg.astype(np.float32) / 255.0) * (1.0 - m3)) * 255.0
            out = np.clip(frame + 0.5, 0, 255).astype(np.uint8)
            if finder is not None:
                from .face import box_of_mask, refine_face_weightless

                # the rendered face's box is where to look (small faces: an upscaled crop)
                lm = finder(out, box_of_mask(labels == LABEL["face"])).landmarks
                if lm is not None:
                    # paste only on the rendered head (never a second face on the body)
                    head = np.isin(labels, (LABEL["face"], LABEL["hair"], LABEL["hat"],
                                            LABEL["sunglasses"]))
                    out = refine_face_weightless(out, lm, state.face, region=head)
            yield out
            if on_frame:
                on_frame(i + 1, len(people))
    finally:
        if finder is not None:
            finder.close()
        if landmarker is not None:
            landmarker.close()


def _p2b_network(state: TargetState, person: Person, h: int, w: int,
                 device: torch.device) -> np.ndarray:
    """The learned P2B on one driver frame: stick figure and keypoint DensePose as its input."""
    from .p2b import DriverFrame, predict_parsing
    from .perception.base import mask_from_keypoints
    from .perception.densepose import densepose_from_keypoints
    from .render import draw_pose

    dp = densepose_from_keypoints(person, mask_from_keypoints(person, h, w), h, w)
    frame = DriverFrame(h, w, person, draw_pose([person], h, w), dp.index, dp.u, dp.v)
    with torch.inference_mode():
        (labels,) = list(predict_parsing(state.p2b_net, state.labels, [frame], device=device))
    return labels


def reenact(target: np.ndarray, *, driver_frames: Callable[[], Iterator[np.ndarray]] | None = None,
            driver_pose: Sequence[dict] | None = None, fps: float = 24.0,
            background: np.ndarray | Callable[[], Iterator[np.ndarray]] | str | None = None,
            cfg: PipelineConfig | None = None,
            on_frame: Callable[[int, int], None] | None = None,
            ) -> tuple[Iterator[np.ndarray], dict]:
    """The whole method: a target photo performing a driver's motion.

    Args:
        target: uint8 RGB (h, w, 3) photo of one person (any size).
        driver_frames: a factory returning a fresh iterator over the driver video's frames
            (uint8 RGB, read twice at most: poses, and ``background="driver"``), or
        driver_pose: POSE_KEYPOINT frames (e.g. a shipped motion clip) instead of a video.
        background: None = the target photo inpainted; an RGB still; a frame-iterator factory
            (a video, looped); or ``"driver"`` = the driver video's clean plate (temporal
            median with the person masked out).
    Returns:
        (frames, info): a lazy iterator of uint8 (H, W, 3) frames at the driver's size, and
        info (``count``, ``height``, ``width``, ``fps``, ``missing_frames``: the driver frames
        without a detected person, whose pose was interpolated or held).
    """
    cfg = cfg or PipelineConfig()
    if (driver_frames is None) == (driver_pose is None):
        raise PipelineError("give exactly one driver: a video (driver_frames) or a motion "
                            "(driver_pose)")
    # The target photo (a person in it? every weight there?) is checked BEFORE the long
    # driver pose pass, so a bad photo is reported in seconds; it only needs the frame size.
    if driver_pose is not None:
        people, h, w = driver_people_from_pose(driver_pose)
        state = prepare_target(target, cfg, out_hw=(h, w))
    else:
        frames_it = driver_frames()
        first = next(frames_it, None)
        if first is None:
            raise PipelineError("the driver video has no frames: give a video with frames")
        state = prepare_target(target, cfg, out_hw=tuple(np.asarray(first).shape[:2]))
        people, h, w = driver_people_from_video(itertools.chain([first], frames_it), cfg)
    if not any(p is not None for p in people):
        raise PipelineError("no person found in any driver frame: use a driver video (or "
                            "motion) that shows one person's body; another pose backend may "
                            "find them")
    if cfg.smooth:
        people = smooth_people(people, h, w, fps)
    # A frame without a driver person never stops the video nor shows an empty background:
    # its pose is interpolated from the neighbouring frames (held at the ends).
    people, gaps = fill_missing_people(people)
    if gaps.missing:
        logger.warning("driver: %s", gaps)
    if background is None:
        bg = Background(still=state.background)
    elif isinstance(background, str):
        if background != "driver" or driver_frames is None:
            raise PipelineError("background='driver' needs a driver video")
        bg = Background(still=driver_plate(driver_frames, people, h, w))
    elif callable(background):
        bg = Background(frames=background)
    else:
        bg = Background(still=_to_rgb(background, "the background image", min_side=1))
    info = {"count": len(people), "height": h, "width": w, "fps": fps,
            "missing_frames": gaps.missing}
    return render(state, people, h, w, bg, cfg, on_frame), info


def driver_plate(driver_frames: Callable[[], Iterator[np.ndarray]],
                 people: Sequence[Person | None], h: int, w: int, *, max_frames: int = 48,
                 register: bool = True, margin: float = 0.15,
                 segment: bool = True) -> np.ndarray:
    """The driver video's clean plate, streamed: memory does not grow with the video.

    At most ``max_frames`` frames, spread evenly over the video (``len(people)`` frames), are
    decoded and kept; the middle one of them is the reference. Each is registered onto the
    reference (ORB + RANSAC homography; identity when unreliable), so a panning or zooming
    camera still gives a sharp plate in the reference's view. Per pixel, the median is taken
    over the frames where the driver does not cover it: the person mask is drawn from the
    keypoints and grown by ``margin`` x the person's height, joined (``segment``, when
    MediaPipe is installed) with the person's segmentation in that frame grown by 3 % of its
    height, so a loose dress or hair far from the keypoints leaves no ghost. Pixels no frame
    shows are inpainted with the default backend (PatchMatch).
    The video is read twice: up to the reference frame, then up to the last sampled frame.

    Returns: uint8 (h, w, 3).
    """
    from .inpaint import registered_median_plate
    from .perception.base import mask_from_keypoints

    n = len(people)
    if n == 0:
        raise PipelineError("the driver video has no frames")
    picks = np.unique(np.linspace(0, n - 1, max(1, min(n, max_frames))).round().astype(int))
    ref_idx = int(picks[len(picks) // 2])
    wanted = set(int(i) for i in picks) - {ref_idx}

    segmenter = None
    if segment:
        try:
            from .perception.mediapipe_holistic import HolisticDetector

            # complexity 1: the model the wheel ships (0 and 2 would download)
            segmenter = HolisticDetector(static_image_mode=True, with_mask=True)
        except (ImportError, RuntimeError) as exc:  # no mediapipe: keypoint masks only
            logger.info("driver plate: no person segmentation (%s)", exc)

    def grown(m: np.ndarray, by: float) -> np.ndarray:
        # distance transform: the cost does not depend on how far the mask grows
        far = cv2.distanceTransform((~m).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
        return far <= by

    def person_mask(i: int, frame: np.ndarray | None = None) -> np.ndarray:
        p = people[i]
        box = p.bbox() if p is not None else None
        if box is None:
            return np.zeros((h, w), bool)
        size = max(box[3] - box[1], box[2] - box[0])
        m = grown(mask_from_keypoints(p, h, w) > 0.5, max(6.0, margin * size))
        if segmenter is not None and frame is not None:
            for d in segmenter(frame):
                if d.mask is not None:
                    m |= grown(d.mask > 0.5, max(3.0, 0.03 * size))
        return m

    def rgb(f: np.ndarray) -> np.ndarray:
        img = _to_rgb(f, "a driver frame")
        if img.shape[:2] != (h, w):
            raise PipelineError(f"a driver frame is {img.shape[1]}x{img.shape[0]}, the "
                                f"video {w}x{h}: the driver video changes size")
        return img

    reference = None
    for i, f in enumerate(driver_frames()):  # pass 1: the reference frame only
        if i == ref_idx:
            reference = rgb(f)
            break
    if reference is None:
        raise PipelineError(f"the driver video gave fewer frames than its {n} poses")

    def others() -> Iterator[tuple[np.ndarray, np.ndarray]]:  # pass 2: the sample
        for i, f in enumerate(driver_frames()):
            if i > picks[-1]:
                break
            if i in wanted:
                img = rgb(f)
                yield img, person_mask(i, img)

    try:
        plate, never, warped = registered_median_plate(
            (reference, person_mask(ref_idx, reference)), others(), register=register)
    except ValueError as exc:
        raise PipelineError(f"no clean plate from the driver video: {exc}; use another "
                            "background") from exc
    finally:
        if segmenter is not None:
            segmenter.close()
    if never.any():
        logger.info("driver plate: %.1f%% never uncovered, inpainted", 100 * never.mean())
    return plate


def sheet_path(video: Path) -> Path:
    """The contact sheet written next to ``video``."""
    return video.with_name(video.stem + "_contact_sheet.png")


def write_outputs(frames: Iterator[np.ndarray], info: dict, out: Path,
                  sheet_every: int | None = None, *, overwrite: bool = True
                  ) -> tuple[Path, Path, int]:
    """Write the MP4 and a contact sheet (12 frames spread over the clip).

    Each file goes through a private temporary file and lands atomically. With
    ``overwrite=False`` nothing existing is replaced: if another run wrote ``out`` meanwhile,
    this run's files take the next free name. Returns where the video and the sheet are.
    """
    from PIL import Image

    from .video_io import encode_mp4, output_file

    n = info["count"]
    every = sheet_every or max(1, n // 12)
    picked: list[np.ndarray] = []

    def tap() -> Iterator[np.ndarray]:
        for i, f in enumerate(frames):
            if i % every == 0 and len(picked) < 12:
                picked.append(f)
            yield f

    out = Path(out)
    wanted = out.with_suffix(".mp4")
    video, count = encode_mp4(tap(), wanted, info["fps"], overwrite=overwrite)
    if video != wanted:
        logger.warning("%s was written by another run meanwhile; this run's video is %s",
                       wanted, video)
    with output_file(sheet_path(video), overwrite=overwrite) as (tmp, final):
        from .video_io import contact_sheet

        Image.fromarray(contact_sheet(picked, columns=6)).save(tmp, format="PNG")
    return video, final[0], count
