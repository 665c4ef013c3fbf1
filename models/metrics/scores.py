"""The paper's evaluation metrics (Gafni et al. 2021, Tab. 1), pure torch + numpy.

- SSBS / SSIS: binary IoU (person vs background) and mean per-part IoU of two parsing label maps
  in the 22-label schema; DPBS / DPIS: the same on DensePose part indices 0..24 (0 = background).
- SSIM: Wang et al. 2004 with an 11x11 Gaussian window (sigma 1.5), K1 = 0.01, K2 = 0.03,
  averaged over the valid region and the colour channels (as ``skimage.metrics.
  structural_similarity(..., gaussian_weights=True, use_sample_covariance=False)``).
- masked PSNR: PSNR over the pixels of a mask only.
- LPIPS v0.1 (Zhang et al. 2018): VGG16, SqueezeNet 1.1 or AlexNet features, unit-normalised per
  channel, squared differences weighted by the learned linear heads, averaged spatially and
  summed over layers.
- FID (Heusel et al. 2017): pool3 features of the pytorch-fid "FID Inception" (the TF 2015
  Inception graph ported to PyTorch) and the Frechet distance of the two Gaussians.

Images are float ``(B, 3, H, W)`` in 0..1 unless said otherwise. Every function takes a
``device``; nothing downloads at import time or in a constructor.
"""

from __future__ import annotations

import logging
import math
import os
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..core.schema import NUM_DENSEPOSE_PARTS, NUM_LABELS
from ..io.loading import check_state_dict, load_state_dict_file
from ..io.weights import WeightError, WeightSpec, find_local, resolve
from ..networks.vgg import vgg_features

logger = logging.getLogger(__name__)

DENSEPOSE_INDICES = NUM_DENSEPOSE_PARTS + 1  # I = 0 (background) .. 24
PSNR_CAP_DB = 100.0

# --------------------------------------------------------------------------------------------
# Segmentation similarity: SSBS / SSIS / DPBS / DPIS
# --------------------------------------------------------------------------------------------


def _as_label_batch(x: torch.Tensor | np.ndarray, name: str) -> torch.Tensor:
    t = torch.as_tensor(x)
    if t.ndim == 2:
        t = t.unsqueeze(0)
    if t.ndim != 3:
        raise ValueError(f"{name} must be label maps (B, H, W) or (H, W), got {tuple(t.shape)}")
    if t.is_floating_point():
        raise ValueError(f"{name} must hold integer labels, got {t.dtype}")
    return t


def confusion_matrices(pred: torch.Tensor, gt: torch.Tensor, num_labels: int,
                       chunk: int = 16) -> torch.Tensor:
    """Per-frame confusion matrices ``(B, L, L)`` int64 (row = predicted, column = true label).

    Computed ``chunk`` frames at a time with one ``bincount`` each, so a 300-frame video never
    needs a per-pixel int64 copy of the whole batch.
    """
    pred, gt = _as_label_batch(pred, "pred"), _as_label_batch(gt, "gt")
    if pred.shape != gt.shape:
        raise ValueError(f"label maps differ in shape: {tuple(pred.shape)} vs {tuple(gt.shape)}")
    for t, name in ((pred, "pred"), (gt, "gt")):
        if t.numel() and (int(t.min()) < 0 or int(t.max()) >= num_labels):
            raise ValueError(f"{name} has labels outside 0..{num_labels - 1} "
                             f"(min {int(t.min())}, max {int(t.max())})")
    out = []
    L = num_labels
    for s in range(0, pred.shape[0], chunk):
        p = pred[s:s + chunk].long()
        g = gt[s:s + chunk].to(p.device).long()
        b = p.shape[0]
        offs = torch.arange(b, device=p.device).view(b, 1, 1) * (L * L)
        idx = (offs + p * L + g).reshape(-1)
        out.append(torch.bincount(idx, minlength=b * L * L).view(b, L, L).cpu())
    return torch.cat(out) if out else torch.zeros(0, L, L, dtype=torch.long)


def both_empty(conf: torch.Tensor, background: int = 0) -> np.ndarray:
    """Per frame of confusion matrices ``(B, L, L)``: True where neither map has a single
    non-background pixel (no person predicted, none in the ground truth)."""
    fg = [i for i in range(conf.shape[1]) if i != background]
    return ((conf[:, fg, :].sum(dim=(1, 2)) + conf[:, :, fg].sum(dim=(1, 2))) == 0).numpy()


def iou_scores(conf: torch.Tensor, background: int = 0, *,
               empty: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """From confusion matrices ``(B, L, L)``: binary IoU and mean per-part IoU per frame.

    Binary IoU compares ``label != background`` in both maps. The per-part IoU is averaged over
    the non-background labels present in either map. A frame where both maps are empty (no
    foreground in either) has no IoU: it scores ``empty``. The default 1.0 is the metric
    nodes' long-standing convention; :func:`parsing_similarity` and
    :func:`densepose_similarity` give NaN so such frames can be left out of a mean and
    counted (:func:`both_empty`) instead of rewarding a method that shows nobody where
    nobody is.

    Returns:
        (binary (B,), part (B,)) float64 arrays in 0..1 (``empty`` on both-empty frames).
    """
    conf = conf.double()
    B, L, _ = conf.shape
    fg = [i for i in range(L) if i != background]
    # binary: foreground = any non-background label
    inter_b = conf[:, fg][:, :, fg].sum(dim=(1, 2))
    pred_fg = conf[:, fg, :].sum(dim=(1, 2))
    gt_fg = conf[:, :, fg].sum(dim=(1, 2))
    union_b = pred_fg + gt_fg - inter_b
    fill = torch.full_like(union_b, empty)
    binary = torch.where(union_b > 0, inter_b / union_b.clamp(min=1), fill)
    diag = torch.diagonal(conf, dim1=1, dim2=2)
    union = conf.sum(dim=2) + conf.sum(dim=1) - diag  # (B, L)
    per = diag / union.clamp(min=1)
    present = union[:, fg] > 0
    n = present.sum(dim=1)
    part_sum = (per[:, fg] * present).sum(dim=1)
    part = torch.where(n > 0, part_sum / n.clamp(min=1), fill)
    return binary.numpy(), part.numpy()


def parsing_similarity(pred: torch.Tensor | np.ndarray, gt: torch.Tensor | np.ndarray,
                       num_labels: int = NUM_LABELS, *,
                       empty: float = math.nan) -> tuple[np.ndarray, np.ndarray]:
    """SSBS and SSIS per frame of two parsing label maps ``(B, H, W)`` (22-label schema).

    Returns:
        (ssbs (B,), ssis (B,)) in 0..1, 1 = identical; ``empty`` (NaN) where both maps are
        all background (no score: leave the frame out of means and count it).
    """
    return iou_scores(confusion_matrices(pred, gt, num_labels), empty=empty)


def densepose_similarity(pred_index: torch.Tensor | np.ndarray,
                         gt_index: torch.Tensor | np.ndarray, *,
                         empty: float = math.nan) -> tuple[np.ndarray, np.ndarray]:
    """DPBS and DPIS per frame of two DensePose part-index maps ``(B, H, W)`` in 0..24;
    ``empty`` (NaN) where both maps are all background."""
    return iou_scores(confusion_matrices(pred_index, gt_index, DENSEPOSE_INDICES), empty=empty)


# --------------------------------------------------------------------------------------------
# SSIM and masked PSNR
# --------------------------------------------------------------------------------------------


def _as_image_batch(x: torch.Tensor | np.ndarray, name: str) -> torch.Tensor:
    t = torch.as_tensor(x)
    if t.ndim == 3:
        t = t.unsqueeze(0)
    if t.ndim != 4:
        raise ValueError(f"{name} must be (B, C, H, W), got {tuple(t.shape)}")
    return t.float() if t.is_floating_point() else t.float().div(255.0)


def gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Normalised 1-D Gaussian of odd ``size`` (the SSIM window's separable factor)."""
    r = size // 2
    x = torch.arange(-r, r + 1, dtype=torch.float64)
    g = torch.exp(-0.5 * (x / sigma) ** 2)
    return g / g.sum()


def _numpy_filter(device: torch.device) -> bool:
    return device.type == "cpu"


def ssim_map(a: torch.Tensor, b: torch.Tensor, *, data_range: float = 1.0, win_size: int = 11,
             sigma: float = 1.5, k1: float = 0.01, k2: float = 0.03) -> torch.Tensor:
    """The SSIM map over the valid region: ``(B, C, H - win + 1, W - win + 1)``.

    ``a``/``b``: float ``(B, C, H, W)`` on the same device; computed in float64 (the local
    variances are small differences of large numbers).
    """
    if a.shape != b.shape:
        raise ValueError(f"SSIM needs images of one shape, got {tuple(a.shape)} and "
                         f"{tuple(b.shape)}")
    H, W = a.shape[-2:]
    if H < win_size or W < win_size:
        raise ValueError(f"SSIM needs images of at least {win_size}x{win_size} pixels, got "
                         f"{H}x{W}")
    Ho, Wo = H - win_size + 1, W - win_size + 1
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    if _numpy_filter(a.device):
        # numpy + scipy's separable correlation: the fastest float64 path on CPU (torch has
        # no fast float64 convolution, and its threads stall on a busy machine)
        from scipy import ndimage

        r = win_size // 2
        gw = gaussian_window(win_size, sigma).numpy()
        an, bn = a.detach().double().numpy(), b.detach().double().numpy()

        def filt(v: np.ndarray) -> np.ndarray:
            v = ndimage.correlate1d(v, gw, axis=-1, mode="constant")[..., r:r + Wo]
            return ndimage.correlate1d(v, gw, axis=-2, mode="constant")[..., r:r + Ho, :]

        mu_a, mu_b = filt(an), filt(bn)
        saa = filt(an * an) - mu_a * mu_a
        sbb = filt(bn * bn) - mu_b * mu_b
        sab = filt(an * bn) - mu_a * mu_b
        num = (2 * mu_a * mu_b + c1) * (2 * sab + c2)
        den = (mu_a * mu_a + mu_b * mu_b + c1) * (saa + sbb + c2)
        return torch.from_numpy(num / den)
    # elsewhere: the separable filter as a sum of shifted slices (no float64 conv kernels)
    g = gaussian_window(win_size, sigma).tolist()
    a, b = a.double(), b.double()
    x = torch.stack([a, b, a * a, b * b, a * b])  # the five local moments, filtered at once
    y = g[0] * x[..., :, 0:Wo]
    for k in range(1, win_size):
        y.add_(x[..., :, k:k + Wo], alpha=g[k])
    z = g[0] * y[..., 0:Ho, :]
    for k in range(1, win_size):
        z.add_(y[..., k:k + Ho, :], alpha=g[k])
    mu_a, mu_b = z[0], z[1]
    saa = z[2] - mu_a ** 2
    sbb = z[3] - mu_b ** 2
    sab = z[4] - mu_a * mu_b
    num = (2 * mu_a * mu_b + c1) * (2 * sab + c2)
    den = (mu_a ** 2 + mu_b ** 2 + c1) * (saa + sbb + c2)
    return num / den


def ssim(pred: torch.Tensor | np.ndarray, gt: torch.Tensor | np.ndarray, *,
         mask: torch.Tensor | None = None, data_range: float = 1.0,
         device: torch.device | str | None = None, chunk: int = 8) -> np.ndarray:
    """SSIM per frame (Wang et al. 2004), 1 = identical.

    Args:
        pred, gt: ``(B, C, H, W)`` float in 0..``data_range`` (uint8 is scaled to 0..1).
        mask: optional ``(B or 1, H, W)``: average the SSIM map only where ``mask > 0.5``
            (cropped to the valid region).
    Returns:
        (B,) float64.
    """
    pred, gt = _as_image_batch(pred, "pred"), _as_image_batch(gt, "gt")
    if pred.shape != gt.shape:
        raise ValueError(f"SSIM needs images of one shape, got {tuple(pred.shape)} and "
                         f"{tuple(gt.shape)}")
    dev = torch.device(device) if device is not None else pred.device
    out = []
    r = 11 // 2
    for s in range(0, pred.shape[0], chunk):
        m = ssim_map(pred[s:s + chunk].to(dev), gt[s:s + chunk].to(dev),
                     data_range=data_range)
        if mask is None:
            out.append(m.mean(dim=(1, 2, 3)).cpu())
            continue
        mk = mask if mask.shape[0] == 1 else mask[s:s + chunk]
        mk = (mk.to(dev) > 0.5)[:, r:mk.shape[-2] - r, r:mk.shape[-1] - r].unsqueeze(1)
        mk = mk.expand_as(m)
        n = mk.sum(dim=(1, 2, 3))
        if bool((n == 0).any()):
            raise ValueError("the mask leaves no pixel inside the SSIM valid region in a frame")
        out.append(((m * mk).sum(dim=(1, 2, 3)) / n).cpu())
    return torch.cat(out).numpy()


def masked_psnr(pred: torch.Tensor | np.ndarray, gt: torch.Tensor | np.ndarray, *,
                mask: torch.Tensor | None = None, data_range: float = 1.0,
                max_db: float | None = None) -> np.ndarray:
    """PSNR per frame over the pixels where ``mask`` is on (soft masks weight pixels).

    Args:
        pred, gt: ``(B, C, H, W)`` float in 0..``data_range``.
        mask: ``(B or 1, H, W)`` in 0..1; None = the whole frame.
        max_db: cap for identical images (None: ``inf``).
    Returns:
        (B,) float64 dB.
    Raises:
        ValueError: shapes differ or a frame's mask is empty.
    """
    pred, gt = _as_image_batch(pred, "pred"), _as_image_batch(gt, "gt")
    if pred.shape != gt.shape:
        raise ValueError(f"PSNR needs images of one shape, got {tuple(pred.shape)} and "
                         f"{tuple(gt.shape)}")
    err = (pred.double() - gt.to(pred.device).double()) ** 2  # (B, C, H, W)
    if mask is None:
        w = torch.ones(err.shape[0], *err.shape[2:], dtype=torch.float64, device=err.device)
    else:
        w = torch.as_tensor(mask).to(err.device).double()
        if w.ndim == 2:
            w = w.unsqueeze(0)
        if w.shape[-2:] != err.shape[-2:]:
            raise ValueError(f"mask {tuple(w.shape)} does not match images {tuple(err.shape)}")
        w = w.expand(err.shape[0], -1, -1)
    wsum = w.sum(dim=(1, 2)) * err.shape[1]
    if bool((wsum <= 0).any()):
        empty = [int(i) for i in torch.nonzero(wsum <= 0).flatten()]
        raise ValueError(f"the mask is empty in frame(s) {empty}: PSNR inside it is undefined")
    mse = (err * w.unsqueeze(1)).sum(dim=(1, 2, 3)) / wsum
    with np.errstate(divide="ignore"):
        psnr = 10.0 * np.log10(data_range ** 2 / mse.cpu().numpy())
    if max_db is not None:
        psnr = np.minimum(psnr, max_db)
    return psnr


# --------------------------------------------------------------------------------------------
# LPIPS
# --------------------------------------------------------------------------------------------

_VGG16_CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
              512, 512, 512)


def _vgg16_features() -> nn.Sequential:
    """torchvision/timm ``vgg16.features`` up to relu5_3 (indices 0..29, same key names)."""
    return vgg_features(_VGG16_CFG)


class Fire(nn.Module):
    """SqueezeNet's Fire module (torchvision attribute names)."""

    def __init__(self, inplanes: int, squeeze: int, e1: int, e3: int) -> None:
        super().__init__()
        self.squeeze = nn.Conv2d(inplanes, squeeze, 1)
        self.squeeze_activation = nn.ReLU(inplace=True)
        self.expand1x1 = nn.Conv2d(squeeze, e1, 1)
        self.expand1x1_activation = nn.ReLU(inplace=True)
        self.expand3x3 = nn.Conv2d(squeeze, e3, 3, padding=1)
        self.expand3x3_activation = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.squeeze_activation(self.squeeze(x))
        return torch.cat([self.expand1x1_activation(self.expand1x1(x)),
                          self.expand3x3_activation(self.expand3x3(x))], 1)


def _squeezenet1_1_features() -> nn.Sequential:
    """torchvision ``squeezenet1_1().features`` (indices 0..12)."""
    return nn.Sequential(
        nn.Conv2d(3, 64, 3, stride=2), nn.ReLU(inplace=True),
        nn.MaxPool2d(3, 2, ceil_mode=True), Fire(64, 16, 64, 64), Fire(128, 16, 64, 64),
        nn.MaxPool2d(3, 2, ceil_mode=True), Fire(128, 32, 128, 128), Fire(256, 32, 128, 128),
        nn.MaxPool2d(3, 2, ceil_mode=True), Fire(256, 48, 192, 192), Fire(384, 48, 192, 192),
        Fire(384, 64, 256, 256), Fire(512, 64, 256, 256))


def _alexnet_features() -> nn.Sequential:
    """torchvision ``alexnet().features`` up to the 5th ReLU (indices 0..11)."""
    return nn.Sequential(
        nn.Conv2d(3, 64, 11, stride=4, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
        nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
        nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(inplace=True))


# backbone name -> (features factory, indices after which a feature map is tapped, channels,
#                   head registry name, backbone registry name or None, local file names)
LPIPS_BACKBONES: dict[str, dict] = {
    "vgg16": dict(make=_vgg16_features, taps=(3, 8, 15, 22, 29),
                  channels=(64, 128, 256, 512, 512), head="lpips_vgg", weights="vgg16",
                  local_names=()),
    "squeezenet1_1": dict(make=_squeezenet1_1_features, taps=(1, 4, 7, 9, 10, 11, 12),
                          channels=(64, 128, 256, 384, 384, 512, 512), head="lpips_squeeze",
                          weights=None, local_names=("squeezenet1_1.safetensors",
                                                     "squeezenet1_1-b8a52dc0.pth",
                                                     "squeezenet1_1.pth")),
    "alexnet": dict(make=_alexnet_features, taps=(1, 4, 7, 9, 11),
                    channels=(64, 192, 384, 256, 256), head="lpips_alex", weights=None,
                    local_names=("alexnet.safetensors", "alexnet-owt-7be5be79.pth",
                                 "alexnet.pth")),
}
LPIPS_ALIASES = {"vgg": "vgg16", "squeeze": "squeezenet1_1", "alex": "alexnet"}


class _LinHead(nn.Module):
    """LPIPS ``NetLinLayer``: dropout + 1x1 conv to one channel, no bias (key ``model.1``)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.model = nn.Sequential(nn.Dropout(), nn.Conv2d(channels, 1, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class LPIPS(nn.Module):
    """LPIPS v0.1 distance. State-dict keys: ``features.*`` (the backbone, torchvision/timm
    names) and ``lin{k}.model.1.weight`` (the linear heads, as in the official files)."""

    def __init__(self, *, backbone: str = "vgg16") -> None:
        super().__init__()
        backbone = LPIPS_ALIASES.get(backbone, backbone)
        if backbone not in LPIPS_BACKBONES:
            raise ValueError(f"unknown LPIPS backbone {backbone!r}; choose one of "
                             f"{', '.join(LPIPS_BACKBONES)}")
        self.config = {"backbone": backbone}
        info = LPIPS_BACKBONES[backbone]
        self.features = info["make"]()
        self.taps = tuple(info["taps"])
        for k, c in enumerate(info["channels"]):
            self.add_module(f"lin{k}", _LinHead(c))
        self.register_buffer("shift", torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1),
                             persistent=False)
        self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1),
                             persistent=False)

    def _feats(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = ((x * 2 - 1) - self.shift) / self.scale
        out = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self.taps:
                out.append(x)
            if i >= self.taps[-1]:
                break
        return out

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """a, b: (B, 3, H, W) in 0..1 -> distances (B,)."""
        fa, fb = self._feats(a), self._feats(b)
        total = a.new_zeros(a.shape[0])
        for k, (x, y) in enumerate(zip(fa, fb)):
            x = x / (x.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10)
            y = y / (y.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10)
            d = getattr(self, f"lin{k}")((x - y) ** 2)
            total = total + d.mean(dim=(1, 2, 3))
        return total


def _resolve_file(source: str | os.PathLike[str] | WeightSpec) -> Path:
    """A registry name, a WeightSpec (e.g. from ``user_spec``) or a local path -> a path."""
    if isinstance(source, WeightSpec):
        return resolve(source)
    s = str(source)
    if os.path.sep in s or os.path.isfile(s):
        p = Path(s).expanduser()
        if not p.is_file():
            raise WeightError(f"weight file {p} does not exist")
        return p
    try:
        return resolve(s)
    except WeightError as exc:
        if "unknown weight" not in str(exc):
            raise
    local = find_local(WeightSpec("local/file", s, "main", None, "user supplied"))
    if local is None:
        raise WeightError(f"{s!r} is neither a registered weight name nor a file in the "
                          f"models folders; place the file there or give its full path")
    return local


def _subset(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    for strip in ("", "module.", "net."):
        sub = {k[len(strip):]: v for k, v in state.items() if k.startswith(strip + prefix)}
        if sub:
            return sub
    return {}


def load_lpips(backbone: str = "vgg16", *,
               backbone_weights: str | os.PathLike[str] | WeightSpec | None = None,
               head_weights: str | os.PathLike[str] | WeightSpec | None = None,
               device: torch.device | str = "cpu") -> LPIPS:
    """Build LPIPS and load its backbone and linear heads (strict on the layers it uses).

    Args:
        backbone: ``vgg16`` (alias ``vgg``), ``squeezenet1_1`` (``squeeze``) or ``alexnet``.
        backbone_weights: registry name, ``WeightSpec`` (``weights.user_spec(...)``) or a
            path. Default: the registry's ``vgg16`` (timm/vgg16.tv_in1k) for VGG. The registry
            has NO SqueezeNet 1.1 / AlexNet ImageNet weights: give a torchvision state dict
            (``squeezenet1_1-b8a52dc0.pth`` / ``alexnet-owt-7be5be79.pth``, or a safetensors)
            by path or place it in a models folder under one of those names.
        head_weights: the v0.1 linear heads; default the registry's ``lpips_<net>``.
    Returns:
        the network in eval mode on ``device``; only ``features.*`` keys of the backbone file
        are read (the classifier is ignored).
    """
    model = LPIPS(backbone=backbone)
    name = model.config["backbone"]
    info = LPIPS_BACKBONES[name]
    if backbone_weights is None:
        if info["weights"] is not None:
            backbone_weights = info["weights"]
        else:
            spec = None  # a hand-placed file: used by its path (no repo to verify against)
            for local_name in info["local_names"]:
                spec = find_local(WeightSpec("local/file", local_name, "main", None,
                                             "user supplied"))
                if spec is not None:
                    break
            if spec is None:
                raise WeightError(
                    f"LPIPS with the {name} backbone needs ImageNet {name} weights, which the "
                    f"registry does not pin (no verified Hub file is known). Give a torchvision "
                    f"state dict as a path, or as weights.user_spec(repo, file, revision, "
                    f"sha256), or place it in a models folder as {info['local_names'][1]!r}; "
                    f"or use the vgg16 backbone, which downloads through the registry.")
            backbone_weights = spec
    bpath = _resolve_file(backbone_weights)
    state = load_state_dict_file(bpath)
    feats = {k[len("features."):]: v for k, v in _subset(state, "features.").items()}
    check_state_dict(model.features, feats, str(bpath))
    model.features.load_state_dict(feats, strict=True)
    hpath = _resolve_file(head_weights if head_weights is not None else info["head"])
    heads = load_state_dict_file(hpath)
    heads = {k: v for k, v in heads.items() if k.startswith("lin")}
    lins = nn.ModuleDict({f"lin{k}": getattr(model, f"lin{k}")
                          for k in range(len(info["channels"]))})
    check_state_dict(lins, heads, str(hpath))
    lins.load_state_dict(heads, strict=True)
    for p in model.parameters():
        p.requires_grad_(False)
    return model.to(device).eval()


@torch.inference_mode()
def lpips_distance(model: LPIPS, pred: torch.Tensor | np.ndarray, gt: torch.Tensor | np.ndarray,
                   *, batch_size: int = 4) -> np.ndarray:
    """LPIPS per frame, 0 = identical. pred/gt: ``(B, 3, H, W)`` in 0..1 (any device)."""
    pred, gt = _as_image_batch(pred, "pred"), _as_image_batch(gt, "gt")
    if pred.shape != gt.shape:
        raise ValueError(f"LPIPS needs images of one shape, got {tuple(pred.shape)} and "
                         f"{tuple(gt.shape)}")
    if pred.shape[-1] < 32 or pred.shape[-2] < 32:
        raise ValueError(f"LPIPS needs images of at least 32x32 pixels, got "
                         f"{pred.shape[-2]}x{pred.shape[-1]}")
    dev = next(model.parameters()).device
    out = []
    for s in range(0, pred.shape[0], batch_size):
        a = pred[s:s + batch_size].to(dev).contiguous(memory_format=torch.channels_last)
        b = gt[s:s + batch_size].to(dev).contiguous(memory_format=torch.channels_last)
        out.append(model(a, b).double().cpu())
    return torch.cat(out).numpy()


# --------------------------------------------------------------------------------------------
# FID: the pytorch-fid Inception (TF 2015 graph) and the Frechet distance
# --------------------------------------------------------------------------------------------


class BasicConv2d(nn.Module):
    def __init__(self, cin: int, cout: int, **kw: object) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, bias=False, **kw)  # type: ignore[arg-type]
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)), inplace=True)


class FIDInceptionA(nn.Module):
    """InceptionA with the TF graph's average pooling (padding not counted)."""

    def __init__(self, cin: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 64, kernel_size=1)
        self.branch5x5_1 = BasicConv2d(cin, 48, kernel_size=1)
        self.branch5x5_2 = BasicConv2d(48, 64, kernel_size=5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, padding=1)
        self.branch_pool = BasicConv2d(cin, pool_features, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = self.branch_pool(F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False))
        return torch.cat([b1, b5, b3, bp], 1)


class InceptionB(nn.Module):
    def __init__(self, cin: int) -> None:
        super().__init__()
        self.branch3x3 = BasicConv2d(cin, 384, kernel_size=3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3(x)
        bd = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([b3, bd, F.max_pool2d(x, 3, stride=2)], 1)


class FIDInceptionC(nn.Module):
    """InceptionC with the TF graph's average pooling (padding not counted)."""

    def __init__(self, cin: int, channels_7x7: int) -> None:
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = BasicConv2d(cin, 192, kernel_size=1)
        self.branch7x7_1 = BasicConv2d(cin, c7, kernel_size=1)
        self.branch7x7_2 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(cin, c7, kernel_size=1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(cin, 192, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        bd = x
        for i in range(1, 6):
            bd = getattr(self, f"branch7x7dbl_{i}")(bd)
        bp = self.branch_pool(F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False))
        return torch.cat([b1, b7, bd, bp], 1)


class InceptionD(nn.Module):
    def __init__(self, cin: int) -> None:
        super().__init__()
        self.branch3x3_1 = BasicConv2d(cin, 192, kernel_size=1)
        self.branch3x3_2 = BasicConv2d(192, 320, kernel_size=3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(cin, 192, kernel_size=1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, kernel_size=3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = x
        for i in range(1, 5):
            b7 = getattr(self, f"branch7x7x3_{i}")(b7)
        return torch.cat([b3, b7, F.max_pool2d(x, 3, stride=2)], 1)


class FIDInceptionE(nn.Module):
    """InceptionE; ``pool="avg"`` is pytorch-fid's FIDInceptionE_1 (average pooling without
    padding), ``pool="max"`` its FIDInceptionE_2 (a TF graph quirk: max pooling)."""

    def __init__(self, cin: int, pool: str = "avg") -> None:
        super().__init__()
        self.pool = pool
        self.branch1x1 = BasicConv2d(cin, 320, kernel_size=1)
        self.branch3x3_1 = BasicConv2d(cin, 384, kernel_size=1)
        self.branch3x3_2a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(cin, 448, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, kernel_size=3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(cin, 192, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        bd = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        bd = torch.cat([self.branch3x3dbl_3a(bd), self.branch3x3dbl_3b(bd)], 1)
        if self.pool == "avg":
            p = F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)
        else:
            p = F.max_pool2d(x, 3, stride=1, padding=1)
        return torch.cat([b1, b3, bd, self.branch_pool(p)], 1)


class FIDInceptionV3(nn.Module):
    """pytorch-fid's ``fid_inception_v3()`` (torchvision Inception3 layout, 1008 classes, no
    aux head) returning the 2048-d pool3 features. Key names match the
    ``pt_inception-2015-12-05`` state dict."""

    def __init__(self, *, num_classes: int = 1008) -> None:
        super().__init__()
        self.config = {"num_classes": num_classes}
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, kernel_size=3)
        self.Mixed_5b = FIDInceptionA(192, pool_features=32)
        self.Mixed_5c = FIDInceptionA(256, pool_features=64)
        self.Mixed_5d = FIDInceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = FIDInceptionC(768, channels_7x7=128)
        self.Mixed_6c = FIDInceptionC(768, channels_7x7=160)
        self.Mixed_6d = FIDInceptionC(768, channels_7x7=160)
        self.Mixed_6e = FIDInceptionC(768, channels_7x7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = FIDInceptionE(1280, pool="avg")
        self.Mixed_7c = FIDInceptionE(2048, pool="max")
        self.fc = nn.Linear(2048, num_classes)  # unused for FID; kept so the file loads strictly

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, 3, H, W) in 0..1 -> (B, 2048) pool3 features (input resized to 299x299)."""
        x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
        x = 2 * x - 1
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, 3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, 3, stride=2)
        for name in ("Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c",
                     "Mixed_6d", "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c"):
            x = getattr(self, name)(x)
        return F.adaptive_avg_pool2d(x, 1).flatten(1)


def load_fid_inception(weights: str | os.PathLike[str] | WeightSpec = "fid_inception", *,
                       device: torch.device | str = "cpu") -> FIDInceptionV3:
    """The FID Inception with the registry's ``fid_inception`` weights (or a file/spec),
    loaded ``weights_only`` and strictly (BatchNorm ``num_batches_tracked`` may be absent)."""
    path = _resolve_file(weights)
    state = load_state_dict_file(path)
    model = FIDInceptionV3()
    own = model.state_dict()
    state = {k: v for k, v in state.items() if not k.startswith("AuxLogits.")}
    for k in own:
        if k.endswith("num_batches_tracked") and k not in state:
            state[k] = own[k]
    check_state_dict(model, state, str(path))
    model.load_state_dict(state, strict=True)
    for p in model.parameters():
        p.requires_grad_(False)
    return model.to(device).eval()


@torch.inference_mode()
def inception_features(model: FIDInceptionV3, frames: Iterable[np.ndarray | torch.Tensor], *,
                       batch_size: int = 8) -> np.ndarray:
    """Stream frames (uint8 RGB ``(H, W, 3)`` arrays or float ``(3, H, W)`` tensors in 0..1)
    through the Inception in small batches -> ``(N, 2048)`` float64 features."""
    dev = next(model.parameters()).device
    feats: list[np.ndarray] = []
    batch: list[torch.Tensor] = []

    def flush() -> None:
        if batch:
            x = torch.stack(batch).to(dev)
            feats.append(model(x).double().cpu().numpy())
            batch.clear()

    for f in frames:
        if isinstance(f, np.ndarray):
            t = torch.from_numpy(np.ascontiguousarray(f)).permute(2, 0, 1).float() / 255.0
        else:
            t = f.float()
        batch.append(t)
        if len(batch) >= batch_size:
            flush()
    flush()
    return np.concatenate(feats) if feats else np.zeros((0, 2048))


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray,
                     eps: float = 1e-6) -> float:
    """``||mu1 - mu2||^2 + Tr(S1 + S2 - 2 sqrtm(S1 S2))`` with ``scipy.linalg.sqrtm``, as in
    pytorch-fid (an ``eps`` ridge is added when the product is singular)."""
    from scipy import linalg

    mu1, mu2 = np.atleast_1d(mu1), np.atleast_1d(mu2)
    sigma1, sigma2 = np.atleast_2d(sigma1), np.atleast_2d(sigma2)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise ValueError("the two feature sets have different dimensions")
    diff = mu1 - mu2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        covmean = linalg.sqrtm(sigma1.dot(sigma2))
    if not np.isfinite(covmean).all():
        logger.warning("FID: singular product of covariances; adding %g to the diagonal", eps)
        offset = np.eye(sigma1.shape[0]) * eps
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            covmean = linalg.sqrtm((sigma1 + offset).dot(sigma2 + offset))
    if np.iscomplexobj(covmean):
        imag = np.max(np.abs(covmean.imag))
        if imag > 1e-3:
            logger.warning("FID: sqrtm has an imaginary component of %.3g (few samples for "
                           "the feature dimension); using the real part", imag)
        covmean = covmean.real
    return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def fid_from_features(feats1: np.ndarray, feats2: np.ndarray) -> float:
    """FID between two feature sets ``(N1, D)`` and ``(N2, D)``, each with N >= 2.

    With fewer samples than dimensions (a video's frames vs 2048 features) the covariances have
    rank < N and ``Tr sqrtm(S1 S2)`` equals the sum of square roots of the eigenvalues of the
    small ``N1 x N1`` matrix ``A B^T B A^T`` (A, B the centred, scaled features): the same value
    as :func:`frechet_distance` without a 2048x2048 ``sqrtm``. Otherwise it calls it.
    """
    f1, f2 = np.asarray(feats1, np.float64), np.asarray(feats2, np.float64)
    for f, name in ((f1, "first"), (f2, "second")):
        if f.ndim != 2 or f.shape[0] < 2:
            raise ValueError(f"FID needs at least 2 samples in each set; the {name} has "
                             f"{f.shape[0] if f.ndim == 2 else 0}")
    if f1.shape[1] != f2.shape[1]:
        raise ValueError("the two feature sets have different dimensions")
    n1, n2, d = f1.shape[0], f2.shape[0], f1.shape[1]
    mu1, mu2 = f1.mean(0), f2.mean(0)
    if max(n1, n2) > d:
        return frechet_distance(mu1, np.cov(f1, rowvar=False), mu2, np.cov(f2, rowvar=False))
    a = (f1 - mu1) / math.sqrt(n1 - 1)  # S1 = a^T a
    b = (f2 - mu2) / math.sqrt(n2 - 1)  # S2 = b^T b
    m = a @ b.T  # (n1, n2): eig(S1 S2) \ {0} = eig(m m^T)
    ev = np.linalg.eigvalsh(m @ m.T)
    tr_covmean = float(np.sqrt(np.clip(ev, 0, None)).sum())
    diff = mu1 - mu2
    return float(diff @ diff + (a * a).sum() + (b * b).sum() - 2 * tr_covmean)


def to_nchw(frames: Sequence[np.ndarray] | np.ndarray) -> torch.Tensor:
    """uint8 RGB frames ``(B, H, W, 3)`` -> float ``(B, 3, H, W)`` in 0..1."""
    arr = np.stack(frames) if isinstance(frames, (list, tuple)) else np.asarray(frames)
    if arr.ndim == 3:
        arr = arr[None]
    arr = np.ascontiguousarray(arr)
    if not arr.flags.writeable:  # decoded video frames can be read-only views
        arr = arr.copy()
    t = torch.from_numpy(arr).permute(0, 3, 1, 2).float()
    return t / 255.0 if arr.dtype == np.uint8 else t


__all__ = [
    "LPIPS", "FIDInceptionV3", "confusion_matrices", "iou_scores", "parsing_similarity",
    "densepose_similarity", "ssim", "ssim_map", "masked_psnr", "load_lpips", "lpips_distance",
    "load_fid_inception", "inception_features", "frechet_distance", "fid_from_features",
    "to_nchw", "DENSEPOSE_INDICES", "PSNR_CAP_DB",
]
