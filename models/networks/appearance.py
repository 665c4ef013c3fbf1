"""AppearanceEncoder (paper §3.2): the target's appearance code ``e_z``, computed once.

``e_z = [FaceNet(t_1), GAP(VGG19(t_2)), ..., GAP(VGG19(t_5))]``: the L2-normalised 512-d
InceptionResnetV1 (VGGFace2) embedding of the face+hair crop, then the global-average-pooled
512-channel VGG19 conv5 features of the upper clothes, lower clothes, shoes+socks and skin
crops: 512 + 4*512 = 2560 values. (The paper's VGGFace2 ResNet-50 gives 2048 + 4*512 = 4096;
SPEC §3 lets the dimensions follow the pretrained weights we pin.) A missing crop (the part is
not in the photo) contributes zeros, so the generator sees "absent" rather than the features of
a black square.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .facenet import FACE_INPUT_SIZE, InceptionResnetV1, load_facenet, standardize
from .vgg import VGG19Features, load_vgg19_features

logger = logging.getLogger(__name__)

ENCODER_ID = "facenet_vggface2+vgg19"
FACE_DIM = 512
PART_DIM = 512
EMBED_DIM = FACE_DIM + 4 * PART_DIM  # 2560


class AppearanceEncoder(nn.Module):
    """Face net on crop 1 + VGG on crops 2..5, pooled and concatenated.

    Shape: crops (B, 5, 3, S, S) in 0..1, present (B, 5) bool -> e_z (B, face_dim + 4*part_dim).
    The two networks are given (frozen, pretrained); any module with the same interface works
    (tests and training use small ones).
    """

    def __init__(self, face_net: nn.Module, part_net: nn.Module, *,
                 face_size: int = FACE_INPUT_SIZE, face_standardize: bool = True) -> None:
        super().__init__()
        self.face_net = face_net
        self.part_net = part_net
        self.face_size = face_size
        self.face_standardize = face_standardize

    @torch.no_grad()
    def forward(self, crops: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        if crops.ndim != 5 or crops.shape[1] != 5 or crops.shape[2] != 3:
            raise ValueError(f"crops must be (B, 5, 3, S, S), got {tuple(crops.shape)}")
        b = crops.shape[0]
        face = F.interpolate(crops[:, 0], size=(self.face_size, self.face_size),
                             mode="bilinear", align_corners=False, antialias=True)
        face_in = standardize(face) if self.face_standardize else face
        face_emb = self.face_net(face_in).reshape(b, -1)
        parts = crops[:, 1:].reshape(b * 4, *crops.shape[2:])
        feats = self.part_net(parts)
        part_emb = F.adaptive_avg_pool2d(feats, 1).reshape(b, 4, -1)
        mask = present.to(crops.device, torch.float32)
        face_emb = face_emb * mask[:, :1]
        part_emb = part_emb * mask[:, 1:, None]
        return torch.cat([face_emb, part_emb.reshape(b, -1)], dim=1)


def crops_to_tensor(crops: np.ndarray | torch.Tensor) -> torch.Tensor:
    """(5, S, S, 3) or (B, 5, S, S, 3) channels-last 0..1 -> (B, 5, 3, S, S) float."""
    t = torch.as_tensor(crops, dtype=torch.float32)
    if t.ndim == 4:
        t = t.unsqueeze(0)
    return t.permute(0, 1, 4, 2, 3).contiguous()


def load_pretrained_encoder(device: torch.device | str = "cpu",
                            face_weights: str = "facenet_vggface2",
                            vgg_weights: str = "vgg19") -> AppearanceEncoder:
    """The pretrained encoder from the weight registry (downloads on first use).

    Raises:
        WeightError: a file is missing offline, corrupt, or of the wrong architecture.
    """
    from ..io.weights import resolve

    face_path = resolve(face_weights)
    vgg_path = resolve(vgg_weights)
    face: InceptionResnetV1 = load_facenet(face_path, device)
    vgg: VGG19Features = load_vgg19_features(vgg_path, device)
    logger.info("appearance encoder: %s + %s", face_path.name, vgg_path.name)
    return AppearanceEncoder(face, vgg).to(device).eval()
