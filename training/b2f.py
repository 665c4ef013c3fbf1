"""Training B2F (paper §3.2): ``reenact train b2f``.

Objective, all terms masked to the character (``P+`` = the frame's parsing > 0):

* hinge GAN with two PatchGAN discriminators (full and half resolution), each conditioned on
  the 27-channel body map and seeing ``z ⊙ P+`` / ``x ⊙ P+`` (eqs. 13-14);
* discriminator feature matching, L1 over every discriminator layer (eq. 15), λ_FM = 10;
* VGG19 perceptual loss (eq. 16) between the composite ``o = z*m + b*(1-m)`` (b = the
  pre-inpainted photo) and the real frame, both masked by ``P+``, λ_VGG = 10, pix2pixHD's
  layer weights;
* face perceptual loss: InceptionResnetV1 (VGGFace2) activations at low, mid and high depth of
  the face crop (bounding box of the face label) of ``o`` and ``x``, λ_face = 5;
* mask L1 to the binarised parsing ``P+`` (eq. 17), λ_m = 5;
* (ours, optional) masked L1 on pixels, λ_L1 = 1 by default: speeds up early training; set
  ``--lambda-l1 0`` for the paper's exact objective.

The paper gives λ_m only; λ_FM and λ_VGG follow pix2pixHD / SPADE (10), λ_face is ours.
Adam 2e-4, betas (0.5, 0.999) for G and D (paper appendix). Appearance codes come from the
frozen AppearanceEncoder on the target's PartCropper crops. The saved generator is an
exponential moving average of G's weights (``--ema``, 0.999; 0 = off; ours, as in most GANs
since ProGAN: it smooths the step-to-step oscillation of adversarial training).

The discriminators and GAN losses are training/gan.py's, the device / DDP / checkpoint
scaffolding training/common.py's. Multi-GPU: run under
``torchrun --nproc_per_node N -m dance_reenact.cli train b2f ...``; each process trains on its
shard (DistributedSampler) with DDP-wrapped G and D (NCCL on CUDA, gloo on CPU;
``--batch-size`` is per process); rank 0 logs and saves. Checkpoints:
``<out>/b2f_last.safetensors`` (loadable by the B2F Loader), ``b2f_step<N>.safetensors``, and
``train_state.pt`` (D + optimisers) for ``--resume``. Losses go to ``<out>/log.jsonl``.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import math
import re
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..models.core.schema import LABEL
from ..models.io.loading import load_model, save_model
from ..models.networks.appearance import AppearanceEncoder, crops_to_tensor
from ..models.networks.b2f import B2FGenerator, body_map, draw_face_labels
from ..models.networks.parts import crop_parts
from .common import (
    DistContext,
    load_train_state,
    rank_logger,
    save_train_state,
    setup_distributed,
    teardown_distributed,
    wrap_ddp,
)
from .gan import MultiscaleDiscriminator, adversarial_loss, feature_matching_loss

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------
# Perceptual losses
# --------------------------------------------------------------------------------------------

class VGGPerceptual(nn.Module):
    """Eq. 16 with pix2pixHD's weights over relu1_1 .. relu5_1 (fewer with ``depth``)."""

    WEIGHTS = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0)

    def __init__(self, vgg: nn.Module, depth: int = 5) -> None:
        super().__init__()
        from ..models.networks.vgg import VGG19_RELU_X_1

        self.vgg = vgg.eval().requires_grad_(False)
        self.indices = VGG19_RELU_X_1[:depth]

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        fx = self.vgg.activations(x, self.indices)
        with torch.no_grad():
            fy = self.vgg.activations(y, self.indices)
        return sum(w * F.l1_loss(a, b) for w, a, b in zip(self.WEIGHTS, fx, fy))  # type: ignore


class FacePerceptual(nn.Module):
    """Face-embedding activations at several depths on the face crops (paper: "low, mid and
    high-level activations"). ``stages`` name InceptionResnetV1 stages."""

    def __init__(self, face_net: nn.Module, size: int = 160,
                 stages: tuple[str, ...] = ("conv2d_2b", "conv2d_4b", "repeat_1", "mixed_6a"),
                 standardize: bool = True) -> None:
        super().__init__()
        self.net = face_net.eval().requires_grad_(False)
        self.size, self.stages, self.standardize = size, stages, standardize

    def _feats(self, x: torch.Tensor) -> list[torch.Tensor]:
        from ..models.networks.facenet import standardize

        if self.standardize:
            x = standardize(x)
        f = self.net.features(x, self.stages)
        return [f[s] for s in self.stages]

    def forward(self, o: torch.Tensor, x: torch.Tensor,
                boxes: Sequence[tuple[int, int, int, int] | None]) -> torch.Tensor:
        crops_o, crops_x = [], []
        for i, box in enumerate(boxes):
            if box is None:
                continue
            x0, y0, x1, y1 = box
            crops_o.append(F.interpolate(o[i:i + 1, :, y0:y1, x0:x1], size=(self.size,) * 2,
                                         mode="bilinear", align_corners=False))
            crops_x.append(F.interpolate(x[i:i + 1, :, y0:y1, x0:x1], size=(self.size,) * 2,
                                         mode="bilinear", align_corners=False))
        if not crops_o:
            return torch.zeros((), device=o.device)
        fo = self._feats(torch.cat(crops_o))
        with torch.no_grad():
            fx = self._feats(torch.cat(crops_x))
        return sum(F.l1_loss(a, b) for a, b in zip(fo, fx)) / len(fo)  # type: ignore


def face_boxes(labels: torch.Tensor, min_pixels: int = 9, margin: float = 0.15
               ) -> list[tuple[int, int, int, int] | None]:
    """Square boxes around the face label of each (B, H, W) parsing, clipped to the frame."""
    out: list[tuple[int, int, int, int] | None] = []
    h, w = labels.shape[-2:]
    for lab in labels:
        ys, xs = torch.nonzero(lab == LABEL["face"], as_tuple=True)
        if len(ys) < min_pixels:
            out.append(None)
            continue
        y0, y1, x0, x1 = int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1
        side = int(math.ceil(max(y1 - y0, x1 - x0) * (1 + 2 * margin)))
        cy, cx = (y0 + y1) // 2, (x0 + x1) // 2
        by0 = min(max(0, cy - side // 2), max(0, h - side))
        bx0 = min(max(0, cx - side // 2), max(0, w - side))
        out.append((bx0, by0, min(w, bx0 + side), min(h, by0 + side)))
    return out


# --------------------------------------------------------------------------------------------
# Config, networks, batches
# --------------------------------------------------------------------------------------------

@dataclass
class B2FTrainConfig:
    out: str = "runs/b2f"
    layout: str = "synthetic"
    data: str | None = None
    synthetic_length: int = 2000
    steps: int = 100000
    batch_size: int = 8
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    # generator (height = base_h * 2**n_up, width = base_w * 2**n_up)
    ngf: int = 64
    fc_channels: int = 1024
    n_up: int = 6
    spade_hidden: int = 128
    norm: str = "batch"
    # discriminators: two PatchGANs; d_layers = the 4x4 conv layers before the score conv
    # (pix2pixHD's n_layers_D + 1: the default 3 is one layer fewer than pix2pixHD's)
    ndf: int = 64
    d_layers: int = 3
    # appearance encoder: "pretrained" (registry facenet_vggface2 + vgg19) or "random"
    # (small random-feature nets: smoke tests only)
    encoder: str = "pretrained"
    crop_size: int = 224
    # loss networks: "registry" (pretrained) or "random" (smoke tests) or "none"
    vgg: str = "registry"
    vgg_depth: int = 5
    face_net: str = "registry"
    face_size: int = 160
    lambda_fm: float = 10.0
    lambda_vgg: float = 10.0
    lambda_face: float = 5.0
    lambda_mask: float = 5.0
    lambda_l1: float = 1.0
    lambda_gan: float = 1.0
    # Ren et al. pose augmentation on the driver's face landmarks (which draw the 5 face
    # labels): jitter sigma (fraction of the face size) and dropout of the whole face
    pose_jitter: float = 0.0
    part_dropout: float = 0.0
    # exponential moving average of the generator's weights (0 = off): the averaged generator
    # is what is saved and returned; it smooths the GAN's step-to-step oscillation
    ema: float = 0.999
    log_every: int = 50
    save_every: int = 2000
    seed: int = 0
    resume: bool = False
    num_workers: int = 2
    device: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def size(self) -> tuple[int, int]:
        return 8 * 2 ** self.n_up, 5 * 2 ** self.n_up


class _RandomFeatures(nn.Module):
    """A fixed random conv net (smoke tests): (B, 3, S, S) -> (B, c, S/4, S/4) or pooled."""

    def __init__(self, channels: int, pooled: bool, seed: int) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.net = nn.Sequential(nn.Conv2d(3, channels, 3, 2, 1), nn.ReLU(),
                                 nn.Conv2d(channels, channels, 3, 2, 1), nn.ReLU())
        for p in self.net.parameters():
            p.data = torch.randn(p.shape, generator=g) * (0.5 if p.ndim > 1 else 0.1)
        self.pooled = pooled
        self.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.net(x)
        return F.adaptive_avg_pool2d(y, 1).flatten(1) if self.pooled else y


def build_encoder(cfg: B2FTrainConfig, device: torch.device) -> AppearanceEncoder:
    if cfg.encoder == "pretrained":
        from ..models.networks.appearance import load_pretrained_encoder

        return load_pretrained_encoder(device)
    if cfg.encoder == "random":
        enc = AppearanceEncoder(_RandomFeatures(32, True, cfg.seed + 1),
                                _RandomFeatures(32, False, cfg.seed + 2),
                                face_size=cfg.crop_size, face_standardize=False)
        return enc.to(device).eval()
    raise ValueError(f"unknown encoder {cfg.encoder!r}; use pretrained or random")


def build_losses(cfg: B2FTrainConfig, device: torch.device
                 ) -> tuple[VGGPerceptual | None, FacePerceptual | None]:
    from ..models.io.weights import resolve
    from ..models.networks.facenet import InceptionResnetV1, load_facenet
    from ..models.networks.vgg import VGG19Features, load_vgg19_features

    vgg = face = None
    if cfg.vgg == "registry":
        vgg = VGGPerceptual(load_vgg19_features(resolve("vgg19"), device), cfg.vgg_depth)
    elif cfg.vgg == "random":
        torch.manual_seed(cfg.seed + 3)
        vgg = VGGPerceptual(VGG19Features().to(device), cfg.vgg_depth)
    if cfg.face_net == "registry":
        face = FacePerceptual(load_facenet(resolve("facenet_vggface2"), device), cfg.face_size)
    elif cfg.face_net == "random":
        torch.manual_seed(cfg.seed + 4)
        face = FacePerceptual(InceptionResnetV1(num_classes=0).to(device).eval(), cfg.face_size,
                              stages=("conv2d_2b", "conv2d_4b"))
    return vgg, face


def build_generator(cfg: B2FTrainConfig, embed_dim: int) -> B2FGenerator:
    return B2FGenerator(embed_dim=embed_dim, fc_channels=cfg.fc_channels, ngf=cfg.ngf,
                        n_up=cfg.n_up, spade_hidden=cfg.spade_hidden, norm=cfg.norm)


def collate(samples: list[dict[str, Any]]) -> dict[str, Any]:
    return {k: [s[k] for s in samples] for k in samples[0]}


def _t_img(arrs: list[np.ndarray], device: torch.device) -> torch.Tensor:
    return torch.from_numpy(np.stack(arrs)).to(device).permute(0, 3, 1, 2).float() / 255.0


@torch.no_grad()
def encode_targets(encoder: AppearanceEncoder, images: list[np.ndarray],
                   labels: list[np.ndarray], crop_size: int, device: torch.device
                   ) -> torch.Tensor:
    """e_z (B, D) for a batch of targets (PartCropper + AppearanceEncoder)."""
    crops, present = [], []
    for img, lab in zip(images, labels):
        pc = crop_parts(img, lab, size=crop_size)
        crops.append(pc.crops)
        present.append(pc.present)
    c = crops_to_tensor(np.stack(crops)).to(device)
    return encoder(c, torch.from_numpy(np.stack(present)).to(device))


def augment_faces(faces: list[np.ndarray], cfg: B2FTrainConfig, rng: np.random.Generator
                  ) -> list[np.ndarray]:
    """Ren et al.'s joint jitter and part dropout (training/augment.py) applied to the face
    landmarks of each sample (B2F's only keypoint input)."""
    if cfg.pose_jitter <= 0 and cfg.part_dropout <= 0:
        return faces
    from ..models.core.schema import Person
    from .augment import drop_parts, jitter_joints

    out = []
    for f in faces:
        p = Person(face=f)
        if cfg.pose_jitter > 0:
            p = jitter_joints(p, rng, cfg.pose_jitter)
        if cfg.part_dropout > 0 and rng.random() < cfg.part_dropout:
            p = drop_parts(p, rng, 1.0)
        out.append(p.face)
    return out


def make_bodymaps(labels: list[np.ndarray], faces: list[np.ndarray], device: torch.device
                  ) -> torch.Tensor:
    h, w = labels[0].shape
    face = torch.from_numpy(np.stack([draw_face_labels(f, h, w) for f in faces]))
    return body_map(torch.from_numpy(np.stack(labels)).to(device), face.to(device))


# --------------------------------------------------------------------------------------------
# One step, evaluation
# --------------------------------------------------------------------------------------------

def generator_losses(cfg: B2FTrainConfig, G: nn.Module, D: nn.Module, e_z: torch.Tensor,
                     bm: torch.Tensor, x: torch.Tensor, bg: torch.Tensor, pplus: torch.Tensor,
                     labels: torch.Tensor, vgg: VGGPerceptual | None,
                     face: FacePerceptual | None) -> tuple[torch.Tensor, dict[str, float],
                                                           torch.Tensor]:
    z, m = G(e_z, bm)
    z01 = (z + 1) / 2
    o = z01 * m + bg * (1 - m)
    terms: dict[str, torch.Tensor] = {}
    fake = D(torch.cat([bm, z01 * pplus], 1))
    with torch.no_grad():
        real = D(torch.cat([bm, x * pplus], 1))
    # eq. 13 (hinge) and eq. 15 (feature matching, every layer weighted 1)
    terms["gan"] = cfg.lambda_gan * adversarial_loss(fake, real=True, mode="hinge",
                                                     for_discriminator=False)
    terms["fm"] = cfg.lambda_fm * feature_matching_loss(fake, real)
    if vgg is not None and cfg.lambda_vgg > 0:
        terms["vgg"] = cfg.lambda_vgg * vgg(o * pplus, x * pplus)
    if face is not None and cfg.lambda_face > 0:
        terms["face"] = cfg.lambda_face * face(o, x, face_boxes(labels))
    terms["mask"] = cfg.lambda_mask * F.l1_loss(m, pplus)
    if cfg.lambda_l1 > 0:
        terms["l1"] = cfg.lambda_l1 * (torch.abs(o - x) * pplus).mean()
    total = sum(terms.values())
    return total, {k: float(v.detach()) for k, v in terms.items()}, z01.detach()  # type: ignore


@torch.no_grad()
def evaluate(G: B2FGenerator, encoder: AppearanceEncoder, samples: Sequence[dict[str, Any]],
             crop_size: int, device: torch.device) -> dict[str, float]:
    """Masked PSNR of z vs the real frame inside the person, and IoU of (m > 0.5) with the
    ground-truth person mask, averaged over held-out samples (eval mode)."""
    was = G.training
    G.eval()
    psnrs, ious = [], []
    for s in samples:
        e_z = encode_targets(encoder, [s["target_image"]], [s["target_labels"]], crop_size,
                             device)
        bm = make_bodymaps([s["labels"]], [s["face"]], device)
        z, m = G(e_z, bm)
        z01 = ((z + 1) / 2)[0].permute(1, 2, 0).cpu().numpy()
        x = s["image"].astype(np.float32) / 255.0
        person = s["labels"] > 0
        mse = float(((z01 - x) ** 2)[person].mean())
        psnrs.append(10 * math.log10(1.0 / max(mse, 1e-10)))
        pred = m[0, 0].cpu().numpy() > 0.5
        ious.append(float((pred & person).sum()) / max(1, float((pred | person).sum())))
    G.train(was)
    return {"psnr_masked": float(np.mean(psnrs)), "mask_iou": float(np.mean(ious))}


# --------------------------------------------------------------------------------------------
# The loop
# --------------------------------------------------------------------------------------------

LAST_FILE = "b2f_last.safetensors"
RAW_FILE = "b2f_raw_last.safetensors"
STATE_FILE = "train_state.pt"
LOG_FILE = "log.jsonl"


def build_discriminator(cfg: B2FTrainConfig, label_nc: int) -> MultiscaleDiscriminator:
    """B2F's two PatchGANs (full and half resolution) on the body map + a masked frame."""
    if cfg.d_layers < 1:
        raise ValueError(f"d_layers must be >= 1, got {cfg.d_layers}")
    return MultiscaleDiscriminator(in_channels=label_nc + 3, num_d=2, ndf=cfg.ndf,
                                   n_layers=cfg.d_layers - 1)


_LEGACY_D_KEY = re.compile(r"ds\.(\d+)\.layers\.(\d+)\.(?:0\.)?(weight|bias)")


def _upgrade_d_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A ``train_state.pt`` discriminator from before training/gan.py (keys
    ``ds.<d>.layers.<i>[.0].weight``) in gan.MultiscaleDiscriminator's names (same layers)."""
    out = {}
    for k, v in state.items():
        m = _LEGACY_D_KEY.fullmatch(k)
        out[f"discs.{m[1]}.blocks.{m[2]}.0.{m[3]}" if m else k] = v
    return out


@dataclass
class _Nets:
    """What one B2F process trains: G and D, their (DDP) training views, the optimisers, the
    weight average, and the step reached."""

    G: B2FGenerator
    D: MultiscaleDiscriminator
    g_model: nn.Module
    d_model: nn.Module
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    G_ema: nn.Module | None
    step: int = 0


def _build_nets(cfg: B2FTrainConfig, embed_dim: int, ctx: DistContext, out: Path,
                log: logging.LoggerAdapter) -> _Nets:
    """G (the same initial weights on every rank), D, optimisers; ``--resume`` state; DDP."""
    device = ctx.device
    torch.manual_seed(cfg.seed)  # the same initial G on every rank, and for a given seed
    G = build_generator(cfg, embed_dim).to(device)
    torch.manual_seed(cfg.seed + 1000 + ctx.rank)
    D = build_discriminator(cfg, G.config["label_nc"]).to(device)
    opt_g = torch.optim.Adam(G.parameters(), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))
    opt_d = torch.optim.Adam(D.parameters(), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))
    step = 0
    if cfg.resume and (out / RAW_FILE).is_file() and (out / STATE_FILE).is_file():
        G = load_model(out / RAW_FILE, expected_arch="B2FGenerator", device=device).train()
        st = load_train_state(out / STATE_FILE, device=device)
        D.load_state_dict(_upgrade_d_state(st["D"]))
        opt_g = torch.optim.Adam(G.parameters(), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))
        opt_g.load_state_dict(st["opt_g"])
        opt_d.load_state_dict(st["opt_d"])
        step = int(st["step"])
        log.info("resumed from step %d", step)
    if ctx.distributed and device.type == "cuda":
        G = nn.SyncBatchNorm.convert_sync_batchnorm(G)
    g_model, d_model = wrap_ddp(G, ctx), wrap_ddp(D, ctx)
    G.train()
    D.train()
    G_ema = None
    if cfg.ema > 0:
        G_ema = copy.deepcopy(G).eval().requires_grad_(False)
        if cfg.resume and step > 0 and (out / LAST_FILE).is_file():
            G_ema = load_model(out / LAST_FILE, expected_arch="B2FGenerator", device=device)
    return _Nets(G, D, g_model, d_model, opt_g, opt_d, G_ema, step)


def _train_step(cfg: B2FTrainConfig, nets: _Nets, batch: dict[str, Any],
                encoder: AppearanceEncoder, vgg: VGGPerceptual | None,
                face: FacePerceptual | None, aug_rng: np.random.Generator,
                device: torch.device) -> dict[str, float]:
    """One generator and one discriminator update; returns the step's losses."""
    e_z = encode_targets(encoder, batch["target_image"], batch["target_labels"],
                         cfg.crop_size, device)
    faces = augment_faces(batch["face"], cfg, aug_rng)
    bm = make_bodymaps(batch["labels"], faces, device)
    x = _t_img(batch["image"], device)
    bg = _t_img(batch["background"], device)
    labels = torch.from_numpy(np.stack(batch["labels"])).to(device)
    pplus = (labels > 0).float().unsqueeze(1)
    # generator
    nets.opt_g.zero_grad(set_to_none=True)
    nets.d_model.requires_grad_(False)
    loss_g, terms, z01 = generator_losses(cfg, nets.g_model, nets.d_model, e_z, bm, x, bg,
                                          pplus, labels, vgg, face)
    loss_g.backward()
    nets.opt_g.step()
    if nets.G_ema is not None:
        _ema_update(nets.G_ema, nets.G, cfg.ema)
    nets.d_model.requires_grad_(True)
    # discriminators (hinge, eq. 14)
    nets.opt_d.zero_grad(set_to_none=True)
    fake = nets.d_model(torch.cat([bm, z01 * pplus], 1))
    real = nets.d_model(torch.cat([bm, x * pplus], 1))
    loss_d = (adversarial_loss(real, real=True, mode="hinge")
              + adversarial_loss(fake, real=False, mode="hinge"))
    loss_d.backward()
    nets.opt_d.step()
    nets.step += 1
    return {"step": nets.step, "g": float(loss_g.detach()), "d": float(loss_d.detach()),
            **terms}


def train(cfg: B2FTrainConfig, *, dataset: Any = None) -> dict[str, Any]:
    """Train B2F; returns {"steps", "last", "history", "generator" (the EMA one when on),
    "raw_generator", "discriminator", "encoder"}. See the module docstring."""
    ctx = setup_distributed(cfg.device)
    try:
        return _train(cfg, ctx, dataset)
    finally:
        teardown_distributed(ctx)


def _train(cfg: B2FTrainConfig, ctx: DistContext, dataset: Any) -> dict[str, Any]:
    from torch.utils.data import DataLoader, DistributedSampler

    from .b2f_data import make_dataset

    log = rank_logger(logger, ctx)
    device = ctx.device
    torch.manual_seed(cfg.seed + ctx.rank)
    np.random.seed(cfg.seed + ctx.rank)
    out = Path(cfg.out)
    if ctx.is_main:
        out.mkdir(parents=True, exist_ok=True)
    h, w = cfg.size
    ds = dataset if dataset is not None else make_dataset(
        cfg.layout, cfg.data, h, w, synthetic_length=cfg.synthetic_length, seed=cfg.seed)
    sampler = (DistributedSampler(ds, num_replicas=ctx.world_size, rank=ctx.rank, shuffle=True,
                                  seed=cfg.seed) if ctx.distributed else None)
    loader = DataLoader(ds, batch_size=cfg.batch_size, shuffle=sampler is None,
                        sampler=sampler, num_workers=cfg.num_workers, collate_fn=collate,
                        drop_last=len(ds) >= cfg.batch_size * ctx.world_size,
                        persistent_workers=cfg.num_workers > 0)
    encoder = build_encoder(cfg, device)
    vgg, face = build_losses(cfg, device)
    probe = ds[0]
    embed_dim = encode_targets(encoder, [probe["target_image"]], [probe["target_labels"]],
                               cfg.crop_size, device).shape[1]
    nets = _build_nets(cfg, embed_dim, ctx, out, log)
    history: list[dict[str, float]] = []
    log_file = open(out / LOG_FILE, "a") if ctx.is_main else None  # noqa: SIM115
    t0 = time.time()
    epoch = 0
    aug_rng = np.random.default_rng((cfg.seed, ctx.rank))
    try:
        while nets.step < cfg.steps:
            if sampler is not None:
                sampler.set_epoch(epoch)
            for batch in loader:
                if nets.step >= cfg.steps:
                    break
                rec = _train_step(cfg, nets, batch, encoder, vgg, face, aug_rng, device)
                history.append(rec)
                if log_file is not None and (nets.step % cfg.log_every == 0 or nets.step == 1):
                    rec["sec"] = round(time.time() - t0, 2)
                    log_file.write(json.dumps(rec) + "\n")
                    log_file.flush()
                    log.info("step %d g %.3f d %.3f %s", nets.step, rec["g"], rec["d"],
                             " ".join(f"{k} {v:.3f}" for k, v in rec.items()
                                      if k not in ("step", "g", "d", "sec")))
                if ctx.is_main and cfg.save_every and nets.step % cfg.save_every == 0:
                    _save(nets, out, cfg)
            epoch += 1
        if ctx.is_main:
            _save(nets, out, cfg)
    finally:
        if log_file is not None:
            log_file.close()
    return {"steps": nets.step, "last": out / LAST_FILE, "history": history,
            "generator": nets.G_ema if nets.G_ema is not None else nets.G,
            "raw_generator": nets.G, "discriminator": nets.D, "encoder": encoder}


@torch.no_grad()
def _ema_update(ema: nn.Module, model: nn.Module, decay: float) -> None:
    for pe, p in zip(ema.parameters(), model.parameters()):
        pe.mul_(decay).add_(p.detach(), alpha=1.0 - decay)
    for be, b in zip(ema.buffers(), model.buffers()):
        be.copy_(b)


def _save(nets: _Nets, out: Path, cfg: B2FTrainConfig) -> None:
    """``b2f_step<N>`` / ``b2f_last`` hold the generator users load (the EMA one when on);
    ``b2f_raw_last`` and ``train_state.pt`` what ``--resume`` needs. Rank 0 only."""
    meta = {"step": str(nets.step), "encoder": cfg.encoder,
            "train_config": json.dumps(asdict(cfg))}
    best = nets.G_ema if nets.G_ema is not None else nets.G
    save_model(best, out / f"b2f_step{nets.step}.safetensors", extra_metadata=meta)
    save_model(best, out / LAST_FILE, extra_metadata=meta)
    save_model(nets.G, out / RAW_FILE, extra_metadata=meta)
    save_train_state(out / STATE_FILE, {"D": nets.D.state_dict(), "opt_g": nets.opt_g.state_dict(),
                                        "opt_d": nets.opt_d.state_dict(), "step": nets.step})


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------

def add_train_parser(stages: Any) -> None:
    """``reenact train b2f`` (registered by training/cli.py)."""
    p = stages.add_parser("b2f", help="train the Body-to-Frame network (paper §3.2)",
                          description=__doc__.split("\n\n")[0])
    d = B2FTrainConfig()
    p.add_argument("--layout", choices=["synthetic", "cihp", "mhpv2"], default=d.layout)
    p.add_argument("--data", default=None, help="dataset root (see training/b2f_data.py)")
    p.add_argument("--out", default=d.out)
    p.add_argument("--prepare", action="store_true",
                   help="only pre-inpaint the dataset's backgrounds, then exit")
    for name in ("steps", "batch_size", "ngf", "fc_channels", "n_up", "spade_hidden", "ndf",
                 "d_layers", "crop_size", "vgg_depth", "face_size", "log_every", "save_every",
                 "seed", "num_workers", "synthetic_length"):
        p.add_argument("--" + name.replace("_", "-"), type=int, default=getattr(d, name))
    for name in ("lr", "lambda_fm", "lambda_vgg", "lambda_face", "lambda_mask", "lambda_l1",
                 "lambda_gan", "pose_jitter", "part_dropout", "ema"):
        p.add_argument("--" + name.replace("_", "-"), type=float, default=getattr(d, name))
    p.add_argument("--norm", choices=["batch", "instance", "none"], default=d.norm)
    p.add_argument("--encoder", choices=["pretrained", "random"], default=d.encoder)
    p.add_argument("--vgg", choices=["registry", "random", "none"], default=d.vgg)
    p.add_argument("--face-net", choices=["registry", "random", "none"], default=d.face_net)
    p.add_argument("--device", default="", help="auto (the default: CUDA when available, "
                   "cuda:<LOCAL_RANK> under torchrun), cpu, cuda, cuda:1 ...")
    p.add_argument("--resume", action="store_true")
    p.set_defaults(func=_cmd_train_b2f)


def _cmd_train_b2f(args: argparse.Namespace) -> int:
    fields = B2FTrainConfig.__dataclass_fields__
    cfg = B2FTrainConfig(**{k: getattr(args, k) for k in fields if hasattr(args, k)})
    if args.prepare:
        from .b2f_data import PersonCropDataset, make_dataset, prepare_inpainting

        h, w = cfg.size
        ds = make_dataset(cfg.layout, cfg.data, h, w)
        if not isinstance(ds, PersonCropDataset):
            print("synthetic data needs no inpainting")
            return 0
        print(f"inpainted {prepare_inpainting(ds)} photos under {Path(cfg.data) / 'inpainted'}")
        return 0
    res = train(cfg)
    print(f"trained {res['steps']} steps; weights: {res['last']}")
    return 0
