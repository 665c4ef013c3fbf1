"""Benchmark stages of the learned networks and the whole pipeline (hooks of ``run.py``).

They live here, not in ``models/``: the library holds no benchmark code. Each function takes
the run's config (``width``, ``height``, ``device``, ``nets``: ``"paper"`` or ``"tiny"``,
``stream_frames``) and returns a :class:`HookStage`. Every stage has ``ours`` (what the library
does) and baselines named for what they are:

* ``careful: ...`` -- what a careful engineer writes without our inference work: the
  per-target work done once, the plain eval network in eager fp32 under inference mode. The
  speed-up that matters is against this one.
* ``naive: ...`` -- the obvious way (per-target work redone every frame, autograd on).

A ``step`` may carry ``stats`` (forward calls per network) that the table's notes show.
Inputs are synthetic people (:mod:`training.synthetic`), a ring of 8, made in setup.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

RING = 8
P2B_TINY = dict(ngf=8, n_down=2, n_res=1, max_ch=16, work_height=64, work_width=40)
B2F_TINY = dict(embed_dim=40, fc_channels=16, ngf=8, n_up=3, spade_hidden=8)
FACE_TINY = dict(crop_size=32, ngf=8, n_down=2)

Setup = Callable[[Any], Callable[[int], Any]]


@dataclass
class HookStage:
    """``setup(cfg) -> step(i)`` for ours; ``baselines``: (name, setup) pairs; ``flops``: count
    FLOPs around the timed step; ``heavy``: a paper-size network (timed over
    ``cfg.heavy_frames``); ``frames``: a fixed frame count (e.g. a streamed video)."""

    name: str
    setup: Setup
    baselines: list[tuple[str, Setup]] = field(default_factory=list)
    flops: bool = False
    heavy: bool = False
    frames: Callable[[Any], int] | None = None


def _tiny(cfg: Any) -> bool:
    return getattr(cfg, "nets", "paper") == "tiny"


def _device(cfg: Any) -> torch.device:
    return torch.device(getattr(cfg, "device", "cpu"))


def _counter(module: nn.Module, calls: dict[str, int], key: str) -> None:
    calls.setdefault(key, 0)
    module.register_forward_hook(lambda *_: calls.__setitem__(key, calls[key] + 1))


# --------------------------------------------------------------------------------------------
# P2B
# --------------------------------------------------------------------------------------------


def p2b(config: Any, **net_kwargs: Any) -> HookStage:
    """P2B per frame: crop, network, argmax, paste back (:func:`models.p2b.predict_parsing`).

    ours: the cached inference copy (BatchNorm folded, channels-last); careful: the same call
    with ``optimize=False`` (the plain eval network, eager fp32, inference mode); naive: eager
    NCHW with autograd on, on the same working-resolution input."""
    from dance_reenact.models.networks.p2b import (
        DriverFrame,
        P2BGenerator,
        crop_labels,
        driver_inputs,
        labels_box,
        p2b_input,
        predict_parsing,
    )
    from dance_reenact.training.synthetic import random_body, random_pose, render

    kwargs = {**(P2B_TINY if _tiny(config) else {}), **net_kwargs}

    def inputs(cfg: Any) -> tuple[P2BGenerator, np.ndarray, list, torch.device]:
        torch.manual_seed(0)
        device = _device(cfg)
        net = P2BGenerator(**kwargs).to(device).eval()
        rng = np.random.default_rng(1)
        target = render(random_body(rng), random_pose(rng), cfg.height, cfg.width).labels
        body = random_body(rng)
        frames = []
        for _ in range(RING):
            s = render(body, random_pose(rng, body), cfg.height, cfg.width)
            frames.append(DriverFrame(cfg.height, cfg.width, s.person, None, s.densepose_i,
                                      s.densepose_u, s.densepose_v))
        return net, target, frames, device

    def library(optimize: bool) -> Setup:
        def setup(cfg: Any) -> Callable[[int], Any]:
            net, target, frames, device = inputs(cfg)
            return lambda i: next(predict_parsing(net, target, [frames[i % RING]],
                                                  device=device, batch_size=1,
                                                  optimize=optimize))
        return setup

    def naive(cfg: Any) -> Callable[[int], Any]:
        net, target, frames, device = inputs(cfg)
        hw = (int(net.config["work_height"]), int(net.config["work_width"]))
        src = torch.from_numpy(crop_labels(target, labels_box(target, hw), hw))[None].to(device)

        def step(i: int) -> Any:
            fr = frames[i % RING]
            st, iuv = driver_inputs(fr, fr.box(hw), hw)
            x = p2b_input(src, torch.from_numpy(st)[None].to(device),
                          torch.from_numpy(iuv)[None].to(device))
            return net.logits(x).argmax(dim=1)  # eager NCHW, autograd on, no BN folding
        return step

    return HookStage("p2b", library(True),
                     [("naive: eager, autograd on", naive),
                      ("careful: eager fp32, inference mode", library(False))],
                     flops=True, heavy=True)


# --------------------------------------------------------------------------------------------
# B2F (appearance encoder included)
# --------------------------------------------------------------------------------------------


def appearance_encoder(embed_dim: int, tiny: bool) -> nn.Module:
    """An :class:`models.appearance.AppearanceEncoder` with random weights: the paper-size
    networks (InceptionResnetV1 + VGG19 conv5, exact architectures) or, ``tiny``, one strided
    conv each, with ``embed_dim`` outputs in both cases (paper: 2560)."""
    from dance_reenact.models.networks.appearance import AppearanceEncoder
    from dance_reenact.models.networks.facenet import InceptionResnetV1
    from dance_reenact.models.networks.vgg import VGG19Features

    if not tiny:
        return AppearanceEncoder(InceptionResnetV1(), VGG19Features()).eval()
    d = embed_dim // 5
    face = nn.Sequential(nn.Conv2d(3, embed_dim - 4 * d, 3, stride=4), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten())
    return AppearanceEncoder(face, nn.Conv2d(3, d, 3, stride=4), face_size=32,
                             face_standardize=False).eval()


def b2f(config: Any, **net_kwargs: Any) -> HookStage:
    """B2F per frame, the appearance encoder included.

    ours: the appearance encoded and projected once per target (setup), then per frame crop ->
    the cached inference copy of the decoder (channels-last, SPADE gamma/beta fused) -> paste
    back (:func:`models.b2f.run_b2f_frame`). careful: encoded once too, the same call with
    ``optimize=False`` (plain eval decoder, eager fp32, inference mode). naive: the appearance
    re-encoded and ``e_z`` re-projected every frame, eager NCHW, autograd on, no crop. Each
    step carries ``stats`` (encoder and projection calls)."""
    from dance_reenact.models.networks.appearance import EMBED_DIM
    from dance_reenact.models.networks.b2f import B2FGenerator, body_map, run_b2f_frame
    from dance_reenact.training.synthetic import random_body, random_pose, render

    tiny = _tiny(config)
    kwargs = {**(B2F_TINY if tiny else {}), **net_kwargs}

    def inputs(cfg: Any) -> tuple[B2FGenerator, nn.Module, tuple, list, dict[str, int]]:
        torch.manual_seed(0)
        device = _device(cfg)
        net = B2FGenerator(**kwargs).to(device).eval()
        small = tiny or net.config["embed_dim"] != EMBED_DIM  # the paper encoder gives 2560
        encoder = appearance_encoder(net.config["embed_dim"], small).to(device)
        crops = (torch.rand(1, 5, 3, 224, 224, device=device),
                 torch.ones(1, 5, dtype=torch.bool, device=device))
        calls: dict[str, int] = {}
        _counter(encoder, calls, "encoder")
        _counter(net.fc, calls, "projection")
        rng = np.random.default_rng(0)
        body = random_body(rng)
        frames = [render(body, random_pose(rng, body), cfg.height, cfg.width).labels
                  for _ in range(RING)]
        return net, encoder, crops, frames, calls

    def encoded_once(optimize: bool) -> Setup:
        def setup(cfg: Any) -> Callable[[int], Any]:
            net, encoder, crops, frames, calls = inputs(cfg)
            with torch.inference_mode():
                x0 = net.project(encoder(*crops))  # once per target

            def step(i: int) -> Any:
                with torch.inference_mode():
                    return run_b2f_frame(net, x0, frames[i % RING], None, device=x0.device,
                                         optimize=optimize)
            step.stats = calls  # type: ignore[attr-defined]
            return step
        return setup

    def naive(cfg: Any) -> Callable[[int], Any]:
        net, encoder, crops, frames, calls = inputs(cfg)

        def step(i: int) -> Any:
            lab = torch.from_numpy(frames[i % RING])[None].to(crops[0].device)
            bm = F.interpolate(body_map(lab), size=net.out_size, mode="nearest")
            return net(encoder(*crops), bm)  # encode + project every frame, no crop
        step.stats = calls  # type: ignore[attr-defined]
        return step

    return HookStage("b2f", encoded_once(True),
                     [("naive: re-encode each frame", naive),
                      ("careful: encode once, eager fp32", encoded_once(False))],
                     flops=True, heavy=True)


# --------------------------------------------------------------------------------------------
# FaceRefine
# --------------------------------------------------------------------------------------------


def face_refine(config: Any, **net_kwargs: Any) -> HookStage:
    """FaceRefineNet per frame (:func:`models.face_refine.refine_face_network`: align the
    face, refine, warp back, blend), the target's face embedded once. There is no optimised
    inference copy of this network: ours IS the careful way; naive re-embeds the target's
    face every frame."""
    from dance_reenact.models.compositing.face import FaceTarget
    from dance_reenact.models.networks.face_refine import (
        FaceRefineNet,
        refine_face_network,
        target_embedding,
    )
    from dance_reenact.training.synthetic import random_body, random_pose, render

    kwargs = {**(FACE_TINY if _tiny(config) else {}), **net_kwargs}

    def inputs(cfg: Any) -> tuple[FaceRefineNet, FaceTarget, list, dict[str, int]]:
        torch.manual_seed(0)
        net = FaceRefineNet(**kwargs).to(_device(cfg)).eval()
        rng = np.random.default_rng(2)
        body = random_body(rng)
        t = render(body, random_pose(rng, body), cfg.height, cfg.width)
        target = FaceTarget.from_image(t.image, t.person.face[:68, :2])
        frames = []
        for _ in range(RING):
            s = render(body, random_pose(rng, body), cfg.height, cfg.width)
            frames.append((s.image, s.person.face[:68, :2]))
        calls: dict[str, int] = {}
        _counter(net.id_encoder, calls, "embed")
        return net, target, frames, calls

    def ours(cfg: Any) -> Callable[[int], Any]:
        net, target, frames, calls = inputs(cfg)
        emb = target_embedding(net, target, _device(cfg))

        def step(i: int) -> Any:
            img, lm = frames[i % RING]
            return refine_face_network(net, img, lm, emb, device=_device(cfg))
        step.stats = calls  # type: ignore[attr-defined]
        return step

    def naive(cfg: Any) -> Callable[[int], Any]:
        net, target, frames, calls = inputs(cfg)

        def step(i: int) -> Any:
            img, lm = frames[i % RING]
            emb = target_embedding(net, target, _device(cfg))  # every frame
            return refine_face_network(net, img, lm, emb, device=_device(cfg))
        step.stats = calls  # type: ignore[attr-defined]
        return step

    return HookStage("face_refine_net", ours, [("naive: re-embed the target each frame", naive)],
                     flops=True, heavy=True)


# --------------------------------------------------------------------------------------------
# the weightless renderer and the whole pipeline
# --------------------------------------------------------------------------------------------


def renderer(config: Any) -> HookStage:
    """The weightless renderer per frame: ``BodyRig.render`` + ``warp_frame_mesh`` given the
    prepared target and the pose (``benchmarks/renderer.py``'s :class:`MeshRenderer`), against
    the per-part warp it replaced (its :class:`OldRenderer`), on synthetic people."""
    from dance_reenact.benchmarks import renderer as R
    from dance_reenact.training import synthetic as S

    def scene(cfg: Any) -> tuple[Any, list]:
        rng = np.random.default_rng(5)
        body = S.random_body(rng)
        hw = (cfg.height, cfg.width)
        src = S.render(body, S.SyntheticPose(), *hw, seed=1)
        people = [S.render(body, S.random_pose(rng, body), *hw, seed=1).person
                  for _ in range(RING)]
        return R.Target("synthetic", src.image, src.labels, src.person, src.image), people

    def make(cls: type) -> Setup:
        def setup(cfg: Any) -> Callable[[int], Any]:
            t, people = scene(cfg)
            r = cls(t, people, (cfg.height, cfg.width))
            return lambda i: r.frame(i % RING, people[i % RING])
        return setup

    return HookStage("renderer_weightless", make(R.MeshRenderer),
                     [("previous: per-part warp", make(R.OldRenderer))])


def pipeline(config: Any) -> HookStage:
    """The whole pipeline's per-frame loop (``pipeline.render``: weightless renderer,
    blend, face paste with MediaPipe landmarks on each output frame) over a streamed driver
    of ``cfg.stream_frames`` frames; peak memory is the point."""
    from dance_reenact.benchmarks.run import stream_scene

    def setup(cfg: Any) -> Callable[[int], Any]:
        from dance_reenact import pipeline as P

        sc = stream_scene(cfg, cfg.stream_frames)
        from dance_reenact.models.stages import TargetPhoto

        state = P.TargetState(target=TargetPhoto(sc.image, sc.labels, sc.person),
                              background=sc.background)
        frames = P.render(state, sc.people, cfg.height, cfg.width,
                          P.Background(still=sc.background), P.PipelineConfig(device=cfg.device))
        out = np.empty_like(sc.video)

        def step(i: int) -> Any:
            out[i % len(out)] = next(frames)
        step.scene = sc  # type: ignore[attr-defined]  # keeps the decoded input alive
        return step

    return HookStage("stream_pipeline", setup, frames=lambda cfg: cfg.stream_frames)
