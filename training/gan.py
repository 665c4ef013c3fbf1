"""The GAN parts the three trainers share: one PatchGAN, its multiscale wrapper, the
adversarial losses (LSGAN, hinge) and discriminator feature matching.

Discriminators are used only in training, so they live here and not in ``models/`` (the
library holds the inference networks). Each trainer picks its architecture by arguments:

* P2B (paper §3.1, pix2pixHD): ``MultiscaleDiscriminator(num_d=2, n_layers=3)``, LSGAN,
  feature matching weighted ``4 / (n_layers + 1)`` per layer;
* B2F (paper §3.2): ``MultiscaleDiscriminator(num_d=2)``, hinge (eqs. 13-14), feature
  matching with weight 1 per layer (eq. 15);
* FaceRefine (paper §3.3): one spectrally normalised, norm-free PatchGAN whose last layer also
  strides (``last_stride=2``, ``padding=1``, ``score_kernel=3``: scores at 1/8 resolution),
  hinge.

A discriminator's output is a list with one entry per scale; each entry is the list of that
discriminator's layer activations, the last being the real/fake score map
(:data:`DiscOutput`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "DiscOutput",
    "PatchDiscriminator",
    "MultiscaleDiscriminator",
    "adversarial_loss",
    "feature_matching_loss",
    "GAN_MODES",
]

DiscOutput = list[list[torch.Tensor]]
"""Per discriminator (scale), its layer activations; ``[-1]`` is the score map."""

GAN_MODES: tuple[str, ...] = ("lsgan", "hinge")


class PatchDiscriminator(nn.Module):
    """pix2pixHD's N-layer PatchGAN, with the choices the trainers differ in as arguments.

    Layers (4x4 convs, LeakyReLU 0.2): ``in_channels -> ndf`` with stride 2 and no norm;
    ``n_layers`` more, each doubling the channels (at most ``max_channels``) with ``norm``,
    stride 2 except the last (``last_stride``, 1 in pix2pixHD); then a ``score_kernel`` conv to
    one channel with stride 1. Every conv pads by ``padding`` except the score conv
    (``score_kernel // 2``). ``spectral_norm`` wraps every conv in
    :func:`torch.nn.utils.spectral_norm`.

    Shape: (B, in_channels, H, W) -> list of ``n_layers + 2`` activations; the last is the
    (B, 1, h, w) score map.
    """

    def __init__(self, *, in_channels: int, ndf: int = 64, n_layers: int = 3,
                 norm: str = "instance", spectral_norm: bool = False, padding: int = 2,
                 last_stride: int = 1, score_kernel: int = 4, max_channels: int = 512) -> None:
        super().__init__()
        if norm not in ("instance", "none"):
            raise ValueError(f"norm must be 'instance' or 'none', got {norm!r}")
        if n_layers < 0:
            raise ValueError(f"n_layers must be >= 0, got {n_layers}")
        self.config = dict(in_channels=in_channels, ndf=ndf, n_layers=n_layers, norm=norm,
                           spectral_norm=spectral_norm, padding=padding,
                           last_stride=last_stride, score_kernel=score_kernel,
                           max_channels=max_channels)

        def conv(c_in: int, c_out: int, k: int, stride: int, pad: int) -> nn.Module:
            c = nn.Conv2d(c_in, c_out, k, stride, pad)
            return nn.utils.spectral_norm(c) if spectral_norm else c

        blocks: list[nn.Module] = [nn.Sequential(conv(in_channels, ndf, 4, 2, padding),
                                                 nn.LeakyReLU(0.2, True))]
        ch = ndf
        for i in range(1, n_layers + 1):
            nxt = min(ch * 2, max_channels)
            stride = 2 if i < n_layers else last_stride
            layer = [conv(ch, nxt, 4, stride, padding)]
            if norm == "instance":
                layer.append(nn.InstanceNorm2d(nxt))
            blocks.append(nn.Sequential(*layer, nn.LeakyReLU(0.2, True)))
            ch = nxt
        blocks.append(nn.Sequential(conv(ch, 1, score_kernel, 1, score_kernel // 2)))
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for b in self.blocks:
            x = b(x)
            feats.append(x)
        return feats


class MultiscaleDiscriminator(nn.Module):
    """``num_d`` PatchGANs on the input at full, half, quarter ... resolution (3x3 average
    pooling between scales, as pix2pixHD); the other arguments are each
    :class:`PatchDiscriminator`'s.

    Shape: (B, in_channels, H, W) -> :data:`DiscOutput` with ``num_d`` entries.
    """

    def __init__(self, *, in_channels: int, num_d: int = 2, ndf: int = 64, n_layers: int = 3,
                 norm: str = "instance", spectral_norm: bool = False, padding: int = 2,
                 last_stride: int = 1, score_kernel: int = 4, max_channels: int = 512) -> None:
        super().__init__()
        if num_d < 1:
            raise ValueError(f"num_d must be >= 1, got {num_d}")
        patch = dict(in_channels=in_channels, ndf=ndf, n_layers=n_layers, norm=norm,
                     spectral_norm=spectral_norm, padding=padding, last_stride=last_stride,
                     score_kernel=score_kernel, max_channels=max_channels)
        self.config = dict(num_d=num_d, **patch)
        self.discs = nn.ModuleList(PatchDiscriminator(**patch) for _ in range(num_d))

    def forward(self, x: torch.Tensor) -> DiscOutput:
        out = []
        for i, d in enumerate(self.discs):
            if i:
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
            out.append(d(x))
        return out


def adversarial_loss(preds: DiscOutput, *, real: bool, mode: str,
                     for_discriminator: bool = True) -> torch.Tensor:
    """One side of the GAN objective, summed over the discriminators (their score maps).

    Args:
        preds: a discriminator's output on one batch.
        real: whether the batch should be judged real (the discriminator on real data, and
            the generator on its fakes).
        mode: ``lsgan`` (pix2pixHD: mean squared distance of the scores to 1 / 0, the same
            for both players) or ``hinge`` (SPADE, paper eqs. 13-14: the discriminator
            minimises ``relu(1 - D)`` on real and ``relu(1 + D)`` on fake data, the
            generator ``-D`` on its fakes).
        for_discriminator: only matters for ``hinge``.
    Returns: a scalar.
    """
    if mode not in GAN_MODES:
        raise ValueError(f"unknown GAN mode {mode!r}; use one of {GAN_MODES}")
    loss = preds[0][-1].new_zeros(())
    for p in preds:
        score = p[-1]
        if mode == "lsgan":
            loss = loss + F.mse_loss(score, torch.full_like(score, 1.0 if real else 0.0))
        elif not for_discriminator:
            if not real:
                raise ValueError("the hinge generator loss is for fakes judged real (real=True)")
            loss = loss - score.mean()
        else:
            loss = loss + F.relu(1 - score if real else 1 + score).mean()
    return loss


def feature_matching_loss(fake: DiscOutput, real: DiscOutput, *, layer_weight: float = 1.0
                          ) -> torch.Tensor:
    """L1 between the discriminators' activations on fake and real data, every layer but the
    score map (pix2pixHD; paper eq. 15), each weighted ``layer_weight``, averaged over the
    discriminators. The real activations are detached (targets).

    pix2pixHD weights layers by ``4 / (n_layers + 1)``; B2F (eq. 15) by 1.
    """
    loss = fake[0][0].new_zeros(())
    for f, r in zip(fake, real, strict=True):
        for fi, ri in zip(f[:-1], r[:-1], strict=True):
            loss = loss + layer_weight * F.l1_loss(fi, ri.detach())
    return loss / len(fake)

