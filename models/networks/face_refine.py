"""FaceRefineNet (paper §3.3): refine the aligned face crop of f0 with the target's identity.

An encoder-decoder (U-Net skips) over the aligned crop of the generated frame; the target's
face embedding — a vector from the network's own identity encoder run once on the target's
aligned crop — is broadcast and concatenated to the bottleneck latent. Two heads: a residual
RGB correction (the refined crop is ``clamp(crop + tanh(r), 0, 1)``) and a blending mask
(sigmoid). The crop is warped back into the frame and blended through the mask
(:func:`refine_face_network`).

The paper uses a pretrained face-recognition embedding for the identity; ours is learned with
the refiner (no pretrained face network is assumed present), while training's perceptual loss
uses a frozen feature network at several depths (see ``training/face.py``).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..compositing.face import FaceTarget, align_face, paste_crop
from ..io.loading import register_architecture


def _down(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 4, stride=2, padding=1),
                         nn.InstanceNorm2d(cout, affine=True), nn.LeakyReLU(0.2, inplace=True))


class _Up(nn.Module):
    def __init__(self, cin: int, cskip: int, cout: int) -> None:
        super().__init__()
        # no normalisation in the decoder: per-image colour (the target's skin tone, the
        # frame's colour cast) must survive to the output heads
        self.conv = nn.Sequential(nn.Conv2d(cin + cskip, cout, 3, padding=1),
                                  nn.LeakyReLU(0.2, inplace=True))

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.conv(torch.cat([x, skip], 1))


class _ResBlock(nn.Module):
    def __init__(self, ch: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(ch, ch, 3, padding=1),
                                  nn.InstanceNorm2d(ch, affine=True), nn.ReLU(inplace=True),
                                  nn.Conv2d(ch, ch, 3, padding=1),
                                  nn.InstanceNorm2d(ch, affine=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


@register_architecture
class FaceRefineNet(nn.Module):
    """Aligned face crop of f0 + target face embedding -> refined crop + blending mask.

    Shape: crop (B, 3, S, S) in 0..1, embedding (B, embed_dim) ->
    refined (B, 3, S, S) in 0..1, mask (B, 1, S, S) in 0..1. S is any multiple of
    ``2 ** n_down`` (``crop_size`` is what the node aligns to).
    """

    def __init__(self, *, crop_size: int = 256, ngf: int = 32, n_down: int = 4,
                 max_channels: int = 256, embed_dim: int = 128, n_res: int = 2) -> None:
        super().__init__()
        self.config = dict(crop_size=crop_size, ngf=ngf, n_down=n_down,
                           max_channels=max_channels, embed_dim=embed_dim, n_res=n_res)
        if crop_size % (2 ** n_down):
            raise ValueError(f"crop_size {crop_size} must be a multiple of 2**n_down")
        chans = [min(ngf * 2 ** i, max_channels) for i in range(n_down + 1)]
        self.stem = nn.Sequential(nn.Conv2d(3, ngf, 7, padding=3), nn.LeakyReLU(0.2, True))
        self.downs = nn.ModuleList(_down(chans[i], chans[i + 1]) for i in range(n_down))
        # identity encoder: same strides, its own weights, global-pooled to a vector
        id_layers: list[nn.Module] = [nn.Conv2d(3, ngf, 7, padding=3), nn.LeakyReLU(0.2, True)]
        id_layers += [_down(chans[i], chans[i + 1]) for i in range(n_down)]
        self.id_encoder = nn.Sequential(*id_layers)
        self.id_fc = nn.Linear(chans[-1], embed_dim)
        self.fuse = nn.Sequential(nn.Conv2d(chans[-1] + embed_dim, chans[-1], 1),
                                  nn.LeakyReLU(0.2, True))
        self.res = nn.Sequential(*[_ResBlock(chans[-1]) for _ in range(n_res)])
        self.ups = nn.ModuleList(_Up(chans[i + 1], chans[i], chans[i])
                                 for i in reversed(range(n_down)))
        self.to_rgb = nn.Conv2d(ngf + 3, 3, 3, padding=1)
        self.to_mask = nn.Conv2d(ngf + 3, 1, 3, padding=1)
        # start as the identity (refined = crop) with the mask mostly open, so the
        # reconstruction gradient reaches the RGB head before mask regularisation closes it
        nn.init.zeros_(self.to_rgb.weight)
        nn.init.zeros_(self.to_rgb.bias)
        nn.init.constant_(self.to_mask.bias, 2.0)

    def embed(self, target_crop: torch.Tensor) -> torch.Tensor:
        """The target's face embedding. Shape: (B, 3, S, S) in 0..1 -> (B, embed_dim)."""
        feat = self.id_encoder(target_crop * 2 - 1).mean((2, 3))
        return F.normalize(self.id_fc(feat), dim=1)

    def forward(self, crop: torch.Tensor, embedding: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.stem(crop * 2 - 1)
        skips = [x]
        for down in self.downs:
            x = down(x)
            skips.append(x)
        e = embedding[:, :, None, None].expand(-1, -1, x.shape[2], x.shape[3])
        x = self.res(self.fuse(torch.cat([x, e], 1)))
        for up, skip in zip(self.ups, reversed(skips[:-1]), strict=True):
            x = up(x, skip)
        x = torch.cat([x, crop * 2 - 1], 1)
        refined = (crop + torch.tanh(self.to_rgb(x))).clamp(0, 1)
        mask = torch.sigmoid(self.to_mask(x))
        return refined, mask


def _to_tensor(rgb: np.ndarray, device: torch.device | str) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(rgb)).to(device).permute(2, 0, 1)[None] \
        .float().div_(255.0)


@torch.inference_mode()
def target_embedding(net: FaceRefineNet, target: FaceTarget,
                     device: torch.device | str = "cpu") -> torch.Tensor:
    """Embed the target's aligned face once. Returns (1, embed_dim) on ``device``."""
    crop, _ = align_face(target.rgb, target.landmarks, net.config["crop_size"])
    return net.embed(_to_tensor(crop, device))


@torch.inference_mode()
def refine_face_network(net: FaceRefineNet, frame: np.ndarray, frame_lm: np.ndarray,
                        embedding: torch.Tensor, *, device: torch.device | str = "cpu",
                        region: np.ndarray | None = None) -> np.ndarray:
    """Align the frame's face, refine it, warp it back and blend it through the mask.

    Args:
        frame: uint8 (H, W, 3) RGB f0; frame_lm: its (68, 2) face landmarks.
        embedding: from :func:`target_embedding`.
        region: optional (H, W) mask the blend is restricted to.
    Returns: uint8 (H, W, 3); pixels the crop's mask does not reach are bit-identical.
    """
    size = net.config["crop_size"]
    crop, mat = align_face(frame, frame_lm, size)
    refined, mask = net(_to_tensor(crop, device), embedding.to(device))
    out_crop = (refined[0].permute(1, 2, 0).clamp(0, 1) * 255 + 0.5).byte().cpu().numpy()
    alpha = mask[0, 0].float().cpu().numpy()
    if region is not None:
        import cv2

        alpha = alpha * cv2.warpAffine((region > 0).astype(np.float32), mat, (size, size),
                                       flags=cv2.INTER_LINEAR)
    return paste_crop(frame, out_crop, alpha, mat)
