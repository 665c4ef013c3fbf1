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

Multi-GPU: run under ``torchrun --nproc_per_node N -m dance_reenact.cli train b2f ...``; each
process trains on its shard (DistributedSampler) with DDP-wrapped G and D (NCCL on CUDA, gloo
on CPU); rank 0 logs and saves. Checkpoints: ``<out>/b2f_last.safetensors`` (loadable by the
B2F Loader), ``b2f_step<N>.safetensors``, and ``train_state.pt`` (D + optimisers) for
``--resume``. Losses go to ``<out>/log.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..models.appearance import AppearanceEncoder, crops_to_tensor
from ..models.b2f import B2FGenerator, body_map, draw_face_labels
from ..models.loading import load_model, save_model
from ..models.parts import crop_parts
from ..models.schema import LABEL

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------
# Discriminators and losses
# --------------------------------------------------------------------------------------------

class PatchDiscriminator(nn.Module):
    """pix2pixHD's N-layer PatchGAN; returns every layer's activation (last = the scores)."""

    def __init__(self, in_channels: int, ndf: int = 64, n_layers: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Sequential(nn.Conv2d(in_channels, ndf, 4, 2, 2),
                                                 nn.LeakyReLU(0.2))]
        c = ndf
        for i in range(1, n_layers):
            c2 = min(c * 2, 512)
            layers.append(nn.Sequential(nn.Conv2d(c, c2, 4, 2 if i < n_layers - 1 else 1, 2),
                                        nn.InstanceNorm2d(c2), nn.LeakyReLU(0.2)))
            c = c2
        layers.append(nn.Conv2d(c, 1, 4, 1, 2))
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for layer in self.layers:
            x = layer(x)
            feats.append(x)
        return feats


class MultiscaleDiscriminator(nn.Module):
    """Two PatchGANs: D1 at full resolution, D2 at half (paper: "two discriminators")."""

    def __init__(self, in_channels: int, ndf: int = 64, n_layers: int = 3, num_d: int = 2
                 ) -> None:
        super().__init__()
        self.ds = nn.ModuleList(PatchDiscriminator(in_channels, ndf, n_layers)
                                for _ in range(num_d))

    def forward(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        out = []
        for i, d in enumerate(self.ds):
            if i:
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
            out.append(d(x))
        return out


def hinge_d_loss(real: list[list[torch.Tensor]], fake: list[list[torch.Tensor]]) -> torch.Tensor:
    """Eq. 14 summed over the discriminators: E[relu(1 - D(x))] + E[relu(1 + D(z))]."""
    return sum(F.relu(1 - r[-1]).mean() + F.relu(1 + f[-1]).mean()
               for r, f in zip(real, fake))  # type: ignore[return-value]


def hinge_g_loss(fake: list[list[torch.Tensor]]) -> torch.Tensor:
    """Eq. 13: -E[D(z)] summed over the discriminators."""
    return sum(-f[-1].mean() for f in fake)  # type: ignore[return-value]


def feature_matching_loss(real: list[list[torch.Tensor]], fake: list[list[torch.Tensor]]
                          ) -> torch.Tensor:
    """Eq. 15: mean L1 between real and fake activations of every layer but the scores."""
    loss = torch.zeros((), device=fake[0][0].device)
    for r, f in zip(real, fake):
        for rj, fj in zip(r[:-1], f[:-1]):
            loss = loss + F.l1_loss(fj, rj.detach())
    return loss / len(fake)


class VGGPerceptual(nn.Module):
    """Eq. 16 with pix2pixHD's weights over relu1_1 .. relu5_1 (fewer with ``depth``)."""

    WEIGHTS = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0)

    def __init__(self, vgg: nn.Module, depth: int = 5) -> None:
        super().__init__()
        from ..models.vgg import VGG19_RELU_X_1

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
        from ..models.facenet import standardize

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
    # discriminators
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
        from ..models.appearance import load_pretrained_encoder

        return load_pretrained_encoder(device)
    if cfg.encoder == "random":
        enc = AppearanceEncoder(_RandomFeatures(32, True, cfg.seed + 1),
                                _RandomFeatures(32, False, cfg.seed + 2),
                                face_size=cfg.crop_size, face_standardize=False)
        return enc.to(device).eval()
    raise ValueError(f"unknown encoder {cfg.encoder!r}; use pretrained or random")


def build_losses(cfg: B2FTrainConfig, device: torch.device
                 ) -> tuple[VGGPerceptual | None, FacePerceptual | None]:
    from ..models.facenet import InceptionResnetV1, load_facenet
    from ..models.vgg import VGG19Features, load_vgg19_features
    from ..models.weights import resolve

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
    from ..models.schema import Person
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
    terms["gan"] = cfg.lambda_gan * hinge_g_loss(fake)
    terms["fm"] = cfg.lambda_fm * feature_matching_loss(real, fake)
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

def _dist_setup() -> tuple[bool, int, int, torch.device | None]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return False, 0, 1, None
    import torch.distributed as dist

    local = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        torch.cuda.set_device(local)
        dist.init_process_group("nccl")
        dev = torch.device("cuda", local)
    else:
        dist.init_process_group("gloo")
        dev = torch.device("cpu")
    return True, dist.get_rank(), world, dev


def train(cfg: B2FTrainConfig, *, dataset: Any = None) -> dict[str, Any]:
    """Train B2F; returns {"steps", "last", "history"}. See the module docstring."""
    from torch.utils.data import DataLoader, DistributedSampler

    from .b2f_data import make_dataset

    distributed, rank, world, ddev = _dist_setup()
    device = ddev or torch.device(cfg.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    torch.manual_seed(cfg.seed + rank)
    np.random.seed(cfg.seed + rank)
    out = Path(cfg.out)
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
    h, w = cfg.size
    ds = dataset if dataset is not None else make_dataset(
        cfg.layout, cfg.data, h, w, synthetic_length=cfg.synthetic_length, seed=cfg.seed)
    sampler = DistributedSampler(ds, shuffle=True, seed=cfg.seed) if distributed else None
    loader = DataLoader(ds, batch_size=cfg.batch_size, shuffle=sampler is None,
                        sampler=sampler, num_workers=cfg.num_workers, collate_fn=collate,
                        drop_last=len(ds) >= cfg.batch_size * world,
                        persistent_workers=cfg.num_workers > 0)
    encoder = build_encoder(cfg, device)
    vgg, face = build_losses(cfg, device)
    probe = ds[0]
    embed_dim = encode_targets(encoder, [probe["target_image"]], [probe["target_labels"]],
                               cfg.crop_size, device).shape[1]
    torch.manual_seed(cfg.seed)  # the same initial G on every rank, and for a given seed
    G = build_generator(cfg, embed_dim).to(device)
    torch.manual_seed(cfg.seed + 1000 + rank)
    D = MultiscaleDiscriminator(G.config["label_nc"] + 3, cfg.ndf, cfg.d_layers).to(device)
    opt_g = torch.optim.Adam(G.parameters(), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))
    opt_d = torch.optim.Adam(D.parameters(), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))
    step = 0
    state_path = out / "train_state.pt"
    raw_path = out / "b2f_raw_last.safetensors"
    if cfg.resume and raw_path.is_file() and state_path.is_file():
        G = load_model(raw_path, expected_arch="B2FGenerator", device=device).train()
        st = torch.load(state_path, map_location=device, weights_only=True)
        D.load_state_dict(st["D"])
        opt_g = torch.optim.Adam(G.parameters(), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))
        opt_g.load_state_dict(st["opt_g"])
        opt_d.load_state_dict(st["opt_d"])
        step = int(st["step"])
        logger.info("resumed from step %d", step)
    g_model: nn.Module = G
    d_model: nn.Module = D
    if distributed:
        from torch.nn.parallel import DistributedDataParallel as DDP

        if device.type == "cuda":
            G = nn.SyncBatchNorm.convert_sync_batchnorm(G)
        ids = [device.index] if device.type == "cuda" else None
        g_model = DDP(G, device_ids=ids)
        d_model = DDP(D, device_ids=ids)
    G.train()
    D.train()
    G_ema = None
    if cfg.ema > 0:
        import copy

        G_ema = copy.deepcopy(G).eval().requires_grad_(False)
        ema_path = out / "b2f_last.safetensors"
        if cfg.resume and step > 0 and ema_path.is_file():
            G_ema = load_model(ema_path, expected_arch="B2FGenerator", device=device)
    history: list[dict[str, float]] = []
    log = open(out / "log.jsonl", "a") if rank == 0 else None
    t0 = time.time()
    epoch = 0
    aug_rng = np.random.default_rng((cfg.seed, rank))
    try:
        while step < cfg.steps:
            if sampler is not None:
                sampler.set_epoch(epoch)
            for batch in loader:
                if step >= cfg.steps:
                    break
                e_z = encode_targets(encoder, batch["target_image"], batch["target_labels"],
                                     cfg.crop_size, device)
                faces = augment_faces(batch["face"], cfg, aug_rng)
                bm = make_bodymaps(batch["labels"], faces, device)
                x = _t_img(batch["image"], device)
                bg = _t_img(batch["background"], device)
                labels = torch.from_numpy(np.stack(batch["labels"])).to(device)
                pplus = (labels > 0).float().unsqueeze(1)
                # generator
                opt_g.zero_grad(set_to_none=True)
                d_model.requires_grad_(False)
                loss_g, terms, z01 = generator_losses(cfg, g_model, d_model, e_z, bm, x, bg,
                                                      pplus, labels, vgg, face)
                loss_g.backward()
                opt_g.step()
                if G_ema is not None:
                    _ema_update(G_ema, G, cfg.ema)
                d_model.requires_grad_(True)
                # discriminators
                opt_d.zero_grad(set_to_none=True)
                fake = d_model(torch.cat([bm, z01 * pplus], 1))
                real = d_model(torch.cat([bm, x * pplus], 1))
                loss_d = hinge_d_loss(real, fake)
                loss_d.backward()
                opt_d.step()
                step += 1
                rec = {"step": step, "g": float(loss_g.detach()), "d": float(loss_d.detach()),
                       **terms}
                history.append(rec)
                if log is not None and (step % cfg.log_every == 0 or step == 1):
                    rec["sec"] = round(time.time() - t0, 2)
                    log.write(json.dumps(rec) + "\n")
                    log.flush()
                    logger.info("step %d g %.3f d %.3f %s", step, rec["g"], rec["d"],
                                " ".join(f"{k} {v:.3f}" for k, v in terms.items()))
                if rank == 0 and cfg.save_every and step % cfg.save_every == 0:
                    _save(G, G_ema, D, opt_g, opt_d, step, out, cfg)
            epoch += 1
        if rank == 0:
            _save(G, G_ema, D, opt_g, opt_d, step, out, cfg)
    finally:
        if log is not None:
            log.close()
        if distributed:
            import torch.distributed as dist

            dist.destroy_process_group()
    return {"steps": step, "last": out / "b2f_last.safetensors", "history": history,
            "generator": G_ema if G_ema is not None else G, "raw_generator": G,
            "encoder": encoder}


@torch.no_grad()
def _ema_update(ema: nn.Module, model: nn.Module, decay: float) -> None:
    for pe, p in zip(ema.parameters(), model.parameters()):
        pe.mul_(decay).add_(p.detach(), alpha=1.0 - decay)
    for be, b in zip(ema.buffers(), model.buffers()):
        be.copy_(b)


def _save(G: nn.Module, G_ema: nn.Module | None, D: nn.Module, opt_g: Any, opt_d: Any,
          step: int, out: Path, cfg: B2FTrainConfig) -> None:
    """``b2f_step<N>`` / ``b2f_last`` hold the generator users load (the EMA one when on);
    ``b2f_raw_last`` and ``train_state.pt`` what ``--resume`` needs."""
    meta = {"step": str(step), "encoder": cfg.encoder, "train_config": json.dumps(asdict(cfg))}
    best = G_ema if G_ema is not None else G
    save_model(best, out / f"b2f_step{step}.safetensors", extra_metadata=meta)
    save_model(best, out / "b2f_last.safetensors", extra_metadata=meta)
    save_model(G, out / "b2f_raw_last.safetensors", extra_metadata=meta)
    tmp = out / "train_state.pt.tmp"
    torch.save({"D": D.state_dict(), "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(),
                "step": step}, tmp)
    os.replace(tmp, out / "train_state.pt")


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
    p.add_argument("--device", default="")
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
