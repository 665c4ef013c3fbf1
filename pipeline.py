"""The streamed driver of the method: one target photo + a driver -> frames, one at a time.

The driver of the ``reenact`` CLI and of the Reenact (all-in-one, streamed) node. It holds no
method of its own: it chains the stage functions the stage nodes call (``models/stages.py``
and the library's rooms; SPEC §1, paper eqs. 1–8) in the graph's order, with the
``offline_weightless.json`` workflow's defaults, so both give the same frames
(``tests/test_one_path.py``). The target is analysed ONCE (OpenPose, Human Parse, Part Cropper,
Inpaint, its face); the driver's poses in one streamed pass (only keypoints kept; missing
people interpolated; Smooth Pose); then every driver frame goes P2B -> B2F -> Stabilize Mask ->
Mask Blend -> FaceRefine and is yielded, so a long video never sits in memory as parsing maps,
one-hot tensors or output frames.

Backends default to the weightless ones (no download): MediaPipe poses, geometric parsing, the
warp P2B and B2F, PatchMatch inpainting and the landmark-aligned face paste. Learned P2B, B2F
and FaceRefine checkpoints (our safetensors) plug in by path.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .models.compositing.face import MIN_FACE_PX
from .models.core.schema import Person, frame_to_people, people_to_frame, sequence_is_normalized
from .models.stages import TargetPhoto, person_in_frame

logger = logging.getLogger(__name__)


class PipelineError(ValueError):
    """The pipeline cannot run on these inputs; the message says what to change."""


@dataclass
class PipelineConfig:
    """Backends and options of :func:`reenact`. Every default is the shipped
    ``offline_weightless.json`` workflow's, so the CLI and that graph give the same frames
    (``tests/test_one_path.py``), and none needs a download.

    Args:
        pose_backend: ``mediapipe`` | ``openpose`` | ``dwpose`` (target photo and driver video).
        parse_backend: ``geometric`` | ``schp_lip`` | ``schp_lip_onnx``.
        p2b: ``warp`` or the path of a P2BGenerator safetensors file.
        densepose: what a learned P2B reads: ``densepose_r50`` (the DensePose network, as the
            full_method workflow) or ``weightless`` (drawn from the keypoints). A driver given
            as a motion (keypoints only) always uses ``weightless``.
        b2f: ``warp`` or the path of a B2FGenerator safetensors file (needs the pretrained
            appearance encoder's weights).
        face: ``weightless`` (landmark-aligned paste), ``none``, or the path of a
            FaceRefineNet safetensors file.
        min_face_px: faces smaller than this pass FaceRefine unchanged.
        inpaint: ``patchmatch`` | ``opencv`` (Telea) | ``lama``: how the target photo's own
            background is cleaned (docs/inpainting.md compares them); ``inpaint_dilate``: how
            far the person mask is grown first (px).
        smooth: Savitzky–Golay smoothing of the driver keypoints (the Smooth Pose node).
        stabilize: the Stabilize Mask node's motion-gated mask average.
        feather: B2F warp mask feather (px); blend_feather: extra feather at the blend.
        device: torch device for learned stages (None = CUDA if available, else CPU).
    """

    pose_backend: str = "mediapipe"
    parse_backend: str = "geometric"
    p2b: str = "warp"
    densepose: str = "densepose_r50"
    b2f: str = "warp"
    face: str = "weightless"
    min_face_px: int = MIN_FACE_PX
    inpaint: str = "patchmatch"
    inpaint_dilate: int = 12
    smooth: bool = True
    stabilize: bool = True
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
    """Everything computed once per target photo (at the photo's own size, as the graph)."""

    target: TargetPhoto        # photo, parsing p*, keypoints
    background: np.ndarray     # uint8 (h, w, 3) target photo with the person inpainted
    p2b_net: torch.nn.Module | None = None
    b2f_net: torch.nn.Module | None = None
    b2f_x0: torch.Tensor | None = None
    face_net: torch.nn.Module | None = None  # FaceRefineNet; None = the weightless paste

    @property
    def image(self) -> np.ndarray:
        return self.target.image

    @property
    def labels(self) -> np.ndarray:
        return self.target.labels

    @property
    def person(self) -> Person:
        assert self.target.person is not None
        return self.target.person


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


def _pose_estimator(cfg: PipelineConfig, *, video: bool):
    """The OpenPose node's estimator (hands, face and derived hands on)."""
    from .models.perception.pose import PoseEstimator

    return PoseEstimator(cfg.pose_backend, device=cfg.torch_device(), video=video)


def prepare_target(target: np.ndarray, cfg: PipelineConfig,
                   out_hw: tuple[int, int] | None = None) -> TargetState:
    """Analyse the target photo once, as the graph's target branch does: OpenPose -> Human
    Parse -> Part Cropper (:class:`TargetPhoto`) -> Inpaint (its background); learned
    weights, when asked for, are loaded here so a missing file is reported in seconds.
    (``out_hw`` is accepted for old callers; the warps reduce a large photo themselves.)
    """
    from .models.compositing.inpaint import dilate_mask, fill_reduced, inpaint_still
    from .models.core.schema import group_mask
    from .models.perception.human_parsing import HumanParser
    from .models.stages import P2BWarp, fill_person, parse_target, select_detections

    rgb = _to_rgb(target, "the target photo")
    device = cfg.torch_device()
    with _pose_estimator(cfg, video=False) as estimator:
        chosen = select_detections(estimator(rgb), "largest")
    if not chosen:
        raise PipelineError("no person found in the target photo: use a photo that shows one "
                            "person clearly (face and upper body at least)")
    h, w = rgb.shape[:2]
    # the keypoints go through the POSE_KEYPOINT codec, as in the graph
    pose = people_to_frame([d.person for d in chosen], w, h)
    normalized = sequence_is_normalized([pose])
    people = [p for p in frame_to_people(pose, normalized=normalized) if p.bbox() is not None]
    parser = HumanParser(cfg.parse_backend, device=device)
    detections = None
    if parser.needs_keypoints:
        with _pose_estimator(cfg, video=False) as detector:
            detections = detector(rgb)
    labels = parse_target(parser, rgb, detections, people)
    if labels is None or not labels.any():
        raise PipelineError("the target photo's parsing found no person")
    person = person_in_frame(pose, h, w, normalized=normalized)
    if person is None:
        raise PipelineError("no person found in the target photo: use a photo that shows one "
                            "person clearly (face and upper body at least)")
    photo = TargetPhoto(rgb, labels, person)
    mask = dilate_mask(group_mask(labels, "person"), cfg.inpaint_dilate)
    if mask.all():
        raise PipelineError("the person covers the whole target photo: there is no background "
                            "to fill from; give --background, or a photo with some space "
                            "around the person")
    if cfg.inpaint == "lama":
        from .models.compositing.inpaint import load_lama

        fill = load_lama(device=device)
    elif cfg.inpaint in ("patchmatch", "opencv"):
        backend = "patchmatch" if cfg.inpaint == "patchmatch" else "opencv_telea"

        def fill(img: np.ndarray, m: np.ndarray) -> np.ndarray:
            return inpaint_still(img, m, backend, radius=5)
    else:
        raise PipelineError(f"unknown inpaint backend {cfg.inpaint!r}: use patchmatch, opencv "
                            "or lama")
    background = fill_person(rgb, mask, lambda img, m: fill_reduced(img, m, fill))
    try:  # a target without a body to rig: say so now, before the driver pass
        P2BWarp(labels, person, [person], out_hw or (h, w))
    except ValueError as exc:
        raise PipelineError(f"the target photo: {exc}") from exc
    state = TargetState(target=photo, background=background)
    _load_networks(state, cfg, device)
    if cfg.face not in ("weightless", "none") and not Path(cfg.face).is_file():
        raise PipelineError(f"--face {cfg.face!r}: use weightless, none or the path of a "
                            "FaceRefineNet .safetensors file")
    return state


def _load_networks(state: TargetState, cfg: PipelineConfig, device: torch.device) -> None:
    """The learned stages asked for by ``cfg`` (P2B, B2F with e_z projected once, FaceRefine)."""
    from .models.io.loading import load_model

    if cfg.p2b != "warp":
        state.p2b_net = load_model(cfg.p2b, expected_arch="P2BGenerator", device=device)
    if cfg.b2f != "warp":
        from .models.networks.appearance import crops_to_tensor, load_pretrained_encoder
        from .models.networks.parts import crop_parts

        net = load_model(cfg.b2f, expected_arch="B2FGenerator", device=device)
        crops = crop_parts(state.image, state.labels)
        encoder = load_pretrained_encoder(device)
        with torch.inference_mode():
            e_z = encoder(crops_to_tensor(crops.crops[None]).to(device),
                          torch.from_numpy(crops.present[None]).to(device))
            state.b2f_x0 = net.project(e_z)  # once per target
        state.b2f_net = net
    if cfg.face not in ("weightless", "none"):
        state.face_net = load_model(cfg.face, expected_arch="FaceRefineNet", device=device)


def driver_people_from_pose(frames: Sequence[dict]) -> tuple[list[Person | None], int, int]:
    """POSE_KEYPOINT frames -> one (largest) person per frame and the canvas (H, W)."""
    if not frames:
        raise PipelineError("the driver motion has no frames")
    h, w = int(frames[0]["canvas_height"]), int(frames[0]["canvas_width"])
    normalized = sequence_is_normalized(frames)  # once for the clip, not per frame
    people = [person_in_frame(f, h, w, normalized=normalized) for f in frames]
    return people, h, w


def driver_people_from_video(frames: Iterable[np.ndarray], cfg: PipelineConfig
                             ) -> tuple[list[list[Person]], int, int]:
    """The OpenPose node on the driver video, streamed (only keypoints are kept): the people
    chosen in each frame (the largest; an empty list where nobody was found)."""
    from .models.stages import select_detections

    people: list[list[Person]] = []
    hw: tuple[int, int] | None = None
    with _pose_estimator(cfg, video=True) as est:
        for frame in frames:
            rgb = _to_rgb(frame, "a driver frame")
            if hw is None:
                hw = rgb.shape[:2]
            elif rgb.shape[:2] != hw:
                raise PipelineError("the driver video changes size between frames")
            people.append([d.person for d in select_detections(est(rgb), "largest")])
    if hw is None:
        raise PipelineError("the driver video has no frames")
    if est.stats.notes():
        logger.info("driver poses: %s", est.stats)
    return people, int(hw[0]), int(hw[1])


def driver_motion(found: list[list[Person]], height: int, width: int, fps: float,
                  cfg: PipelineConfig) -> tuple[list[Person | None], list[int]]:
    """The graph's driver chain on detected people: missing frames interpolated (OpenPose's
    ``on_no_person=interpolate``), Smooth Pose, then each frame's person as P2B/B2F read it.
    Returns (one person per frame, the frames where nobody was found)."""
    from .models.geometry.temporal import NoPersonError, SmoothingOptions, smooth_pose_sequence
    from .models.stages import fill_missing_detections

    try:
        found, missing, gaps = fill_missing_detections(found)
    except NoPersonError as exc:
        raise PipelineError("no person found in any driver frame: use a driver video (or "
                            "motion) that shows one person's body; another pose backend may "
                            "find them") from exc
    if missing:
        logger.warning("driver: %s", gaps)
    frames = [people_to_frame(f, width, height) for f in found]
    if cfg.smooth:
        frames, _ = smooth_pose_sequence(frames, SmoothingOptions(fps=fps))
    normalized = sequence_is_normalized(frames)
    return [person_in_frame(f, height, width, normalized=normalized) for f in frames], missing


class Background:
    """Background frames for the blend, as float (H, W, 3) 0..1 tensors fitted to the driver
    canvas by ``cover`` (the Mask Blend node's ``blend.fit_frame``): one still (fitted once)
    or a video (looped)."""

    def __init__(self, still: np.ndarray | None = None,
                 frames: Callable[[], Iterator[np.ndarray]] | None = None) -> None:
        self.still, self._factory = still, frames
        self._it: Iterator[np.ndarray] | None = None
        self._cache: tuple[tuple[int, int], torch.Tensor] | None = None

    @staticmethod
    def fit(img: np.ndarray, h: int, w: int) -> torch.Tensor:
        """uint8 (h', w', 3) -> float (h, w, 3) 0..1, scaled to cover and centre-cropped."""
        from .models.compositing.blend import fit_frame

        return fit_frame(torch.from_numpy(np.ascontiguousarray(img)).float() / 255.0, h, w,
                         "cover")

    def frame(self, h: int, w: int) -> torch.Tensor:
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


def _to_uint8(frame: torch.Tensor) -> np.ndarray:
    """float (H, W, 3) 0..1 -> uint8, rounded as ComfyUI IMAGE frames are read back."""
    return (frame.clamp(0, 1) * 255.0 + 0.5).to(torch.uint8).numpy()


class _Renderer:
    """P2B -> B2F for one frame, by the backends of ``state``; the weightless pair shares one
    render of the rig per frame (its labels equal the P2B rig's: tests/test_mesh_warp.py)."""

    def __init__(self, state: TargetState, people: Sequence[Person | None], hw: tuple[int, int],
                 cfg: PipelineConfig, densepose: Callable[[int], Any] | None) -> None:
        from .models.stages import B2FWarp, P2BWarp

        self.state, self.hw, self.cfg, self.densepose = state, hw, cfg, densepose
        self.device = cfg.torch_device()
        self.b2f = B2FWarp(state.target, people, hw, feather=cfg.feather, device=self.device) \
            if state.b2f_net is None else None
        self.p2b = P2BWarp(state.labels, state.person, people, hw) \
            if state.b2f_net is not None and state.p2b_net is None else None

    def __call__(self, i: int, person: Person) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(labels uint8 (H, W), z uint8 (H, W, 3), m float32 (H, W))."""
        from .models.networks.b2f import run_b2f_frame

        h, w = self.hw
        rendered = None
        if self.state.p2b_net is not None:
            labels = _p2b_network(self.state, person, h, w, self.device,
                                  self.densepose(i) if self.densepose else None)
        elif self.b2f is not None:
            rendered = self.b2f.rig.render(person, float(self.b2f.scales[i]), self.hw)
            labels = rendered.labels
        else:
            assert self.p2b is not None
            labels = self.p2b(i, person)
        if self.b2f is None:
            with torch.inference_mode():
                res = run_b2f_frame(self.state.b2f_net, self.state.b2f_x0, labels, person.face,
                                    device=self.device)
            if res is None:
                return labels, np.zeros((h, w, 3), np.uint8), np.zeros((h, w), np.float32)
            z = (res[0].clamp(0, 1) * 255.0 + 0.5).to(torch.uint8).cpu().numpy()
            return labels, z, res[1].float().cpu().numpy()
        from .models.geometry.mesh_warp import warp_frame_mesh

        if not labels.any():
            return labels, np.zeros((h, w, 3), np.uint8), np.zeros((h, w), np.float32)
        wf = warp_frame_mesh(self.b2f.rig, labels, person, float(self.b2f.scales[i]),
                             feather=self.b2f.feather, rendered=rendered)
        return labels, wf.image, wf.mask.astype(np.float32, copy=False)


def render(state: TargetState, people: Sequence[Person | None], height: int, width: int,
           background: Background, cfg: PipelineConfig,
           on_frame: Callable[[int, int], None] | None = None,
           densepose: Callable[[int], Any] | None = None) -> Iterator[np.ndarray]:
    """Yield the reenacted frames (uint8 (height, width, 3)), one per driver frame, through
    the graph's per-frame chain: P2B -> B2F -> Stabilize Mask -> Mask Blend -> FaceRefine.

    A frame without a driver person holds the previous parsing (P2B's ``hold``) and shows
    the background alone (B2F's empty mask for a frame without keypoints).
    """
    from .models.compositing.blend import blend_frame
    from .models.geometry.temporal import MaskStabilizer
    from .models.stages import FaceOptions, FaceRefiner

    hw = (int(height), int(width))
    renderer = _Renderer(state, people, hw, cfg, densepose)
    refiner = None
    if cfg.face != "none":
        refiner = FaceRefiner(state.image, FaceOptions(), module=state.face_net,
                              min_face_px=cfg.min_face_px, device=cfg.torch_device())
        if not refiner.target_found:
            logger.warning("no usable face on the target photo (%s, %.0f px): FaceRefine is "
                           "skipped", refiner.target_face.status, refiner.target_face.size)
    stabilizer = MaskStabilizer() if cfg.stabilize and len(people) > 1 else None
    labels = np.zeros(hw, np.uint8)
    comp = torch.empty((height, width, 3), dtype=torch.float32)
    try:
        for i, person in enumerate(people):
            if person is not None:
                labels, z, m = renderer(i, person)
            else:  # P2B holds the previous parsing; B2F draws nothing without keypoints
                z, m = np.zeros((height, width, 3), np.uint8), np.zeros(hw, np.float32)
            if stabilizer is not None:
                m = stabilizer.update(m, z)
            zt = torch.from_numpy(z).float() / 255.0
            blend_frame(zt, torch.from_numpy(m).float(), background.frame(height, width),
                        feather=cfg.blend_feather, out=comp)
            out = _to_uint8(comp)
            if refiner is not None and refiner.target_found:
                res, _ = refiner(out, labels)
                if res is not None:
                    out = res
            yield out
            if on_frame:
                on_frame(i + 1, len(people))
    finally:
        if refiner is not None:
            refiner.close()


def _densepose_r50(cfg: PipelineConfig) -> Callable[[np.ndarray], Any]:
    """The DensePose R50-FPN network (the full_method workflow's P2B input)."""
    from .models.io.weights import resolve
    from .models.perception.densepose import DensePoseTorchScript, load_densepose_torchscript

    device = cfg.torch_device()
    return DensePoseTorchScript(load_densepose_torchscript(resolve("densepose_r50"), device),
                                device=device)


def _p2b_network(state: TargetState, person: Person, h: int, w: int,
                 device: torch.device, dense: Any = None) -> np.ndarray:
    """The learned P2B on one driver frame: its stick figure and DensePose (``dense``, else
    drawn from the keypoints) as its input."""
    from .models.geometry.render import draw_pose
    from .models.networks.p2b import DriverFrame, predict_parsing
    from .models.perception.base import mask_from_keypoints
    from .models.perception.densepose import densepose_from_keypoints

    if dense is None or not (dense.index > 0).any():
        dense = densepose_from_keypoints(person, mask_from_keypoints(person, h, w), h, w)
    frame = DriverFrame(h, w, person, draw_pose([person], h, w), dense.index, dense.u, dense.v)
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
            (uint8 RGB; read once for the poses, again for ``background="driver"`` and for
            a learned P2B's DensePose), or
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
        found = [[p] if p is not None else [] for p in people]
    else:
        frames_it = driver_frames()
        first = next(frames_it, None)
        if first is None:
            raise PipelineError("the driver video has no frames: give a video with frames")
        state = prepare_target(target, cfg, out_hw=tuple(np.asarray(first).shape[:2]))
        found, h, w = driver_people_from_video(itertools.chain([first], frames_it), cfg)
    # A frame without a driver person never stops the video nor shows an empty background:
    # its pose is interpolated from the neighbouring frames (held at the ends).
    people, missing = driver_motion(found, h, w, fps, cfg)
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
    densepose = None
    if state.p2b_net is not None and driver_frames is not None \
            and cfg.densepose == "densepose_r50":
        densepose = _stream_densepose(driver_frames, _densepose_r50(cfg))
    info = {"count": len(people), "height": h, "width": w, "fps": fps,
            "missing_frames": missing}
    return render(state, people, h, w, bg, cfg, on_frame, densepose), info


def _stream_densepose(driver_frames: Callable[[], Iterator[np.ndarray]],
                      runner: Callable[[np.ndarray], Any]) -> Callable[[int], Any]:
    """DensePose of driver frame ``i``, read in order from a second pass over the video."""
    it = driver_frames()
    pos = [-1]

    def at(i: int) -> Any:
        frame = None
        while pos[0] < i:
            frame = next(it)
            pos[0] += 1
        return runner(_to_rgb(frame, "a driver frame"))
    return at


def driver_plate(driver_frames: Callable[[], Iterator[np.ndarray]],
                 people: Sequence[Person | None], h: int, w: int, **kw: Any) -> np.ndarray:
    """The driver video's clean plate (``inpaint.driver_clean_plate``, streamed)."""
    from .models.compositing.inpaint import driver_clean_plate

    def frames() -> Iterator[np.ndarray]:
        for f in driver_frames():
            img = _to_rgb(f, "a driver frame")
            if img.shape[:2] != (h, w):
                raise PipelineError(f"a driver frame is {img.shape[1]}x{img.shape[0]}, the "
                                    f"video {w}x{h}: the driver video changes size")
            yield img

    try:
        return driver_clean_plate(frames, people, h, w, **kw)
    except ValueError as exc:
        raise PipelineError(f"no clean plate from the driver video: {exc}; use another "
                            "background") from exc


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

    from .models.io.video import encode_mp4, output_file

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
        from .models.io.video import contact_sheet

        Image.fromarray(contact_sheet(picked, columns=6)).save(tmp, format="PNG")
    return video, final[0], count
