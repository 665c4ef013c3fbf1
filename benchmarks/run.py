"""Benchmark harness: per-stage speed and memory at 512x320, against this machine's limit.

    python benchmarks/run.py                       # all stages, 512x320, 24 frames
    python benchmarks/run.py --frames 300 --stages render_pose parsing_iou
    python benchmarks/run.py --size 64x40 --frames 2   # a smoke run

In ONE run it measures
- this machine's fp32 matmul throughput (GFLOP/s, square matmuls, all threads torch uses);
- per stage: frames per second over N streamed frames, peak resident memory (RSS, sampled
  every few ms with psutil; ``resource`` as fallback) and its rise above the RSS before the
  stage;
- for stages that declare a torch module: FLOPs per frame (``torch.utils.flop_counter.
  FlopCounterMode``), achieved GFLOP/s and that as a fraction of the matmul throughput;
- a naive baseline variant where a stage has one (eager NCHW without inference mode, one-hot
  label maps, a reference library), so speed-ups are ratios measured in the same run.

Stages others add: implement ``benchmark_stage(config) -> Stage`` (or a list of them) in a module
named in :data:`HOOKS` (P2B, B2F, FaceRefine, the whole pipeline); missing modules are skipped.
Inputs are synthesised per index (a figure moving over a gradient) and cycled through a ring of
8, so no video is held and synthesis stays out of the timings.
"""

from __future__ import annotations

import argparse
import functools
import gc
import importlib
import logging
import math
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

logger = logging.getLogger("benchmarks")

if __package__ in (None, ""):  # run as a script from a clone: make the pack importable
    root = Path(__file__).resolve().parents[1]
    try:
        import dance_reenact  # noqa: F401
    except ImportError:
        import types

        pkg = types.ModuleType("dance_reenact")
        pkg.__path__ = [str(root)]  # type: ignore[attr-defined]
        sys.modules["dance_reenact"] = pkg

from dance_reenact.models import metrics as M  # noqa: E402
from dance_reenact.models.render import draw_pose  # noqa: E402
from dance_reenact.models.schema import BODY, NUM_LABELS, Person  # noqa: E402

COLUMNS = ("stage", "variant", "frames", "fps", "peak_rss_mb", "rss_rise_mb", "gflop_per_frame",
           "gflops", "pct_of_matmul", "speedup_vs_baseline", "notes")

# "module:function" returning a Stage or a list of Stages; filled in by the other stages.
HOOKS: list[str] = [
    "dance_reenact.models.p2b:benchmark_stage",
    "dance_reenact.models.b2f:benchmark_stage",
    "dance_reenact.models.facerefine:benchmark_stage",
    "dance_reenact.models.pipeline:benchmark_stage",
]


@dataclass
class BenchConfig:
    width: int = 320
    height: int = 512
    frames: int = 24
    device: str = "cpu"
    nets: str = "paper"  # P2B/B2F size: "paper" (the default configs) or "tiny" (smoke tests)
    heavy_frames: int = 3  # frames for the paper-size P2B/B2F (seconds per frame on a CPU)
    stream_frames: int = 300  # driver length of the streamed whole-chain memory run
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="bench-")))


@dataclass
class Stage:
    """A benchmarked stage.

    ``setup(config)`` returns ``step(i)`` that processes frame ``i`` (setup time is not
    counted); ``baseline`` the same for the naive variant; ``flops(config)`` returns
    ``(module, args)`` whose one call is one frame's work, for FLOP counting; ``frames``
    how many frames to time (default ``config.frames``). A ``step`` may carry a ``stats`` dict
    (e.g. encoder calls) that the table's notes show.
    """

    name: str
    setup: Callable[[BenchConfig], Callable[[int], Any]]
    baseline: Callable[[BenchConfig], Callable[[int], Any]] | None = None
    flops: Callable[[BenchConfig], tuple[torch.nn.Module, tuple]] | None = None
    frames: Callable[[BenchConfig], int] | None = None


# --------------------------------------------------------------------------------------------
# measurement
# --------------------------------------------------------------------------------------------


def measure_matmul_gflops(n: int = 1024, min_seconds: float = 0.5) -> float:
    """fp32 ``n x n`` matmul throughput of this machine (best of repeated timed batches)."""
    a = torch.randn(n, n)
    b = torch.randn(n, n)
    for _ in range(2):
        a @ b
    best = 0.0
    t_end = time.perf_counter() + min_seconds
    while True:
        t0 = time.perf_counter()
        reps = 3
        for _ in range(reps):
            a @ b
        dt = time.perf_counter() - t0
        best = max(best, 2.0 * n ** 3 * reps / dt / 1e9)
        if time.perf_counter() > t_end:
            return best


def count_flops(module: torch.nn.Module, *args: Any) -> int:
    """FLOPs of one call (matmul/conv counted by torch's FlopCounterMode)."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.inference_mode(), FlopCounterMode(display=False) as fc:
        module(*args)
    return int(fc.get_total_flops())


def module_efficiency(module: torch.nn.Module, args: tuple, matmul_gflops: float,
                      calls: int = 3) -> dict[str, float]:
    """Achieved throughput of ``module(*args)`` (inference mode, best of ``calls`` timed calls
    after one warm-up) as GFLOP per call, GFLOP/s and the fraction of ``matmul_gflops``."""
    flop = count_flops(module, *args)
    with torch.inference_mode():
        module(*args)
        best = math.inf
        for _ in range(calls):
            t0 = time.perf_counter()
            module(*args)
            best = min(best, time.perf_counter() - t0)
    gflops = flop / best / 1e9
    return {"gflop": flop / 1e9, "gflops": gflops, "fraction_of_matmul": gflops / matmul_gflops}


def _rss_bytes() -> int:
    try:
        import psutil

        return int(psutil.Process().memory_info().rss)
    except ImportError:  # pragma: no cover - psutil is a test dependency
        import resource

        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


class PeakRSS:
    """Sample the process RSS in a thread while the block runs; ``peak`` and ``start`` in MB."""

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.start = self.peak = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss_bytes() / 2 ** 20)
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakRSS:
        gc.collect()
        self.start = self.peak = _rss_bytes() / 2 ** 20
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.peak = max(self.peak, _rss_bytes() / 2 ** 20)


@dataclass
class Timing:
    frames: int
    seconds: float
    peak_rss_mb: float
    rss_rise_mb: float
    roof_gflops: float | None = None

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else math.inf


def release_memory() -> None:
    """Collect garbage and hand freed heap pages back to the OS (glibc ``malloc_trim``), so
    one variant's freed memory does not hide the next one's growth in the RSS."""
    gc.collect()
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # pragma: no cover - not glibc
        pass


def time_stage(step: Callable[[int], Any], frames: int, warmup: int = 1,
               probe: Callable[[], float] | None = None) -> Timing:
    """Run ``step(i)`` for i in 0..frames-1 after ``warmup`` untimed calls; fps and RSS.

    ``probe`` (the matmul roof) runs untimed before every frame and after the last: on a
    shared machine whose load changes by the minute, the roof is measured under the same
    conditions as the frames, and its best value is kept (a conservative denominator).
    """
    for i in range(warmup):
        step(i)
    roof = None
    dt = 0.0
    with PeakRSS() as mem:
        for i in range(frames):
            if probe is not None:
                roof = max(roof or 0.0, probe())
            t0 = time.perf_counter()
            step(i)
            dt += time.perf_counter() - t0
        if probe is not None:
            roof = max(roof or 0.0, probe())
    return Timing(frames, dt, mem.peak, mem.peak - mem.start, roof)


# --------------------------------------------------------------------------------------------
# synthetic inputs (per index, never a whole video)
# --------------------------------------------------------------------------------------------


def person_at(i: int, w: int, h: int) -> Person:
    """A figure whose arms swing with the frame index, scaled to the frame."""
    body = np.zeros((18, 3), np.float32)
    t = i / 24.0
    sx, sy = w / 320, h / 512
    pts = {"nose": (160, 60), "neck": (160, 110), "right_shoulder": (120, 110),
           "left_shoulder": (200, 110), "right_hip": (135, 270), "left_hip": (185, 270),
           "right_knee": (135, 370), "left_knee": (185, 370), "right_ankle": (135, 470),
           "left_ankle": (185, 470)}
    for side, sign, phase in (("right", -1, 0.0), ("left", 1, math.pi)):
        a = 0.8 * math.sin(2 * math.pi * t + phase)
        x0, y0 = pts[f"{side}_shoulder"]
        ex, ey = x0 + sign * 60 * math.cos(a), y0 + 60 * math.sin(a) + 20
        pts[f"{side}_elbow"] = (ex, ey)
        pts[f"{side}_wrist"] = (ex + sign * 50 * math.cos(2 * a), ey + 50 * math.sin(2 * a))
    for k, (x, y) in pts.items():
        body[BODY[k]] = (x * sx, y * sy, 1.0)
    return Person(body=body)


RING = 8  # distinct synthetic frames, cycled: input synthesis stays out of the timings


def frame_at(i: int, w: int, h: int) -> np.ndarray:
    """uint8 RGB (h, w, 3): the stick figure over a gradient (frame ``i % RING``)."""
    return _frame_at(i % RING, w, h)


def labels_at(i: int, w: int, h: int) -> np.ndarray:
    """A (h, w) label map of parts that move with ``i % RING``."""
    return _labels_at(i % RING, w, h)


@functools.lru_cache(maxsize=2 * RING)
def _frame_at(i: int, w: int, h: int) -> np.ndarray:
    fig = draw_pose([person_at(i, w, h)], h, w)
    yy, xx = np.mgrid[0:h, 0:w]
    bg = np.stack([xx * 255 // max(w - 1, 1), yy * 255 // max(h - 1, 1),
                   np.full_like(xx, 90)], -1).astype(np.uint8)
    return np.where(fig.any(-1, keepdims=True), fig, bg)


@functools.lru_cache(maxsize=2 * RING)
def _labels_at(i: int, w: int, h: int) -> np.ndarray:
    x = (np.arange(w)[None, :] + 3 * i) // max(w // 11, 1)
    y = np.arange(h)[:, None] // max(h // 2, 1)
    return ((x + 11 * y) % NUM_LABELS).astype(np.uint8)


def _pair(cfg: BenchConfig, i: int) -> tuple[torch.Tensor, torch.Tensor]:
    a = M.to_nchw(frame_at(i, cfg.width, cfg.height))
    b = M.to_nchw(frame_at(i + 1, cfg.width, cfg.height))
    return a.to(cfg.device), b.to(cfg.device)


# --------------------------------------------------------------------------------------------
# stages that exist now
# --------------------------------------------------------------------------------------------


def _render_pose(cfg: BenchConfig) -> Callable[[int], Any]:
    return lambda i: draw_pose([person_at(i, cfg.width, cfg.height)], cfg.height, cfg.width)


def _parsing_iou(cfg: BenchConfig) -> Callable[[int], Any]:
    def step(i: int) -> Any:
        a = torch.from_numpy(labels_at(i, cfg.width, cfg.height))[None]
        b = torch.from_numpy(labels_at(i + 1, cfg.width, cfg.height))[None]
        return M.parsing_similarity(a, b)
    return step


def _parsing_iou_onehot(cfg: BenchConfig) -> Callable[[int], Any]:
    """Naive: one-hot (22, H, W) maps and per-label boolean IoU."""
    def step(i: int) -> Any:
        a = torch.nn.functional.one_hot(torch.from_numpy(labels_at(i, cfg.width, cfg.height))
                                        .long(), NUM_LABELS).permute(2, 0, 1).bool()
        b = torch.nn.functional.one_hot(torch.from_numpy(labels_at(i + 1, cfg.width,
                                                                   cfg.height)).long(),
                                        NUM_LABELS).permute(2, 0, 1).bool()
        ious = []
        for k in range(1, NUM_LABELS):
            u = (a[k] | b[k]).sum()
            if u:
                ious.append(float((a[k] & b[k]).sum() / u))
        return float(np.mean(ious)) if ious else 1.0
    return step


def _ssim(cfg: BenchConfig) -> Callable[[int], Any]:
    return lambda i: M.ssim(*_pair(cfg, i))


def _ssim_skimage(cfg: BenchConfig) -> Callable[[int], Any]:
    from skimage.metrics import structural_similarity

    def step(i: int) -> Any:
        a = frame_at(i, cfg.width, cfg.height).astype(np.float64) / 255
        b = frame_at(i + 1, cfg.width, cfg.height).astype(np.float64) / 255
        return structural_similarity(a, b, gaussian_weights=True, sigma=1.5,
                                     use_sample_covariance=False, data_range=1.0,
                                     channel_axis=-1)
    return step


def _psnr(cfg: BenchConfig) -> Callable[[int], Any]:
    return lambda i: M.masked_psnr(*_pair(cfg, i))


def generated_lpips(cfg: BenchConfig, backbone: str) -> M.LPIPS:
    """LPIPS loaded through :func:`load_lpips` from weight files generated here (random
    values, exact layouts): the loader is exercised, no download is needed."""
    from safetensors.torch import save_file

    torch.manual_seed(0)
    net = M.LPIPS(backbone=backbone)
    bfile = cfg.workdir / f"{backbone}_features.safetensors"
    hfile = cfg.workdir / f"{backbone}_heads.pth"
    if not bfile.exists():
        save_file({f"features.{k}": v.contiguous() for k, v in
                   net.features.state_dict().items()}, str(bfile))
        torch.save({k: v.abs() for k, v in net.state_dict().items() if k.startswith("lin")},
                   hfile)
    return M.load_lpips(backbone, backbone_weights=bfile, head_weights=hfile,
                        device=cfg.device)


def _lpips(backbone: str, naive: bool) -> Callable[[BenchConfig], Callable[[int], Any]]:
    def setup(cfg: BenchConfig) -> Callable[[int], Any]:
        model = generated_lpips(cfg, backbone)
        if naive:
            def step(i: int) -> Any:
                with torch.no_grad():
                    return model(*_pair(cfg, i))
            return step
        return lambda i: M.lpips_distance(model, *_pair(cfg, i))
    return setup


def _lpips_flops(backbone: str) -> Callable[[BenchConfig], tuple[torch.nn.Module, tuple]]:
    def f(cfg: BenchConfig) -> tuple[torch.nn.Module, tuple]:
        return generated_lpips(cfg, backbone), _pair(cfg, 0)
    return f


def generated_fid_inception(cfg: BenchConfig) -> M.FIDInceptionV3:
    path = cfg.workdir / "fid_inception.pth"
    if not path.exists():
        torch.manual_seed(0)
        torch.save(M.FIDInceptionV3().state_dict(), path)
    return M.load_fid_inception(path, device=cfg.device)


def _fid(naive: bool) -> Callable[[BenchConfig], Callable[[int], Any]]:
    def setup(cfg: BenchConfig) -> Callable[[int], Any]:
        model = generated_fid_inception(cfg)
        if naive:
            def step(i: int) -> Any:
                with torch.no_grad():
                    return model(_pair(cfg, i)[0])
            return step

        def fast(i: int) -> Any:
            with torch.inference_mode():
                x = _pair(cfg, i)[0].contiguous(memory_format=torch.channels_last)
                return model(x)
        return fast
    return setup


def _fid_flops(cfg: BenchConfig) -> tuple[torch.nn.Module, tuple]:
    return generated_fid_inception(cfg), (_pair(cfg, 0)[0],)


# --------------------------------------------------------------------------------------------
# the weightless chain streamed over a whole driver video (memory)
# --------------------------------------------------------------------------------------------


@dataclass
class StreamScene:
    """A synthetic target (photo, parsing, keypoints, renderer rig, face, background) and a decoded
    driver video of ``frames`` frames (uint8 (N, H, W, 3), held like a decoded input; 8
    distinct poses cycled) with its keypoints per frame."""

    image: np.ndarray
    labels: np.ndarray
    person: Person
    parts: Any
    face: Any
    background: np.ndarray
    video: np.ndarray
    people: list[Person]


def stream_scene(cfg: BenchConfig, frames: int) -> StreamScene:
    from dance_reenact.models.face import FaceTarget
    from dance_reenact.models.mesh_warp import BodyRig
    from dance_reenact.models.synthetic import random_body, random_pose, render

    h, w = cfg.height, cfg.width
    rng = np.random.default_rng(3)
    t = render(random_body(rng), random_pose(rng), h, w, seed=1)
    body = random_body(rng)
    drivers = [render(body, random_pose(rng, body), h, w, seed=2) for _ in range(RING)]
    video = np.empty((frames, h, w, 3), np.uint8)
    for i in range(frames):
        video[i] = drivers[i % RING].image
    return StreamScene(t.image, t.labels, t.person, BodyRig.build(t.image, t.labels, t.person),
                       FaceTarget.from_image(t.image, t.person.face[:68, :2]),
                       np.full((h, w, 3), 120, np.uint8), video,
                       [drivers[i % RING].person for i in range(frames + 1)])


def chain_frame(sc: StreamScene, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One driver frame through P2B warp -> B2F warp -> Mask Blend -> FaceRefine weightless
    (the library functions the nodes call). Returns (parsing, composite, refined) uint8."""
    from dance_reenact.models.blend import blend_frames
    from dance_reenact.models.face import refine_face_weightless
    from dance_reenact.models.mesh_warp import warp_frame_mesh

    person = sc.people[i % len(sc.people)]
    h, w = sc.video.shape[1:3]
    # the synthetic driver and target share a body scale (1): the renderer as the pipeline
    # calls it, P2B labels and B2F pixels from one render
    r = sc.parts.render(person, 1.0, (h, w))
    labels = r.labels
    wf = warp_frame_mesh(sc.parts, labels, person, 1.0, rendered=r)
    comp, _, _ = blend_frames(torch.from_numpy(wf.image)[None].float() / 255.0,
                              torch.from_numpy(wf.mask)[None],
                              torch.from_numpy(sc.background)[None].float() / 255.0)
    comp_u8 = (comp[0] * 255.0 + 0.5).clamp(0, 255).to(torch.uint8).numpy()
    return labels, comp_u8, refine_face_weightless(comp_u8, person.face[:68, :2], sc.face)


def _stream_frames(cfg: BenchConfig) -> int:
    return cfg.stream_frames


def _chain_stream(cfg: BenchConfig) -> Callable[[int], Any]:
    """Ours: every frame streamed; only the uint8 output video grows (as a writer would)."""
    sc = stream_scene(cfg, cfg.stream_frames)
    out = np.empty_like(sc.video)  # pages are touched (counted) only as frames are written

    def step(i: int) -> Any:
        out[i % len(out)] = chain_frame(sc, i)[2]
    step.scene = sc  # type: ignore[attr-defined]  # keeps the decoded input alive
    return step


def _chain_naive(cfg: BenchConfig) -> Callable[[int], Any]:
    """Naive: every stage's output kept for the whole video as the float tensors a batch
    graph passes on, the parsing as a one-hot (22, H, W) float32 map per frame."""
    sc = stream_scene(cfg, cfg.stream_frames)
    held: list[Any] = []

    def step(i: int) -> Any:
        labels, comp, refined = chain_frame(sc, i)
        onehot = torch.nn.functional.one_hot(torch.from_numpy(labels).long(),
                                             NUM_LABELS).permute(2, 0, 1).float().contiguous()
        held.append((onehot, torch.from_numpy(comp).float() / 255.0,
                     torch.from_numpy(refined).float() / 255.0))
    step.scene = sc  # type: ignore[attr-defined]
    return step


def _pipeline_stream(cfg: BenchConfig) -> Callable[[int], Any]:
    """The whole pipeline's per-frame loop (``models.pipeline.render``, weightless backends,
    MediaPipe face landmarks on each output frame) over the streamed driver."""
    from dance_reenact.models import pipeline as P

    sc = stream_scene(cfg, cfg.stream_frames)
    state = P.TargetState(image=sc.image, person=sc.person, labels=sc.labels,
                          background=sc.background, warp_parts=sc.parts, face=sc.face)
    frames = P.render(state, sc.people, cfg.height, cfg.width, P.Background(still=sc.background),
                      P.PipelineConfig(device=cfg.device))
    out = np.empty_like(sc.video)

    def step(i: int) -> Any:
        out[i % len(out)] = next(frames)
    step.scene = sc  # type: ignore[attr-defined]
    return step


STAGES: list[Stage] = [
    Stage("render_pose", _render_pose),
    Stage("parsing_iou", _parsing_iou, baseline=_parsing_iou_onehot),
    Stage("ssim", _ssim, baseline=_ssim_skimage),
    Stage("masked_psnr", _psnr),
    Stage("lpips_vgg", _lpips("vgg16", False), baseline=_lpips("vgg16", True),
          flops=_lpips_flops("vgg16")),
    Stage("lpips_squeeze", _lpips("squeezenet1_1", False),
          baseline=_lpips("squeezenet1_1", True), flops=_lpips_flops("squeezenet1_1")),
    Stage("fid_inception", _fid(False), baseline=_fid(True), flops=_fid_flops),
    Stage("stream_weightless_chain", _chain_stream, baseline=_chain_naive,
          frames=_stream_frames),
    Stage("stream_pipeline", _pipeline_stream, frames=_stream_frames),
]


def register_stage(stage: Stage) -> None:
    """Add a stage (replacing one of the same name)."""
    STAGES[:] = [s for s in STAGES if s.name != stage.name] + [stage]


def _heavy_frames(cfg: BenchConfig) -> int:
    return min(cfg.frames, cfg.heavy_frames) if cfg.nets == "paper" else cfg.frames


def _notes(stats: dict[str, int] | None, frames: int) -> str | None:
    if not stats:
        return None
    calls = ", ".join(f"{k} {v}x" for k, v in stats.items())
    return f"{calls} for {frames}+1 warm-up frames"


def load_hooks(cfg: BenchConfig) -> None:
    for hook in HOOKS:
        mod, _, fn = hook.partition(":")
        try:
            made = getattr(importlib.import_module(mod), fn)(cfg)
        except (ImportError, AttributeError):
            logger.debug("benchmark hook %s not available yet", hook)
            continue
        for st in made if isinstance(made, (list, tuple)) else [made]:
            # hook stages are networks: paper-size ones run ``heavy_frames`` frames
            register_stage(Stage(st.name, st.setup, getattr(st, "baseline", None),
                                 getattr(st, "flops", None),
                                 getattr(st, "frames", None) or _heavy_frames))


# --------------------------------------------------------------------------------------------
# the run and its table
# --------------------------------------------------------------------------------------------


def run(cfg: BenchConfig, stages: list[str] | None = None,
        matmul_n: int = 1024) -> tuple[float, list[dict[str, Any]]]:
    """Measure the matmul roof, then every selected stage (and its baseline)."""
    roof = measure_matmul_gflops(matmul_n)
    rows: list[dict[str, Any]] = []
    chosen = [s for s in STAGES if stages is None or s.name in stages]
    unknown = set(stages or []) - {s.name for s in STAGES}
    if unknown:
        raise SystemExit(f"unknown stages {sorted(unknown)}; known: "
                         f"{', '.join(s.name for s in STAGES)}")
    for st in chosen:
        flop = None
        if st.flops is not None:
            module, args = st.flops(cfg)
            flop = count_flops(module, *args)
        base_fps = None
        variants = [("baseline", st.baseline)] if st.baseline is not None else []
        variants.append(("ours", st.setup))
        n_frames = st.frames(cfg) if st.frames is not None else cfg.frames
        probe = (functools.partial(measure_matmul_gflops, matmul_n, 0.3)
                 if flop else None)
        for variant, setup in variants:
            release_memory()
            step = setup(cfg)
            t = time_stage(step, n_frames, probe=probe)
            notes = _notes(getattr(step, "stats", None), n_frames)
            del step
            gc.collect()
            gflops = flop * t.fps / 1e9 if flop else None
            stage_roof = max(roof, t.roof_gflops or 0.0)
            if t.roof_gflops:
                notes = "; ".join(x for x in (notes, f"roof {stage_roof:.0f} GFLOP/s") if x)
            row = {"stage": st.name, "variant": variant, "frames": t.frames, "fps": t.fps,
                   "peak_rss_mb": t.peak_rss_mb, "rss_rise_mb": t.rss_rise_mb,
                   "gflop_per_frame": flop / 1e9 if flop else None, "gflops": gflops,
                   "pct_of_matmul": 100 * gflops / stage_roof if gflops else None,
                   "speedup_vs_baseline": None, "notes": notes}
            if variant == "baseline":
                base_fps = t.fps
            elif base_fps:
                row["speedup_vs_baseline"] = t.fps / base_fps
            rows.append(row)
            logger.info("%s/%s: %.2f fps", st.name, variant, t.fps)
    return roof, rows


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"
    return str(v)


def format_table(roof: float, rows: list[dict[str, Any]], cfg: BenchConfig) -> str:
    """A Markdown table (the README shows the latest one)."""
    lines = [f"machine: {os.cpu_count()} CPUs, torch {torch.__version__}, "
             f"{torch.get_num_threads()} threads, device {cfg.device}; "
             f"fp32 matmul: {roof:.1f} GFLOP/s; frames {cfg.width}x{cfg.height}",
             "", "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for r in rows:
        lines.append("| " + " | ".join(_cell(r[c]) for c in COLUMNS) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=24)
    p.add_argument("--size", default="320x512", help="WIDTHxHEIGHT (default 320x512)")
    p.add_argument("--stages", nargs="*", help="stage names (default: all)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--matmul-n", type=int, default=1024)
    p.add_argument("--nets", choices=("paper", "tiny"), default="paper",
                   help="P2B/B2F configs: the paper's (default) or tiny (a smoke run)")
    p.add_argument("--heavy-frames", type=int, default=3,
                   help="frames timed for the paper-size P2B/B2F (default 3)")
    p.add_argument("--stream-frames", type=int, default=300,
                   help="driver length of the streamed whole-chain memory run (default 300)")
    p.add_argument("--out", help="also write the table to this Markdown file")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    w, _, h = args.size.lower().partition("x")
    cfg = BenchConfig(width=int(w), height=int(h), frames=args.frames, device=args.device,
                      nets=args.nets, heavy_frames=args.heavy_frames,
                      stream_frames=args.stream_frames)
    load_hooks(cfg)
    try:
        roof, rows = run(cfg, args.stages, args.matmul_n)
    finally:
        shutil.rmtree(cfg.workdir, ignore_errors=True)  # the generated weight files
    table = format_table(roof, rows, cfg)
    print(table)
    if args.out:
        Path(args.out).write_text(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
