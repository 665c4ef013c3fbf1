"""B2F, the Body-to-Frame generator (paper §3.2), its 27-channel body map, and the crop /
paste-back around the person.

Architecture (:class:`B2FGenerator`): ``e_z`` -> Linear -> a ``fc_channels`` x 8 x 5 tensor ->
a SPADE residual block at 8x5, then ``n_up`` times (nearest x2 upsample -> SPADE residual
block), conditioned on the 27-channel body map -> LeakyReLU -> 3x3 conv -> RGB ``z`` (tanh) and
mask ``m`` (sigmoid). With the default ``n_up = 6``: 8x5 -> 512x320, the paper's output size.
The paper says "4x4 x 1024" and "seven upsample layers", which gives 512x512, not 512x320;
we start from 8x5 (same 1024 channels) and double six times (SPEC §3 allows this choice).

The Linear projection depends only on the target (``e_z``), so :meth:`B2FGenerator.project`
runs once per target and :meth:`B2FGenerator.decode` once per frame (paper: "the latent space
and FC layer are constant for a specific user, hence run only once").

Body map (:func:`body_map`): one-hot of the 22 parsing labels + 5 face labels (eyebrows,
eyes, nose, lips, inner mouth, :data:`schema.FACE_LABEL_NAMES`) drawn from the driver's 70
face landmarks (:func:`draw_face_labels`). One-hot maps are built per frame only.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..core.inference import inference_input, prepare_for_inference
from ..core.schema import FACE_LABEL_NAMES, FACE_REGIONS, NUM_B2F_CHANNELS, NUM_LABELS
from ..io.loading import register_architecture

WORK_HEIGHT, WORK_WIDTH = 512, 320


# --------------------------------------------------------------------------------------------
# SPADE blocks
# --------------------------------------------------------------------------------------------

def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels, affine=False)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=False)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r}; use batch, instance or none")


class SPADE(nn.Module):
    """Spatially-adaptive normalisation (Park et al. 2019):

        SPADE(x, s) = norm(x) * (1 + gamma(s)) + beta(s),

    where ``norm`` is parameter-free and gamma, beta are per-pixel maps predicted from the
    segmentation ``s`` (resized to x's size, nearest) by a shared 3x3 conv + ReLU, then one
    3x3 conv each. Shape: x (B, C, H, W), s (B, label_nc, H', W') -> (B, C, H, W).
    """

    def __init__(self, channels: int, label_nc: int, hidden: int = 128,
                 norm: str = "batch") -> None:
        super().__init__()
        self.norm = _norm(norm, channels)
        self.shared = nn.Sequential(nn.Conv2d(label_nc, hidden, 3, padding=1), nn.ReLU())
        self.gamma = nn.Conv2d(hidden, channels, 3, padding=1)
        self.beta = nn.Conv2d(hidden, channels, 3, padding=1)

        self.gamma_beta: nn.Conv2d | None = None  # set by fuse_for_inference

    @torch.no_grad()
    def fuse_for_inference(self) -> None:
        """Inference copies only (:func:`.inference.prepare_for_inference`): gamma and beta
        as ONE conv with 2C outputs (one pass over ``h`` instead of two; same values)."""
        g, b = self.gamma, self.beta
        fused = nn.Conv2d(g.in_channels, 2 * g.out_channels, 3, padding=1).to(g.weight)
        fused.weight.copy_(torch.cat([g.weight, b.weight]))
        fused.bias.copy_(torch.cat([g.bias, b.bias]))
        self.gamma_beta = fused

    def forward(self, x: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
        if seg.shape[-2:] != x.shape[-2:]:
            seg = F.interpolate(seg, size=x.shape[-2:], mode="nearest")
        h = self.shared(seg)
        if self.gamma_beta is not None:
            gamma, beta = self.gamma_beta(h).chunk(2, dim=1)
            return torch.addcmul(beta, self.norm(x), gamma + 1)
        return self.norm(x) * (1 + self.gamma(h)) + self.beta(h)


class SPADEResBlock(nn.Module):
    """SPADE -> LReLU -> conv3x3 -> SPADE -> LReLU -> conv3x3, plus a (learned if the width
    changes) shortcut. Shape: (B, cin, H, W) -> (B, cout, H, W)."""

    def __init__(self, cin: int, cout: int, label_nc: int, hidden: int = 128,
                 norm: str = "batch") -> None:
        super().__init__()
        mid = min(cin, cout)
        self.norm_0 = SPADE(cin, label_nc, hidden, norm)
        self.conv_0 = nn.Conv2d(cin, mid, 3, padding=1)
        self.norm_1 = SPADE(mid, label_nc, hidden, norm)
        self.conv_1 = nn.Conv2d(mid, cout, 3, padding=1)
        self.learned_shortcut = cin != cout
        if self.learned_shortcut:
            self.norm_s = SPADE(cin, label_nc, hidden, norm)
            self.conv_s = nn.Conv2d(cin, cout, 1, bias=False)

    def forward(self, x: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
        xs = self.conv_s(self.norm_s(x, seg)) if self.learned_shortcut else x
        dx = self.conv_0(F.leaky_relu(self.norm_0(x, seg), 0.2))
        dx = self.conv_1(F.leaky_relu(self.norm_1(dx, seg), 0.2))
        return xs + dx


@register_architecture
class B2FGenerator(nn.Module):
    """Appearance code + body map -> RGB ``z`` and blending mask ``m``.

    Shape: e_z (B, embed_dim), body map (B, label_nc, H, W) with H = base_h * 2**n_up,
    W = base_w * 2**n_up -> z (B, 3, H, W) in [-1, 1], m (B, 1, H, W) in (0, 1).

    Args:
        embed_dim: length of ``e_z`` (2560 for facenet_vggface2 + vgg19).
        label_nc: body-map channels (22 labels + 5 face labels = 27).
        fc_channels: channels of the projected low-resolution tensor (paper: 1024).
        ngf: channels after the last upsampling; level i from the top has
            min(fc_channels, ngf * 2**(n_up - i)) channels.
        n_up: number of x2 upsamplings (6: 8x5 -> 512x320).
        base_h, base_w: size of the projected tensor (8x5 keeps 512x320's 1.6 aspect).
        spade_hidden: hidden channels of each SPADE's shared conv.
        norm: SPADE's parameter-free normalisation (batch, as in SPADE; instance; none).
    """

    def __init__(self, *, embed_dim: int = 2560, label_nc: int = NUM_B2F_CHANNELS,
                 fc_channels: int = 1024, ngf: int = 64, n_up: int = 6, base_h: int = 8,
                 base_w: int = 5, spade_hidden: int = 128, norm: str = "batch") -> None:
        super().__init__()
        self.config = dict(embed_dim=embed_dim, label_nc=label_nc, fc_channels=fc_channels,
                           ngf=ngf, n_up=n_up, base_h=base_h, base_w=base_w,
                           spade_hidden=spade_hidden, norm=norm)
        chans = [fc_channels] + [min(fc_channels, ngf * 2 ** (n_up - i))
                                 for i in range(1, n_up + 1)]
        self.fc = nn.Linear(embed_dim, fc_channels * base_h * base_w)
        self.head = SPADEResBlock(fc_channels, fc_channels, label_nc, spade_hidden, norm)
        self.ups = nn.ModuleList(
            SPADEResBlock(chans[i], chans[i + 1], label_nc, spade_hidden, norm)
            for i in range(n_up))
        self.to_out = nn.Conv2d(chans[-1], 4, 3, padding=1)

    @property
    def out_size(self) -> tuple[int, int]:
        """(H, W) of the output."""
        c = self.config
        return c["base_h"] * 2 ** c["n_up"], c["base_w"] * 2 ** c["n_up"]

    def project(self, e_z: torch.Tensor) -> torch.Tensor:
        """e_z (B, embed_dim) -> the low-resolution tensor (B, fc_channels, base_h, base_w)."""
        c = self.config
        if e_z.ndim != 2 or e_z.shape[1] != c["embed_dim"]:
            raise ValueError(f"e_z must be (B, {c['embed_dim']}), got {tuple(e_z.shape)}")
        return self.fc(e_z).view(-1, c["fc_channels"], c["base_h"], c["base_w"])

    def decode(self, x0: torch.Tensor, bodymap: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """The per-frame part: x0 from :meth:`project` (batch 1 broadcasts), body map
        (B, label_nc, H, W) -> (z, m)."""
        if bodymap.shape[1] != self.config["label_nc"] or tuple(bodymap.shape[-2:]) != \
                self.out_size:
            raise ValueError(f"body map must be (B, {self.config['label_nc']}, "
                             f"{self.out_size[0]}, {self.out_size[1]}), got "
                             f"{tuple(bodymap.shape)}")
        if x0.shape[0] == 1 and bodymap.shape[0] > 1:
            x0 = x0.expand(bodymap.shape[0], -1, -1, -1)
        x = self.head(x0, bodymap)
        for block in self.ups:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
            x = block(x, bodymap)
        out = self.to_out(F.leaky_relu(x, 0.2))
        return torch.tanh(out[:, :3]), torch.sigmoid(out[:, 3:4])

    def forward(self, e_z: torch.Tensor, bodymap: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.decode(self.project(e_z), bodymap)


# --------------------------------------------------------------------------------------------
# The 27-channel body map
# --------------------------------------------------------------------------------------------

def _pts(face: np.ndarray, idx: Sequence[int], thr: float) -> np.ndarray | None:
    p = face[list(idx)]
    if (p[:, 2] <= thr).any():
        return None
    return np.round(p[:, :2]).astype(np.int32)


def draw_face_labels(face: np.ndarray, height: int, width: int, *,
                     threshold: float = 0.05) -> np.ndarray:
    """The five face label masks from 70 face landmarks (pixels of the target canvas).

    Channels follow :data:`schema.FACE_LABEL_NAMES`: eyebrows (thick polylines), eyes
    (filled), nose (hull of bridge + lower nose), lips (outer lip polygon minus the inner one),
    inner mouth (inner lip polygon). A region whose landmarks are missing stays empty.

    Returns:
        uint8 (5, height, width) in {0, 1}.
    """
    out = np.zeros((len(FACE_LABEL_NAMES), height, width), dtype=np.uint8)
    face = np.asarray(face, dtype=np.float32)
    if face.shape != (70, 3) or not (face[:, 2] > threshold).any():
        return out
    ok = face[:68, 2] > threshold
    if ok.sum() >= 2:
        span = np.ptp(face[:68][ok, :2], axis=0).max()
    else:
        span = 0.0
    thick = max(1, int(round(span / 30.0)))
    canvases = [np.zeros((height, width), np.uint8) for _ in range(5)]
    for brow in ("right_eyebrow", "left_eyebrow"):
        p = _pts(face, FACE_REGIONS[brow], threshold)
        if p is not None:
            cv2.polylines(canvases[0], [p], False, 1, thick)
    for eye in ("right_eye", "left_eye"):
        p = _pts(face, FACE_REGIONS[eye], threshold)
        if p is not None:
            cv2.fillPoly(canvases[1], [p], 1)
    p = _pts(face, FACE_REGIONS["nose_bridge"] + FACE_REGIONS["nose_lower"], threshold)
    if p is not None:
        cv2.fillConvexPoly(canvases[2], cv2.convexHull(p), 1)
    outer = _pts(face, FACE_REGIONS["outer_lips"], threshold)
    inner = _pts(face, FACE_REGIONS["inner_lips"], threshold)
    if outer is not None:
        cv2.fillPoly(canvases[3], [outer], 1)
    if inner is not None:
        cv2.fillPoly(canvases[4], [inner], 1)
        canvases[3][canvases[4] > 0] = 0
    for k in range(5):
        out[k] = canvases[k]
    return out


def body_map(labels: torch.Tensor, face_labels: torch.Tensor | None = None) -> torch.Tensor:
    """One-hot body map for B2F.

    Args:
        labels: (B, H, W) integer parsing (22-label schema).
        face_labels: (B, 5, H, W) {0,1} from :func:`draw_face_labels`, or None (zeros).
    Returns:
        float (B, 27, H, W).
    """
    lab = labels.long()
    onehot = F.one_hot(lab.clamp(0, NUM_LABELS - 1), NUM_LABELS).permute(0, 3, 1, 2).float()
    if face_labels is None:
        face = torch.zeros(lab.shape[0], len(FACE_LABEL_NAMES), *lab.shape[1:],
                           device=lab.device)
    else:
        face = face_labels.to(lab.device).float()
    return torch.cat([onehot, face], dim=1)


# --------------------------------------------------------------------------------------------
# Crop around the person, run at working resolution, paste back (models/geometry/crop.py)
# --------------------------------------------------------------------------------------------

@torch.no_grad()
def run_b2f_frame(net: B2FGenerator, x0: torch.Tensor, labels: np.ndarray,
                  face: np.ndarray | None, *, device: torch.device | str = "cpu",
                  margin: float = 0.08, optimize: bool = True
                  ) -> tuple[torch.Tensor, torch.Tensor] | None:
    """One frame: crop a working-aspect box around the person (:func:`crop.person_box` on the
    parsing), run at the network's size, paste z and m back (:func:`crop.paste_back`).

    The decoder runs as the cached :func:`.inference.prepare_for_inference` copy of ``net``
    for ``device`` (channels-last, SPADE gamma/beta fused; fp16 on CUDA); ``optimize=False``
    runs ``net`` itself.

    Args:
        x0: the target's projected tensor (:meth:`B2FGenerator.project`), (1, C, h, w).
        labels: uint8 (H, W) driver-pose parsing of the frame.
        face: (70, 3) driver face landmarks in frame pixels, or None.
    Returns:
        z (H, W, 3) in 0..1 and m (H, W) in 0..1 at the frame's size (0 outside the box), or
        None when the frame has no person (the caller outputs an empty mask).
    """
    return run_b2f_frames(net, x0, [(labels, face)], device=device, margin=margin,
                          optimize=optimize)[0]


@torch.no_grad()
def run_b2f_frames(net: B2FGenerator, x0: torch.Tensor,
                   frames: Sequence[tuple[np.ndarray, np.ndarray | None]], *,
                   device: torch.device | str = "cpu", margin: float = 0.08,
                   optimize: bool = True) -> list[tuple[torch.Tensor, torch.Tensor] | None]:
    """:func:`run_b2f_frame` for a small batch of frames in ONE decoder call (the CUDA path:
    :func:`.inference.batch_size_for` picks the batch per device).

    Args:
        x0: (1, C, h, w) broadcast to every frame, or (len(frames), C, h, w) one per frame.
        frames: (labels uint8 (H, W), face (70, 3) or None) per frame; sizes may differ.
    Returns:
        per frame (z (H, W, 3), m (H, W)) or None for a frame without a person.
    """
    from ..geometry.crop import paste_back, points_to_crop
    from .p2b import crop_labels, labels_box

    oh, ow = net.out_size
    keep, boxes, maps = [], [], []
    for k, (labels, face) in enumerate(frames):
        if not labels.any():
            continue
        box = labels_box(labels, (oh, ow), margin)
        lab = crop_labels(labels, box, (oh, ow))
        face_lab = None
        if face is not None:
            face = np.asarray(face, np.float32)
            f = points_to_crop(face, box, (oh, ow)).astype(np.float32)
            f[face[:, 2] <= 0] = 0.0
            face_lab = torch.from_numpy(draw_face_labels(f, oh, ow))[None]
        maps.append(body_map(torch.from_numpy(lab)[None].to(device), face_lab))
        keep.append(k)
        boxes.append(box)
    out: list[tuple[torch.Tensor, torch.Tensor] | None] = [None] * len(frames)
    if not keep:
        return out
    bm = torch.cat(maps)
    if x0.shape[0] > 1:
        x0 = x0[keep]
    if optimize:
        dec = prepare_for_inference(net, device)
        z, m = dec.decode(inference_input(x0, dec), inference_input(bm, dec))
    else:
        z, m = net.decode(x0, bm)
    z_np = ((z + 1) / 2).clamp(0, 1).permute(0, 2, 3, 1).float().cpu().numpy()
    m_np = m[:, 0].clamp(0, 1).float().cpu().numpy()
    for j, (k, box) in enumerate(zip(keep, boxes)):
        h, w = frames[k][0].shape
        z_full = paste_back(np.zeros((h, w, 3), np.float32), z_np[j], box)
        m_full = paste_back(np.zeros((h, w), np.float32), m_np[j], box)
        out[k] = (torch.from_numpy(z_full), torch.from_numpy(m_full))
    return out
