"""``reenact train face``: train FaceRefineNet (paper §3.3).

A sample is (f0 crop, clean crop, reference crop of the same person): f0 is the clean crop
degraded the way generated faces are (blur, noise, JPEG blocks, a colour cast and features
drifting towards another identity), the reference is another view of the same face and gives
the identity embedding. The network's refined crop is composited through its mask,
``c = m * refined + (1 - m) * f0``, and trained with

- reconstruction: L1(c, clean) + L1(refined, clean), weight ``--w-rec`` (default 1);
- perceptual: L1 between feature maps of c and clean at several depths of a frozen network
  (``--perceptual``: ``facenet`` (default, as the paper) = FaceNet InceptionResnetV1 trained
  on VGGFace2 (registry ``facenet_vggface2``) at conv2d_2b, conv2d_4b, repeat_1, mixed_6a;
  ``vgg16`` = ImageNet VGG16 (registry) at relu1_2, relu2_2, relu3_3, relu4_3; ``random`` = a
  fixed random conv pyramid, for offline runs and tests), weight ``--w-perc`` (default 1);
- mask regularisation: mean mask + total variation of the mask (the mask stays small and
  smooth unless changing pixels pays), ``--w-mask`` (default 0.02);
- adversarial: hinge loss with a PatchGAN discriminator on the composite, ``--w-adv``
  (default 0.01).

The last two ramp in linearly over the first half of the steps: at the start the refined crop
equals f0, so they alone would act on the mask and close it for good.

Data: ``--data synthetic`` (procedural faces, no download) or a folder of aligned face crops
(any size; resized), where the reference is the same photo flipped and jittered.
Checkpoints: ``face_refine.safetensors`` (loadable by Load FaceRefine) plus
``face_refine_state.pt`` (optimisers, discriminator, step) for ``--resume``; losses are logged
and appended to ``losses.csv``.

Multi-GPU / multi-process through ``torchrun --nproc_per_node N -m dance_reenact.cli train face
...`` (training/common.py: DDP, NCCL on CUDA, gloo on CPU): every process draws its own
batches (its own seed; ``--batch`` is per process), gradients are averaged, rank 0 logs and
saves. The discriminator and the hinge loss are training/gan.py's.
"""

from __future__ import annotations

import argparse
import csv
import logging
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..models.io.loading import load_model, save_model
from ..models.networks.face_refine import FaceRefineNet
from .common import (
    DistContext,
    load_train_state,
    rank_logger,
    save_train_state,
    setup_distributed,
    teardown_distributed,
    wrap_ddp,
)
from .gan import MultiscaleDiscriminator, adversarial_loss

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Identity:
    """What makes a synthetic person look like themselves."""

    skin: tuple[float, float, float]
    hair: tuple[float, float, float]
    iris: tuple[float, float, float]
    lips: tuple[float, float, float]
    face_w: float
    face_h: float
    eye_gap: float
    mouth_w: float
    brow: float

    @classmethod
    def random(cls, rng: np.random.Generator) -> Identity:
        def col(lo: float, hi: float) -> tuple[float, float, float]:
            return tuple(float(v) for v in rng.uniform(lo, hi, 3))  # type: ignore[return-value]

        skin = col(90, 235)
        return cls(skin=skin, hair=col(10, 200), iris=col(20, 200),
                   lips=(min(255.0, skin[0] * 0.9 + 40), skin[1] * 0.5, skin[2] * 0.55),
                   face_w=float(rng.uniform(0.27, 0.36)), face_h=float(rng.uniform(0.36, 0.44)),
                   eye_gap=float(rng.uniform(0.16, 0.24)), mouth_w=float(rng.uniform(0.10, 0.18)),
                   brow=float(rng.uniform(0.015, 0.04)))


def draw_face(ident: Identity, size: int, rng: np.random.Generator) -> np.ndarray:
    """One view of a synthetic face: pose (small rotation/scale/shift), expression (eyes,
    mouth) and lighting vary per call. Returns uint8 (size, size, 3) RGB."""
    s = size / 256.0
    ss = 4  # draw at 4x and downsample: anti-aliased shapes
    big = size * ss
    img = np.empty((big, big, 3), np.float32)
    img[:] = rng.uniform(30, 220, 3)
    c = big / 2
    fw, fh = ident.face_w * big, ident.face_h * big

    def pt(x: float, y: float) -> tuple[int, int]:
        return int(round(c + x * big)), int(round(c + y * big))

    cv2.ellipse(img, pt(0, -0.08), (int(fw * 1.08), int(fh * 0.9)), 0, 180, 360, ident.hair, -1)
    cv2.ellipse(img, pt(0, 0.02), (int(fw), int(fh)), 0, 0, 360, ident.skin, -1)
    open_eye = rng.uniform(0.4, 1.0)
    for side in (-1, 1):
        ex, ey = side * ident.eye_gap / 2, -0.05
        cv2.ellipse(img, pt(ex, ey), (int(0.055 * big), int(0.03 * big * open_eye + 1)), 0, 0,
                    360, (245, 245, 245), -1)
        cv2.circle(img, pt(ex, ey), int(0.022 * big * max(open_eye, 0.5)), ident.iris, -1)
        cv2.circle(img, pt(ex, ey), int(0.009 * big), (15, 15, 15), -1)
        cv2.line(img, pt(ex - 0.05, ey - 0.06), pt(ex + 0.05, ey - 0.065 - side * 0.005),
                 tuple(v * 0.6 for v in ident.hair), max(1, int(ident.brow * big)))
    nose = tuple(v * 0.8 for v in ident.skin)
    cv2.line(img, pt(0, -0.02), pt(0.01, 0.07), nose, max(1, int(0.01 * big)))
    mouth_open = rng.uniform(0.0, 1.0)
    cv2.ellipse(img, pt(0, 0.17), (int(ident.mouth_w * big / 2),
                int(0.012 * big + 0.03 * big * mouth_open)), 0, 0, 360, ident.lips, -1)
    if mouth_open > 0.4:
        cv2.ellipse(img, pt(0, 0.17), (int(ident.mouth_w * big / 2.6),
                    int(0.02 * big * mouth_open)), 0, 0, 360, (60, 20, 25), -1)
    # lighting: a soft gradient in a random direction
    yy, xx = np.mgrid[0:big, 0:big].astype(np.float32) / big - 0.5
    ang = rng.uniform(0, 2 * np.pi)
    img *= (1 + 0.25 * (np.cos(ang) * xx + np.sin(ang) * yy))[..., None]
    img = cv2.resize(np.clip(img, 0, 255), (size, size), interpolation=cv2.INTER_AREA)
    mat = cv2.getRotationMatrix2D((size / 2, size / 2), float(rng.uniform(-8, 8)),
                                  float(rng.uniform(0.95, 1.05)))
    mat[:, 2] += rng.uniform(-3, 3, 2) * s
    img = cv2.warpAffine(img, mat, (size, size), borderMode=cv2.BORDER_REFLECT101)
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)


def degrade(clean: np.ndarray, rng: np.random.Generator, other: np.ndarray | None = None, *,
            drift: float = 0.3, cast: float = 0.1) -> np.ndarray:
    """Make a crop look like a generated face: identity drift (a blend of up to ``drift``
    towards another person), a colour cast (per-channel gain up to 1 +- ``cast``, offset up
    to +-80 * ``cast``), blur, noise and JPEG blocks. uint8 (S, S, 3) -> same."""
    x = clean.astype(np.float32)
    if other is not None and drift > 0:
        a = rng.uniform(drift / 3, drift)
        x = x * (1 - a) + other.astype(np.float32) * a
    if cast > 0:
        x = x * rng.uniform(1 - cast, 1 + cast, 3) + rng.uniform(-80 * cast, 80 * cast, 3)
    sigma = rng.uniform(0.6, 1.6) * clean.shape[0] / 64
    x = cv2.GaussianBlur(x, (0, 0), sigma)
    x = x + rng.normal(0, rng.uniform(2, 8), x.shape)
    x = np.clip(x + 0.5, 0, 255).astype(np.uint8)
    q = int(rng.integers(40, 90))
    enc = cv2.imencode(".jpg", np.ascontiguousarray(x[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, q])[1]
    return np.ascontiguousarray(cv2.imdecode(enc, cv2.IMREAD_COLOR)[..., ::-1])


def synthetic_batches(batch: int, size: int, seed: int | Sequence[int], *, drift: float = 0.3,
                      cast: float = 0.1) -> Iterator[tuple[np.ndarray, ...]]:
    """Endless (f0, clean, reference) uint8 batches (B, S, S, 3) of synthetic faces
    (``seed``: anything :func:`numpy.random.default_rng` takes)."""
    rng = np.random.default_rng(seed)
    while True:
        f0, clean, ref = [], [], []
        for _ in range(batch):
            ident = Identity.random(rng)
            c = draw_face(ident, size, rng)
            other = draw_face(Identity.random(rng), size, rng)
            f0.append(degrade(c, rng, other, drift=drift, cast=cast))
            clean.append(c)
            ref.append(draw_face(ident, size, rng))
        yield np.stack(f0), np.stack(clean), np.stack(ref)


def folder_batches(folder: Path, batch: int, size: int, seed: int | Sequence[int], *,
                   drift: float = 0.3, cast: float = 0.1) -> Iterator[tuple[np.ndarray, ...]]:
    """Endless (f0, clean, reference) batches from a folder of aligned face crops, drawn at
    random with replacement (``seed``: anything :func:`numpy.random.default_rng` takes)."""
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in
                   (".png", ".jpg", ".jpeg", ".webp", ".bmp"))
    if len(files) < 2:
        raise ValueError(f"{folder} holds {len(files)} images; put aligned face crops there "
                         "(e.g. FaceRefine's 256x256 crops), at least 2")
    rng = np.random.default_rng(seed)

    def load(p: Path) -> np.ndarray:
        bgr = cv2.imread(str(p), cv2.IMREAD_COLOR)
        if bgr is None:
            raise ValueError(f"{p} is not a readable image")
        return cv2.resize(bgr[..., ::-1], (size, size), interpolation=cv2.INTER_AREA)

    while True:
        f0, clean, ref = [], [], []
        for _ in range(batch):
            c = load(files[int(rng.integers(len(files)))])
            other = load(files[int(rng.integers(len(files)))])
            mat = cv2.getRotationMatrix2D((size / 2, size / 2), float(rng.uniform(-6, 6)),
                                          float(rng.uniform(0.95, 1.05)))
            r = cv2.warpAffine(c[:, ::-1].copy(), mat, (size, size),
                               borderMode=cv2.BORDER_REFLECT101)
            f0.append(degrade(c, rng, other, drift=drift, cast=cast))
            clean.append(c)
            ref.append(r)
        yield np.stack(f0), np.stack(clean), np.stack(ref)


def to_tensor(batch: np.ndarray, device: torch.device | str) -> torch.Tensor:
    """uint8 (B, S, S, 3) -> float (B, 3, S, S) in 0..1."""
    return torch.from_numpy(batch).to(device).permute(0, 3, 1, 2).float().div_(255)


# --------------------------------------------------------------------------------------------
# losses and networks used only in training
# --------------------------------------------------------------------------------------------

class RandomFeatures(nn.Module):
    """A frozen, seeded random conv pyramid: features at 4 depths (offline perceptual net)."""

    def __init__(self, seed: int = 1234) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        chans = [3, 32, 64, 96, 128]
        self.stages = nn.ModuleList()
        for i in range(4):
            conv = nn.Conv2d(chans[i], chans[i + 1], 3, stride=1 if i == 0 else 2, padding=1)
            with torch.no_grad():
                conv.weight.copy_(torch.randn(conv.weight.shape, generator=gen)
                                  * math.sqrt(2.0 / (chans[i] * 9)))
                conv.bias.zero_()
            self.stages.append(nn.Sequential(conv, nn.ReLU()))
        self.requires_grad_(False).eval()

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats, h = [], x * 2 - 1
        for stage in self.stages:
            h = stage(h)
            feats.append(h)
        return feats


class VGGFeatures(nn.Module):
    """Frozen ImageNet VGG16 (registry ``vgg16``) at relu1_2, relu2_2, relu3_3, relu4_3."""

    TAPS = (3, 8, 15, 22)

    def __init__(self) -> None:
        super().__init__()
        from torchvision.models import vgg16

        from ..models.io.loading import load_state_dict_file
        from ..models.io.weights import resolve

        self.features = vgg16().features[: self.TAPS[-1] + 1]
        state = load_state_dict_file(resolve("vgg16"))
        own = {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")
               and int(k.split(".")[1]) <= self.TAPS[-1]}
        self.features.load_state_dict(own, strict=True)
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))
        self.requires_grad_(False).eval()

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        h, feats = (x - self.mean) / self.std, []
        for i, layer in enumerate(self.features):
            h = layer(h)
            if i in self.TAPS:
                feats.append(h)
        return feats


class FaceNetFeatures(nn.Module):
    """Frozen FaceNet (InceptionResnetV1 trained on VGGFace2, registry ``facenet_vggface2``)
    activations at four depths: the paper's face-embedding perceptual loss. Crops are
    resized to FaceNet's 160x160 input."""

    STAGES = ("conv2d_2b", "conv2d_4b", "repeat_1", "mixed_6a")

    def __init__(self, net: nn.Module | None = None) -> None:
        super().__init__()
        from ..models.networks.facenet import FACE_INPUT_SIZE, load_facenet

        if net is None:
            from ..models.io.weights import resolve

            net = load_facenet(resolve("facenet_vggface2"))
        self.net = net.eval().requires_grad_(False)
        self.size = FACE_INPUT_SIZE

    def train(self, mode: bool = True) -> FaceNetFeatures:  # stays frozen, BatchNorm in eval
        return self

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        from ..models.networks.facenet import standardize

        x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False)
        f = self.net.features(standardize(x), self.STAGES)
        return [f[s] for s in self.STAGES]


PERCEPTUAL_NETS: tuple[str, ...] = ("facenet", "vgg16", "random")


def perceptual_net(name: str) -> nn.Module:
    """The frozen feature network of the perceptual loss: ``facenet`` (the paper's face
    embedding), ``vgg16`` (ImageNet) or ``random`` (offline, no file)."""
    if name == "random":
        return RandomFeatures()
    if name == "vgg16":
        return VGGFeatures()
    if name == "facenet":
        return FaceNetFeatures()
    raise ValueError(f"unknown perceptual network {name!r}; use one of {PERCEPTUAL_NETS}")


def build_discriminator(ndf: int = 32) -> MultiscaleDiscriminator:
    """FaceRefine's PatchGAN: spectral norm, no normalisation, three stride-2 4x4 convs and a
    3x3 score conv. Shape: (B, 3, S, S) in -1..1 -> one scale, scores (B, 1, S/8, S/8)."""
    return MultiscaleDiscriminator(in_channels=3, num_d=1, ndf=ndf, n_layers=2, norm="none",
                                   spectral_norm=True, padding=1, last_stride=2,
                                   score_kernel=3)


_LEGACY_D_KEY = re.compile(r"net\.(\d+)\.(.+)")


def _upgrade_d_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A ``face_refine_state.pt`` discriminator from before training/gan.py (an
    ``nn.Sequential`` ``net`` of conv, LeakyReLU, ...: keys ``net.<2j>.weight_orig`` ...) in
    :func:`build_discriminator`'s names (same layers)."""
    out = {}
    for k, v in state.items():
        m = _LEGACY_D_KEY.fullmatch(k)
        out[f"discs.0.blocks.{int(m[1]) // 2}.0.{m[2]}" if m else k] = v
    return out


def composite(net: FaceRefineNet, f0: torch.Tensor, ref: torch.Tensor
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The refined crop blended over f0 through the predicted mask; the mask; the refined
    crop itself."""
    refined, mask = net(f0, net.embed(ref))
    return mask * refined + (1 - mask) * f0, mask, refined


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = F.mse_loss(a.clamp(0, 1), b).item()
    return 10 * math.log10(1.0 / max(mse, 1e-12))


@torch.no_grad()
def evaluate(net: FaceRefineNet, batches: list[tuple[np.ndarray, ...]],
             device: torch.device | str = "cpu") -> dict[str, float]:
    """Held-out crops: mean PSNR (dB) and L1 of the composite, and of f0 itself (the floor)."""
    was = net.training
    net.eval()
    out, base, l1, l1_base = [], [], [], []
    for f0, clean, ref in batches:
        x, y, r = to_tensor(f0, device), to_tensor(clean, device), to_tensor(ref, device)
        c, _, _ = composite(net, x, r)
        out.append(psnr(c, y))
        base.append(psnr(x, y))
        l1.append(F.l1_loss(c, y).item())
        l1_base.append(F.l1_loss(x, y).item())
    net.train(was)
    return {"psnr": float(np.mean(out)), "psnr_input": float(np.mean(base)),
            "l1": float(np.mean(l1)), "l1_input": float(np.mean(l1_base))}


@dataclass
class TrainConfig:
    out: Path
    steps: int = 2000
    batch: int = 8  # per process
    size: int = 128
    ngf: int = 32
    n_down: int = 4
    embed_dim: int = 128
    lr: float = 2e-4
    w_rec: float = 1.0
    w_perc: float = 1.0
    w_mask: float = 0.02
    w_adv: float = 0.01
    perceptual: str = "facenet"
    data: str = "synthetic"
    drift: float = 0.3
    cast: float = 0.1
    seed: int = 0
    log_every: int = 50
    save_every: int = 500
    resume: bool = False
    device: str = "auto"


WEIGHTS_FILE = "face_refine.safetensors"
STATE_FILE = "face_refine_state.pt"
LOSS_FILE = "losses.csv"


class _Composite(nn.Module):
    """:func:`composite` as ``forward`` (what DDP wraps)."""

    def __init__(self, net: FaceRefineNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, f0: torch.Tensor, ref: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return composite(self.net, f0, ref)


def _signed(x: torch.Tensor) -> torch.Tensor:
    """0..1 images -> -1..1, the discriminator's input range."""
    return x * 2 - 1


class FaceRefineTrainer:
    """One process's share of FaceRefine training (rank 0 saves and logs)."""

    def __init__(self, cfg: TrainConfig) -> None:
        self.cfg = cfg
        self.ctx: DistContext = setup_distributed(cfg.device)
        self.device = self.ctx.device
        self.log = rank_logger(logger, self.ctx)
        self.out = Path(cfg.out)
        # the same initial weights on every rank (DDP also broadcasts rank 0's)
        torch.manual_seed(cfg.seed)
        if self.ctx.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
        self.disc = build_discriminator().to(self.device)
        self.step = 0
        if cfg.resume and (self.out / WEIGHTS_FILE).is_file():
            self.net = load_model(self.out / WEIGHTS_FILE, expected_arch="FaceRefineNet",
                                  device=self.device).train()
        else:
            self.net = FaceRefineNet(crop_size=cfg.size, ngf=cfg.ngf, n_down=cfg.n_down,
                                     max_channels=8 * cfg.ngf,
                                     embed_dim=cfg.embed_dim).to(self.device)
        self.opt_g = torch.optim.Adam(self.net.parameters(), lr=cfg.lr, betas=(0.5, 0.999))
        self.opt_d = torch.optim.Adam(self.disc.parameters(), lr=cfg.lr, betas=(0.5, 0.999))
        if cfg.resume and (self.out / STATE_FILE).is_file():
            state = load_train_state(self.out / STATE_FILE, device=self.device)
            self.disc.load_state_dict(_upgrade_d_state(state["disc"]))
            self.opt_g.load_state_dict(state["opt_g"])
            self.opt_d.load_state_dict(state["opt_d"])
            self.step = int(state["step"])
            self.log.info("resumed from step %d", self.step)
        self.feats = perceptual_net(cfg.perceptual).to(self.device)
        self.g_train = wrap_ddp(_Composite(self.net), self.ctx)
        self.d_train = wrap_ddp(self.disc, self.ctx)

    def batches(self) -> Iterator[tuple[np.ndarray, ...]]:
        """This rank's endless batches, from the step reached (rank 0 draws what a
        one-process run draws; rank r > 0 its own stream)."""
        cfg = self.cfg
        seed: int | list[int] = cfg.seed + self.step
        if self.ctx.rank:
            seed = [cfg.seed + self.step, self.ctx.rank]
        kw = dict(drift=cfg.drift, cast=cfg.cast)
        if cfg.data == "synthetic":
            return synthetic_batches(cfg.batch, cfg.size, seed, **kw)
        return folder_batches(Path(cfg.data), cfg.batch, cfg.size, seed, **kw)

    def save(self) -> Path:
        """Write the network and the training state (call on rank 0)."""
        path = save_model(self.net, self.out / WEIGHTS_FILE,
                          extra_metadata={"step": str(self.step)})
        save_train_state(self.out / STATE_FILE,
                         {"disc": self.disc.state_dict(), "opt_g": self.opt_g.state_dict(),
                          "opt_d": self.opt_d.state_dict(), "step": self.step})
        return path

    def train_step(self, f0: torch.Tensor, clean: torch.Tensor, ref: torch.Tensor
                   ) -> list[float]:
        """One discriminator and one network update; returns [loss, rec, perc, mask, adv]."""
        cfg = self.cfg
        comp, mask, refined = self.g_train(f0, ref)
        # discriminator (hinge)
        if cfg.w_adv > 0:
            d_loss = (adversarial_loss(self.d_train(_signed(clean)), real=True, mode="hinge")
                      + adversarial_loss(self.d_train(_signed(comp.detach())), real=False,
                                         mode="hinge"))
            self.opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            self.opt_d.step()
        # the refined crop is also supervised on its own, so the RGB head learns even
        # where the mask is (still) closed; the mask then opens where refining pays
        rec = F.l1_loss(comp, clean) + F.l1_loss(refined, clean)
        perc = sum(F.l1_loss(a, b) for a, b in zip(self.feats(comp), self.feats(clean),
                                                   strict=True))
        tv = (mask[..., 1:, :] - mask[..., :-1, :]).abs().mean() + \
            (mask[..., 1:] - mask[..., :-1]).abs().mean()
        mreg = mask.mean() + tv
        self.disc.requires_grad_(False)  # the network's loss trains the network only
        adv = (adversarial_loss(self.d_train(_signed(comp)), real=True, mode="hinge",
                                for_discriminator=False)
               if cfg.w_adv > 0 else torch.zeros((), device=self.device))
        # mask regularisation and the adversary ramp in over the first half: at the start
        # the refined crop equals f0, so only they would act and they close the mask
        ramp = min(1.0, self.step / max(1.0, 0.5 * cfg.steps))
        loss = (cfg.w_rec * rec + cfg.w_perc * perc
                + ramp * (cfg.w_mask * mreg + cfg.w_adv * adv))
        self.opt_g.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_g.step()
        self.disc.requires_grad_(True)
        self.step += 1
        return [float(v.detach()) for v in (loss, rec, perc, mreg, adv)]

    def fit(self) -> FaceRefineNet:
        """Train until ``cfg.steps``; returns the network (in eval mode)."""
        cfg = self.cfg
        data = self.batches()
        log_file = (self.out / LOSS_FILE).open("a", newline="") if self.ctx.is_main else None
        writer = csv.writer(log_file) if log_file is not None else None
        self.net.train()
        try:
            while self.step < cfg.steps:
                f0, clean, ref = (to_tensor(a, self.device) for a in next(data))
                losses = self.train_step(f0, clean, ref)
                if writer is not None and (self.step % cfg.log_every == 0
                                           or self.step == cfg.steps):
                    row = [self.step, *losses]
                    writer.writerow(row)
                    log_file.flush()  # type: ignore[union-attr]
                    self.log.info("step %d loss %.4f rec %.4f perc %.4f mask %.4f adv %.4f",
                                  *row)
                if self.ctx.is_main and cfg.save_every and self.step % cfg.save_every == 0:
                    self.save()
            if self.ctx.is_main:
                self.save()
        finally:
            if log_file is not None:
                log_file.close()
        return self.net.eval()


def train(cfg: TrainConfig) -> FaceRefineNet:
    """Train FaceRefineNet; returns it (rank 0 also saves it under ``cfg.out``)."""
    trainer = FaceRefineTrainer(cfg)
    try:
        return trainer.fit()
    finally:
        teardown_distributed(trainer.ctx)


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------

def _cmd_train_face(args: argparse.Namespace) -> int:
    fields = {k: getattr(args, k) for k in TrainConfig.__dataclass_fields__ if hasattr(args, k)}
    fields["out"] = Path(args.out)
    cfg = TrainConfig(**fields)
    held_out = [next(synthetic_batches(8, cfg.size, 10_000 + i, drift=cfg.drift,
                                       cast=cfg.cast)) for i in range(2)] \
        if cfg.data == "synthetic" else []
    trainer = FaceRefineTrainer(cfg)
    try:
        net = trainer.fit()
        if trainer.ctx.is_main:
            if held_out:
                logger.info("held-out synthetic crops: %s",
                            evaluate(net, held_out, trainer.device))
            print(f"weights: {cfg.out / WEIGHTS_FILE}")
    finally:
        teardown_distributed(trainer.ctx)
    return 0


def add_train_parser(stages: argparse._SubParsersAction) -> None:
    """Register ``face`` in an existing ``train`` stage group."""
    p = stages.add_parser(
        "face", help="train FaceRefineNet", description=__doc__.split("\n\n")[0])
    d = TrainConfig(out=Path("out/face"))
    p.add_argument("--out", default="out/face", help="folder for weights, state and losses.csv")
    p.add_argument("--data", default=d.data, help="'synthetic' or a folder of aligned crops")
    p.add_argument("--steps", type=int, default=d.steps)
    p.add_argument("--batch", type=int, default=d.batch, help="crops per step and process")
    p.add_argument("--size", type=int, default=d.size, help="crop size (256 = the node's)")
    p.add_argument("--ngf", type=int, default=d.ngf)
    p.add_argument("--n-down", dest="n_down", type=int, default=d.n_down)
    p.add_argument("--embed-dim", dest="embed_dim", type=int, default=d.embed_dim)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--w-rec", dest="w_rec", type=float, default=d.w_rec)
    p.add_argument("--w-perc", dest="w_perc", type=float, default=d.w_perc)
    p.add_argument("--w-mask", dest="w_mask", type=float, default=d.w_mask)
    p.add_argument("--w-adv", dest="w_adv", type=float, default=d.w_adv)
    p.add_argument("--perceptual", choices=list(PERCEPTUAL_NETS), default=d.perceptual,
                   help="frozen network of the perceptual loss (facenet = the paper's face "
                   "embedding, from the weight registry)")
    p.add_argument("--drift", type=float, default=d.drift,
                   help="max blend towards another face in the degraded input")
    p.add_argument("--cast", type=float, default=d.cast, help="max colour cast of the input")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--log-every", dest="log_every", type=int, default=d.log_every)
    p.add_argument("--save-every", dest="save_every", type=int, default=d.save_every)
    p.add_argument("--resume", action="store_true", help="continue from --out's checkpoint")
    p.add_argument("--device", default=d.device, help="auto (CUDA when available, "
                   "cuda:<LOCAL_RANK> under torchrun), cpu, cuda, cuda:1, ...")
    p.set_defaults(func=_cmd_train_face)
