"""Benchmark harness: per-stage speed and memory at 512x320, against this machine's limit.

    python benchmarks/run.py --doc docs/benchmarks.md   # the committed table (all stages)
    python benchmarks/run.py --quick                    # tiny networks, tiny frames (tests)
    python benchmarks/run.py --stages p2b b2f --heavy-frames 2

In ONE run it measures
- the roof: this machine's fp32 matmul throughput (GFLOP/s, square matmuls, all threads torch
  uses), probed before anything of ours runs (with the load average at that moment), between
  the frames of every FLOP-counted stage and at the end. The best probe of the whole run is
  THE roof: every row's share of it is divided by that one number;
- per stage and variant: frames per second, peak resident memory (RSS, sampled every few ms)
  and its rise above the RSS before the stage;
- FLOPs per frame, counted (``torch.utils.flop_counter``) around one call of the very step
  that is timed, so everything a variant runs per frame counts (a baseline that re-encodes
  the appearance every frame is charged for the encoder);
- baselines named for what they are (``naive: re-encode each frame``, ``careful: encode once,
  eager fp32``, ``reference: scikit-image``) in the same run, and speed-ups against them.

Stages of the networks and the pipeline are hooks (:data:`HOOKS`, in ``benchmarks/stages.py``);
a hook that is missing or fails is an error. Inputs are synthesised per index and cycled
through a ring of 8, so no video is held and synthesis stays out of the timings.
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

from dance_reenact.models.core.schema import BODY, NUM_LABELS, Person  # noqa: E402
from dance_reenact.models.geometry.render import draw_pose  # noqa: E402
from dance_reenact.models.metrics import scores as M  # noqa: E402

COLUMNS = ("stage", "variant", "frames", "fps", "peak_rss_mb", "rss_rise_mb", "gflop_per_frame",
           "gflops", "pct_of_roof", "x_vs_careful", "x_vs_naive", "notes")

# "module:function" returning a stage (or a list of them); a missing or failing hook is an error
HOOKS: list[str] = [
    "dance_reenact.benchmarks.stages:p2b",
    "dance_reenact.benchmarks.stages:b2f",
    "dance_reenact.benchmarks.stages:face_refine",
    "dance_reenact.benchmarks.stages:renderer",
    "dance_reenact.benchmarks.stages:pipeline",
]

# the learned networks whose FLOPs make the headline "learned path" ratio
LEARNED = ("p2b", "b2f", "face_refine_net")
RENDERER = "renderer_weightless"
ROOF_GOAL = 70.0  # % of the run's roof the learned networks aim for


@dataclass
class BenchConfig:
    width: int = 320
    height: int = 512
    frames: int = 24
    device: str = "cpu"
    nets: str = "paper"  # network size: "paper" (the default configs) or "tiny" (smoke tests)
    heavy_frames: int = 3  # frames for the paper-size networks (seconds per frame on a CPU)
    stream_frames: int = 300  # driver length of the streamed whole-chain memory run
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="bench-")))


@dataclass
class Stage:
    """A benchmarked stage.

    ``setup(config)`` returns ``step(i)`` that processes frame ``i`` (setup time is not
    counted); ``baselines`` are ``(name, setup)`` pairs named for what they are (a name
    starting ``careful:`` is the denominator of ``x_vs_careful``, one starting ``naive:`` of
    ``x_vs_naive``); ``flops``: count FLOPs around one call of each variant's step;
    ``frames(config)`` how many frames to time (default ``config.frames``). A ``step`` may
    carry a ``stats`` dict (e.g. encoder calls) that the table's notes show.
    """

    name: str
    setup: Callable[[BenchConfig], Callable[[int], Any]]
    baselines: list[tuple[str, Callable[[BenchConfig], Callable[[int], Any]]]] = \
        field(default_factory=list)
    flops: bool = False
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


def count_flops(module: Callable[..., Any], *args: Any) -> int:
    """FLOPs of one call ``module(*args)`` (matmul/conv counted by torch's FlopCounterMode):
    whatever the call runs is counted, networks it calls inside included."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.inference_mode(), FlopCounterMode(display=False) as fc:
        module(*args)
    return int(fc.get_total_flops())


def step_flops(step: Callable[[int], Any], i: int) -> int:
    """FLOPs of ``step(i)`` itself, the call that is timed (autograd left as the step has it)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as fc:
        step(i)
    return int(fc.get_total_flops())


MATMUL_OPS = ("conv", "mm", "matmul", "linear", "bmm", "mkldnn")


def op_time_share(step: Callable[[int], Any], i: int) -> float:
    """Share of the CPU op time of ``step(i)`` spent in conv/matmul kernels (the ops the FLOP
    count covers); the rest (norms, activations, upsampling, copies, argmax) is memory-bound
    work the roof does not measure."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step(i)
    total = mm = 0.0
    for ev in prof.key_averages():
        t = ev.self_cpu_time_total
        total += t
        if any(k in ev.key.lower() for k in MATMUL_OPS):
            mm += t
    return mm / total if total > 0 else math.nan


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
               probe: Callable[[], float] | None = None, start: int = 0) -> Timing:
    """Run ``step(i)`` for i in start..start+frames-1 after ``warmup`` untimed calls; fps, RSS.

    ``probe`` (the matmul roof) runs untimed before every frame and after the last, so the
    roof is also measured under the conditions of the frames; its best value is returned.
    """
    for i in range(warmup):
        step(i)
    roof = None
    dt = 0.0
    with PeakRSS() as mem:
        for i in range(start, start + frames):
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
    from dance_reenact.models.compositing.face import FaceTarget
    from dance_reenact.models.geometry.mesh_warp import BodyRig
    from dance_reenact.training.synthetic import random_body, random_pose, render

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
    from dance_reenact.models.compositing.blend import blend_frames
    from dance_reenact.models.compositing.face import refine_face_weightless
    from dance_reenact.models.geometry.mesh_warp import warp_frame_mesh

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


NAIVE_EAGER = "naive: eager NCHW, no_grad"

STAGES: list[Stage] = [
    Stage("render_pose", _render_pose),
    Stage("parsing_iou", _parsing_iou,
          [("naive: one-hot maps, a loop over labels", _parsing_iou_onehot)]),
    Stage("ssim", _ssim, [("reference: scikit-image", _ssim_skimage)]),
    Stage("masked_psnr", _psnr),
    Stage("lpips_vgg", _lpips("vgg16", False), [(NAIVE_EAGER, _lpips("vgg16", True))],
          flops=True),
    Stage("lpips_squeeze", _lpips("squeezenet1_1", False),
          [(NAIVE_EAGER, _lpips("squeezenet1_1", True))], flops=True),
    Stage("fid_inception", _fid(False), [(NAIVE_EAGER, _fid(True))], flops=True),
    Stage("stream_weightless_chain", _chain_stream,
          [("naive: every stage's output held as float", _chain_naive)],
          frames=_stream_frames),
]


def register_stage(stage: Stage) -> None:
    """Add a stage (replacing one of the same name)."""
    STAGES[:] = [s for s in STAGES if s.name != stage.name] + [stage]


def _heavy_frames(cfg: BenchConfig) -> int:
    return min(cfg.frames, cfg.heavy_frames) if cfg.nets == "paper" else cfg.frames


def _notes(stats: dict[str, int] | None, frames: int, untimed: int) -> str | None:
    if not stats:
        return None
    calls = ", ".join(f"{k} {v}x" for k, v in stats.items())
    return f"{calls} for {frames} timed + {untimed} untimed frames"


class HookError(RuntimeError):
    """A benchmark hook is missing or failed: the run stops instead of dropping its rows."""


def load_hooks(cfg: BenchConfig, hooks: list[str] | None = None) -> None:
    """Register the stages of every hook; a missing module or function, or a hook that
    raises, is a :class:`HookError` naming it (a silently skipped hook hides its rows)."""
    for hook in HOOKS if hooks is None else hooks:
        mod, _, fn = hook.partition(":")
        try:
            made = getattr(importlib.import_module(mod), fn)(cfg)
        except Exception as exc:  # noqa: BLE001 - any failure of a hook stops the run
            raise HookError(f"benchmark hook {hook} failed: {type(exc).__name__}: {exc}") \
                from exc
        for st in made if isinstance(made, (list, tuple)) else [made]:
            frames = getattr(st, "frames", None)
            if frames is None and getattr(st, "heavy", False):
                frames = _heavy_frames  # paper-size networks: seconds per frame on a CPU
            register_stage(Stage(st.name, st.setup, list(getattr(st, "baselines", [])),
                                 bool(getattr(st, "flops", False)), frames))


# --------------------------------------------------------------------------------------------
# the run and its table
# --------------------------------------------------------------------------------------------


@dataclass
class RunResult:
    """The rows, the roof (best matmul probe of the whole run) and the quiet probe."""

    rows: list[dict[str, Any]]
    roof: float
    quiet_roof: float
    quiet_load: float
    end_load: float
    probes: int

    def headlines(self) -> dict[str, Any]:
        """The learned path (every LEARNED network's ours row: their FLOPs over their time)
        as % of the roof, and the weightless renderer's frames/s."""
        ours = {r["stage"]: r for r in self.rows if r["variant"] == "ours"}
        learned = [ours[n] for n in LEARNED if n in ours and ours[n]["gflop_per_frame"]]
        out: dict[str, Any] = {"learned_stages": [r["stage"] for r in learned]}
        if learned:
            gflop = sum(r["gflop_per_frame"] for r in learned)
            sec = sum(1.0 / r["fps"] for r in learned)
            out.update(learned_gflop=gflop, learned_gflops=gflop / sec,
                       learned_pct=100 * gflop / sec / self.roof, learned_fps=1.0 / sec)
        if RENDERER in ours:
            out["renderer_fps"] = ours[RENDERER]["fps"]
        return out


def run(cfg: BenchConfig, stages: list[str] | None = None,
        matmul_n: int = 1024) -> RunResult:
    """Probe the roof while nothing of ours runs, then time every selected stage and its
    baselines; every row's share of the roof uses the best probe of the whole run."""
    chosen = [s for s in STAGES if stages is None or s.name in stages]
    unknown = set(stages or []) - {s.name for s in STAGES}
    if unknown:
        raise SystemExit(f"unknown stages {sorted(unknown)}; known: "
                         f"{', '.join(s.name for s in STAGES)}")
    release_memory()
    quiet_load = os.getloadavg()[0]
    quiet = measure_matmul_gflops(matmul_n)
    probes = [quiet]

    def probe() -> float:
        probes.append(measure_matmul_gflops(matmul_n, 0.3))
        return probes[-1]

    rows: list[dict[str, Any]] = []
    for st in chosen:
        n_frames = st.frames(cfg) if st.frames is not None else cfg.frames
        fps: dict[str, float] = {}
        for variant, setup in [*st.baselines, ("ours", st.setup)]:
            release_memory()
            step = setup(cfg)
            step(0)  # warm-up (caches, lazily prepared inference copies)
            flop = share = None
            untimed = 1
            if st.flops:  # around the very step that is timed, after the warm-up
                flop = step_flops(step, 1)
                share = op_time_share(step, 2)
                untimed = 3
            t = time_stage(step, n_frames, warmup=0, probe=probe if st.flops else None,
                           start=untimed)
            notes = [x for x in (_notes(getattr(step, "stats", None), n_frames, untimed),)
                     if x]
            if share is not None:
                notes.append(f"conv/matmul {100 * share:.0f} % of op time")
            del step
            gc.collect()
            fps[variant] = t.fps
            rows.append({"stage": st.name, "variant": variant, "frames": t.frames,
                         "fps": t.fps, "peak_rss_mb": t.peak_rss_mb,
                         "rss_rise_mb": t.rss_rise_mb,
                         "gflop_per_frame": flop / 1e9 if flop else None,
                         "gflops": flop * t.fps / 1e9 if flop else None,
                         "pct_of_roof": None, "x_vs_careful": None, "x_vs_naive": None,
                         "notes": "; ".join(notes) or None, "mm_share": share})
            logger.info("%s / %s: %.3g fps", st.name, variant, t.fps)
        careful = next((v for k, v in fps.items() if k.startswith("careful")), None)
        naive = next((v for k, v in fps.items() if not k.startswith("careful")
                      and k != "ours"), None)
        for r in rows:
            if r["stage"] != st.name:
                continue
            if careful and r["variant"] == "ours":
                r["x_vs_careful"] = r["fps"] / careful
            if naive and r["variant"] in ("ours",) + tuple(k for k in fps
                                                          if k.startswith("careful")):
                r["x_vs_naive"] = r["fps"] / naive
    end_load = os.getloadavg()[0]
    probes.append(measure_matmul_gflops(matmul_n, 0.3))
    roof = max(probes)
    for r in rows:  # one denominator for every row
        if r["gflops"]:
            r["pct_of_roof"] = 100 * r["gflops"] / roof
    return RunResult(rows, roof, quiet, quiet_load, end_load, len(probes))


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"
    return str(v)


def machine_line(cfg: BenchConfig) -> str:
    """CPU model, SIMD flags (from /proc/cpuinfo), torch threads and device."""
    model, flags = "unknown CPU", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and model == "unknown CPU":
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    simd = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2"
    return (f"{model} ({simd}), {os.cpu_count()} CPUs, torch {torch.__version__} with "
            f"{torch.get_num_threads()} threads, device {cfg.device}")


def format_table(res: RunResult, cfg: BenchConfig) -> str:
    """The roof lines and one Markdown table, every row against the same roof."""
    lines = [f"machine: {machine_line(cfg)}; frames {cfg.width}x{cfg.height}",
             f"roof (best fp32 {'matmul'} probe of the run, {res.probes} probes): "
             f"{res.roof:.1f} GFLOP/s; probe before any stage ran: {res.quiet_roof:.1f} "
             f"GFLOP/s at load average {res.quiet_load:.2f} (end of run: {res.end_load:.2f})",
             "", "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for r in res.rows:
        lines.append("| " + " | ".join(_cell(r[c]) for c in COLUMNS) + " |")
    return "\n".join(lines)


def headline_lines(res: RunResult, cfg: BenchConfig) -> list[str]:
    h = res.headlines()
    out = []
    if "learned_pct" in h:
        size = "the paper's size" if cfg.nets == "paper" else "TINY networks (not a claim)"
        out.append(f"learned path ({' + '.join(h['learned_stages'])}, ours, {size}, "
                   f"{cfg.width}x{cfg.height}): {h['learned_gflop']:.0f} GFLOP per frame at "
                   f"{h['learned_gflops']:.1f} GFLOP/s = {h['learned_pct']:.1f} % of the run's "
                   f"roof (goal >= {ROOF_GOAL:.0f} %), {h['learned_fps']:.3g} frames/s")
    if "renderer_fps" in h:
        out.append(f"weightless renderer (BodyRig.render + warp_frame_mesh, "
                   f"{cfg.width}x{cfg.height}): {h['renderer_fps']:.1f} frames/s")
    return out


def limits_text(res: RunResult, cfg: BenchConfig) -> list[str]:
    """What keeps the learned networks below the goal, from this run's own measurements."""
    h = res.headlines()
    if "learned_pct" not in h:
        return []
    ours = [r for r in res.rows if r["variant"] == "ours" and r["stage"] in LEARNED]
    out = [f"The learned path reaches {h['learned_pct']:.1f} % of the run's roof "
           + ("(the goal is met)." if h["learned_pct"] >= ROOF_GOAL else
              f"(goal {ROOF_GOAL:.0f} %: not reached). What limits it, measured in this run:")]
    for r in ours:
        share = r.get("mm_share")
        kernels = (f"; its conv/matmul kernels alone run at about "
                   f"{r['pct_of_roof'] / share:.0f} % of the roof"
                   if share and r["pct_of_roof"] else "")
        out.append(f"- `{r['stage']}`: {_cell(r['pct_of_roof'])} % of the roof; conv/matmul "
                   f"take {100 * share:.0f} % of its op time{kernels}. The other "
                   f"{100 * (1 - share):.0f} % is memory-bound work (normalisation, "
                   "activations, upsampling, concatenation, copies, argmax) that the FLOP "
                   "count does not credit and the matmul roof does not measure."
                   if share else f"- `{r['stage']}`: {_cell(r['pct_of_roof'])} % of the roof.")
    load = max(res.quiet_load, res.end_load)
    out.append(f"- Roof and networks share {os.cpu_count()} CPUs with whatever else runs (load "
               f"average {res.quiet_load:.2f} before, {res.end_load:.2f} after): the roof is the "
               "best probe of the run, so any moment of contention during a network's frames "
               "lowers its share" + (" -- this run was loaded." if load > 1.5 * (
                   os.cpu_count() or 1) else "."))
    out.append("- Not measured in this run, a likely factor: convolutions whose shapes suit a "
               "GEMM poorly (3-channel stems, 1x1 heads, 7x7 stems; where the CPU backend "
               "lowers a conv to im2col + GEMM, the im2col copy is memory traffic) reach less "
               "than a square 1024x1024 matmul.")
    return out


def doc_text(res: RunResult, cfg: BenchConfig, command: str) -> str:
    """``docs/benchmarks.md``: generated, never edited by hand."""
    parts = ["# Benchmarks", "",
             f"Generated by `{command}` (this file is its output; rerun it to refresh). "
             "Every row is measured in the same run and divided by the same roof: the best "
             "fp32 matmul probe of the whole run. The numbers move with the machine's load.",
             "", "## Headlines", ""]
    parts += [f"- {x}" for x in headline_lines(res, cfg)] or ["- (no headline stage ran)"]
    parts += ["", "## Table", "", format_table(res, cfg), "",
              "Columns: `fps` frames per second over `frames` timed frames (after one warm-up; "
              "FLOP-counted stages also run one untimed frame under the FLOP counter and one "
              "under the profiler); `peak_rss_mb` the whole process; `rss_rise_mb` what the "
              "variant added; `gflop_per_frame` counted around the timed step itself; "
              "`pct_of_roof` = achieved GFLOP/s / the run's roof; `x_vs_careful` / `x_vs_naive` "
              "= fps / the fps of the `careful:` / `naive:` (or `reference:`, `previous:`) "
              "baseline of the same stage. Baselines: `naive:` the obvious way; `careful:` what "
              "a careful engineer writes (per-target work once, plain eval network, eager "
              "fp32, inference mode); "
              "`reference:` a reference library; `previous:` the implementation ours replaced. "
              "The metric networks (LPIPS, FID) and the learned networks use random weights of "
              "the exact architectures: same cost, meaningless outputs."]
    lim = limits_text(res, cfg)
    if lim:
        parts += ["", "## What limits the learned networks", "", *lim]
    return "\n".join(parts) + "\n"


QUICK = ["--frames", "2", "--size", "48x64", "--matmul-n", "256", "--nets", "tiny",
         "--stream-frames", "3"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true",
                   help=f"a smoke run: {' '.join(QUICK)} (later options still win)")
    p.add_argument("--frames", type=int, default=24)
    p.add_argument("--size", default="320x512", help="WIDTHxHEIGHT (default 320x512)")
    p.add_argument("--stages", nargs="*", help="stage names (default: all)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--matmul-n", type=int, default=1024)
    p.add_argument("--nets", choices=("paper", "tiny"), default="paper",
                   help="network configs: the paper's (default) or tiny (a smoke run)")
    p.add_argument("--heavy-frames", type=int, default=3,
                   help="frames timed for the paper-size networks (default 3)")
    p.add_argument("--stream-frames", type=int, default=300,
                   help="driver length of the streamed whole-chain memory run (default 300)")
    p.add_argument("--out", help="also write the table to this Markdown file")
    p.add_argument("--doc", help="write the generated benchmark page (docs/benchmarks.md)")
    argv = list(sys.argv[1:] if argv is None else argv)
    command = "python benchmarks/run.py " + " ".join(argv)
    args = p.parse_args((QUICK if "--quick" in argv else []) + argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    w, _, h = args.size.lower().partition("x")
    cfg = BenchConfig(width=int(w), height=int(h), frames=args.frames, device=args.device,
                      nets=args.nets, heavy_frames=args.heavy_frames,
                      stream_frames=args.stream_frames)
    load_hooks(cfg)
    try:
        res = run(cfg, args.stages, args.matmul_n)
    finally:
        shutil.rmtree(cfg.workdir, ignore_errors=True)  # the generated weight files
    table = format_table(res, cfg)
    print(table)
    print()
    for line in headline_lines(res, cfg):
        print(line)
    if args.out:
        Path(args.out).write_text(table + "\n")
    if args.doc:
        Path(args.doc).parent.mkdir(parents=True, exist_ok=True)
        Path(args.doc).write_text(doc_text(res, cfg, command.strip()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
