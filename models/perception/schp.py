"""Self-Correction Human Parsing (SCHP, Li et al. 2020) — the parser the paper uses.

A pure-torch reproduction of SCHP's ``AugmentCE2P`` ResNet-101 network (PeikeLi/
Self-Correction-Human-Parsing, ``networks/AugmentCE2P.py``): a dilated ResNet-101 backbone
(output stride 16), PSP context encoding, an edge branch over layers 1-3, a parsing decoder and a
fusion head. Parameter names and shapes match the released checkpoints exactly, so
``exp-schp-201908261155-lip.pth`` (registry name ``schp_lip``; a ``.pth`` whose ``state_dict``
keys carry DataParallel's ``module.`` prefix) loads strictly.

SCHP uses InPlaceABNSync (batch norm fused with an activation). In inference it is plain batch
norm with the running statistics followed by LeakyReLU(0.01), or no activation where SCHP
builds it with ``activation='none'`` (every norm inside the backbone). :class:`ABN` reproduces
that with the same four tensors per layer (weight, bias, running_mean, running_var; no
``num_batches_tracked``), which is why torch's ``BatchNorm2d`` cannot be used directly.

Inference follows SCHP's ``simple_extractor.py``: the image (BGR, as cv2 reads it) is placed
into a 473x473 square by an affine transform that keeps its aspect (black borders), normalised
with mean (0.406, 0.456, 0.485) / std (0.225, 0.224, 0.229) in BGR order, the fusion logits are
upsampled to 473x473 (bilinear, align_corners=True), warped back to the image with the inverse
affine (bilinear) and arg-maxed. Labels are LIP's 20 (see :data:`LIP_LABELS`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..io.loading import check_state_dict, load_torch_file, register_architecture
from ..io.weights import WeightError

logger = logging.getLogger(__name__)

LIP_LABELS: tuple[str, ...] = (
    "Background", "Hat", "Hair", "Glove", "Sunglasses", "Upper-clothes", "Dress", "Coat",
    "Socks", "Pants", "Jumpsuits", "Scarf", "Skirt", "Face", "Left-arm", "Right-arm",
    "Left-leg", "Right-leg", "Left-shoe", "Right-shoe",
)
INPUT_SIZE: tuple[int, int] = (473, 473)  # (H, W) for the LIP model
# SCHP normalises BGR images with ImageNet statistics in BGR order.
MEAN_BGR = (0.406, 0.456, 0.485)
STD_BGR = (0.225, 0.224, 0.229)


class ABN(nn.Module):
    """InPlaceABN(Sync) in inference: batch norm then an optional LeakyReLU.

    Holds exactly ``weight``, ``bias``, ``running_mean``, ``running_var`` like SCHP's ``ABN``.

    Shape: (B, C, H, W) -> (B, C, H, W).
    """

    def __init__(self, num_features: int, *, activation: str = "leaky_relu", slope: float = 0.01,
                 eps: float = 1e-5, momentum: float = 0.1) -> None:
        super().__init__()
        if activation not in ("leaky_relu", "none"):
            raise ValueError(f"ABN activation must be 'leaky_relu' or 'none', got {activation!r}")
        self.activation, self.slope, self.eps, self.momentum = activation, slope, eps, momentum
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                         self.training, self.momentum, self.eps)
        if self.activation == "leaky_relu":
            x = F.leaky_relu(x, self.slope)
        return x


def _bn(c: int) -> ABN:
    """SCHP's ``BatchNorm2d = partial(InPlaceABNSync, activation='none')``."""
    return ABN(c, activation="none")


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, dilation: int = 1,
                 downsample: nn.Module | None = None, multi_grid: int = 1) -> None:
        super().__init__()
        d = dilation * multi_grid
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = _bn(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=d, dilation=d, bias=False)
        self.bn2 = _bn(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = _bn(planes * 4)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        residual = x if self.downsample is None else self.downsample(x)
        return F.relu(out + residual)


class PSPModule(nn.Module):
    """Pyramid pooling (Zhao et al.): pooled 1/2/3/6 grids + the features -> 3x3 bottleneck."""

    def __init__(self, features: int, out_features: int = 512,
                 sizes: Sequence[int] = (1, 2, 3, 6)) -> None:
        super().__init__()
        self.stages = nn.ModuleList(
            nn.Sequential(nn.AdaptiveAvgPool2d((s, s)),
                          nn.Conv2d(features, out_features, 1, bias=False), ABN(out_features))
            for s in sizes)
        self.bottleneck = nn.Sequential(
            nn.Conv2d(features + len(sizes) * out_features, out_features, 3, padding=1, bias=False),
            ABN(out_features))

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        h, w = feats.shape[2:]
        priors = [F.interpolate(stage(feats), size=(h, w), mode="bilinear", align_corners=True)
                  for stage in self.stages]
        return self.bottleneck(torch.cat(priors + [feats], 1))


class EdgeModule(nn.Module):
    """Edge branch: 1x1 convs on layers 1-3, a shared 3x3 edge classifier, a 1x1 fusion."""

    def __init__(self, in_fea: Sequence[int] = (256, 512, 1024), mid_fea: int = 256,
                 out_fea: int = 2) -> None:
        super().__init__()
        self.conv1 = nn.Sequential(nn.Conv2d(in_fea[0], mid_fea, 1, bias=False), ABN(mid_fea))
        self.conv2 = nn.Sequential(nn.Conv2d(in_fea[1], mid_fea, 1, bias=False), ABN(mid_fea))
        self.conv3 = nn.Sequential(nn.Conv2d(in_fea[2], mid_fea, 1, bias=False), ABN(mid_fea))
        self.conv4 = nn.Conv2d(mid_fea, out_fea, 3, padding=1, bias=True)
        self.conv5 = nn.Conv2d(out_fea * 3, out_fea, 1, bias=True)

    def forward(self, x1: torch.Tensor, x2: torch.Tensor,
                x3: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h, w = x1.shape[2:]

        def up(t: torch.Tensor) -> torch.Tensor:
            return F.interpolate(t, size=(h, w), mode="bilinear", align_corners=True)

        f1, f2, f3 = self.conv1(x1), self.conv2(x2), self.conv3(x3)
        e1, e2, e3 = self.conv4(f1), self.conv4(f2), self.conv4(f3)
        edge = self.conv5(torch.cat([e1, up(e2), up(e3)], 1))
        return edge, torch.cat([f1, up(f2), up(f3)], 1)


class DecoderModule(nn.Module):
    """Parsing decoder: context features (1/16) upsampled onto layer-1 features (1/4)."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.conv1 = nn.Sequential(nn.Conv2d(512, 256, 1, bias=False), ABN(256))
        self.conv2 = nn.Sequential(nn.Conv2d(256, 48, 1, bias=False), ABN(48))
        self.conv3 = nn.Sequential(nn.Conv2d(304, 256, 1, bias=False), ABN(256),
                                   nn.Conv2d(256, 256, 1, bias=False), ABN(256))
        self.conv4 = nn.Conv2d(256, num_classes, 1, bias=True)

    def forward(self, xt: torch.Tensor, xl: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h, w = xl.shape[2:]
        xt = F.interpolate(self.conv1(xt), size=(h, w), mode="bilinear", align_corners=True)
        x = self.conv3(torch.cat([xt, self.conv2(xl)], 1))
        return self.conv4(x), x


@register_architecture
class SCHPNet(nn.Module):
    """SCHP's AugmentCE2P ResNet: image -> (parsing, fusion, edge) logits at 1/4 resolution.

    Args:
        num_classes: 20 for LIP, 18 for ATR, 7 for Pascal-Person-Part.
        layers: Bottleneck blocks per stage; (3, 4, 23, 3) is ResNet-101 (the released models).

    Shape: in (B, 3, H, W) normalised BGR -> three tensors (B, num_classes, ~H/4, ~W/4),
    (B, num_classes, ...), (B, 2, ...). SCHP's prediction is the second (fusion) output.
    Submodule names (including the misspelt ``fushion``) follow SCHP so checkpoints load as-is.
    """

    def __init__(self, *, num_classes: int = 20, layers: Sequence[int] = (3, 4, 23, 3)) -> None:
        super().__init__()
        self.config = dict(num_classes=int(num_classes), layers=[int(n) for n in layers])
        self.inplanes = 128
        self.conv1 = nn.Conv2d(3, 64, 3, stride=2, padding=1, bias=False)
        self.bn1 = _bn(64)
        self.conv2 = nn.Conv2d(64, 64, 3, padding=1, bias=False)
        self.bn2 = _bn(64)
        self.conv3 = nn.Conv2d(64, 128, 3, padding=1, bias=False)
        self.bn3 = _bn(128)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(64, layers[0])
        self.layer2 = self._make_layer(128, layers[1], stride=2)
        self.layer3 = self._make_layer(256, layers[2], stride=2)
        self.layer4 = self._make_layer(512, layers[3], stride=1, dilation=2)
        self.context_encoding = PSPModule(2048, 512)
        self.edge = EdgeModule()
        self.decoder = DecoderModule(num_classes)
        self.fushion = nn.Sequential(
            nn.Conv2d(1024, 256, 1, bias=False), ABN(256), nn.Dropout2d(0.1),
            nn.Conv2d(256, num_classes, 1, bias=True))

    def _make_layer(self, planes: int, blocks: int, stride: int = 1,
                    dilation: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * Bottleneck.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * 4, 1, stride=stride, bias=False), _bn(planes * 4))
        # SCHP passes multi_grid=(1, 1, 1) to layer4: every block keeps dilation * 1.
        layers = [Bottleneck(self.inplanes, planes, stride, dilation, downsample)]
        self.inplanes = planes * 4
        layers += [Bottleneck(self.inplanes, planes, dilation=dilation) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        x = F.relu(self.bn3(self.conv3(x)))
        x = self.maxpool(x)
        x2 = self.layer1(x)
        x3 = self.layer2(x2)
        x4 = self.layer3(x3)
        x5 = self.layer4(x4)
        context = self.context_encoding(x5)
        parsing, parsing_fea = self.decoder(context, x2)
        edge, edge_fea = self.edge(x2, x3, x4)
        fusion = self.fushion(torch.cat([parsing_fea, edge_fea], 1))
        return parsing, fusion, edge


# --------------------------------------------------------------------------------------------
# loading
# --------------------------------------------------------------------------------------------

def schp_state_dict(obj: object, source: str) -> dict[str, torch.Tensor]:
    """The network's state dict from a loaded SCHP checkpoint: its ``state_dict`` entry (or the
    object itself), with DataParallel's ``module.`` prefix removed."""
    if isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping) or not obj:
        raise WeightError(f"{source} holds no state dict (got {type(obj).__name__}); an SCHP "
                          "checkpoint is a dict with a 'state_dict' entry")
    state = {}
    for k, v in obj.items():
        if not isinstance(v, torch.Tensor):
            raise WeightError(f"{source}: entry {k!r} is a {type(v).__name__}, not a tensor")
        state[k[len("module."):] if k.startswith("module.") else k] = v
    return state


def load_schp(path: str | os.PathLike[str], *, device: torch.device | str = "cpu",
              num_classes: int = 20) -> SCHPNet:
    """Build :class:`SCHPNet` (ResNet-101) and load an SCHP ``.pth`` into it strictly.

    Args:
        path: a checkpoint such as ``exp-schp-201908261155-lip.pth`` (loaded weights-only).
        num_classes: 20 for the LIP model.
    Returns:
        the network in eval mode on ``device``.
    Raises:
        WeightError: unreadable/truncated file, or one of another architecture (the message
            lists missing/unexpected parameters and shape mismatches).
    """
    path = Path(path)
    state = schp_state_dict(load_torch_file(path), str(path))
    net = SCHPNet(num_classes=num_classes)
    check_state_dict(net, state, f"{path} (expected an SCHP ResNet-101 with {num_classes} "
                                 "classes)")
    net.load_state_dict(state, strict=True)
    return net.to(device).eval()


# --------------------------------------------------------------------------------------------
# inference (SCHP's simple_extractor)
# --------------------------------------------------------------------------------------------

def box_to_center_scale(box: Sequence[float], aspect: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """SCHP's ``_xywh2cs``: box (x, y, w, h) -> centre and a scale of aspect ``w/h = aspect``."""
    x, y, w, h = (float(v) for v in box[:4])
    center = np.array([x + w * 0.5, y + h * 0.5], dtype=np.float32)
    if w > aspect * h:
        h = w / aspect
    elif w < aspect * h:
        w = h * aspect
    return center, np.array([w, h], dtype=np.float32)


def affine_to_input(center: np.ndarray, scale: np.ndarray,
                    input_size: tuple[int, int] = INPUT_SIZE) -> np.ndarray:
    """SCHP's ``get_affine_transform`` without rotation: image -> network input, (2, 3).

    The box of width ``scale[0]`` centred at ``center`` maps onto the input's width
    ``input_size[1] - 1`` with its centre at the input's centre (uniform scale).
    """
    out_h, out_w = input_size
    k = (out_w - 1) / float(scale[0])
    return np.array([[k, 0.0, (out_w - 1) * 0.5 - k * float(center[0])],
                     [0.0, k, (out_h - 1) * 0.5 - k * float(center[1])]], dtype=np.float64)


def preprocess(rgb: np.ndarray, trans: np.ndarray,
               input_size: tuple[int, int] = INPUT_SIZE) -> torch.Tensor:
    """uint8 RGB (H, W, 3) -> the normalised BGR input (1, 3, h, w) SCHP feeds its network."""
    bgr = np.ascontiguousarray(rgb[..., ::-1])
    warped = cv2.warpAffine(bgr, trans, (int(input_size[1]), int(input_size[0])),
                            flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                            borderValue=(0, 0, 0))
    x = torch.from_numpy(warped).permute(2, 0, 1).float().div_(255.0)
    mean = torch.tensor(MEAN_BGR).view(3, 1, 1)
    std = torch.tensor(STD_BGR).view(3, 1, 1)
    return ((x - mean) / std).unsqueeze(0)


def logits_to_labels(logits: np.ndarray, trans: np.ndarray, height: int, width: int,
                     strip_rows: int = 512) -> np.ndarray:
    """SCHP's ``transform_logits`` + argmax, in row strips so large images stay small in memory.

    Args:
        logits: float32 (C, h, w) at the network input's size.
        trans: the image -> input affine (2, 3) used for :func:`preprocess`.
    Returns:
        uint8 labels (height, width).
    """
    inv = cv2.invertAffineTransform(trans)  # input -> image, as SCHP's inv=1 transform
    out = np.zeros((height, width), dtype=np.uint8)
    for y0 in range(0, height, strip_rows):
        rows = min(strip_rows, height - y0)
        m = inv.copy()
        m[1, 2] -= y0
        best = None
        arg = np.zeros((rows, width), dtype=np.uint8)
        for c in range(logits.shape[0]):
            warped = cv2.warpAffine(logits[c], m, (width, rows), flags=cv2.INTER_LINEAR,
                                    borderMode=cv2.BORDER_CONSTANT, borderValue=0)
            if best is None:
                best = warped
            else:
                better = warped > best
                arg[better] = c
                best = np.where(better, warped, best)
        out[y0:y0 + rows] = arg
    return out


class SCHPParser:
    """Runs an SCHP network (torch module or an ONNX session) on uint8 RGB images.

    Args:
        net: :class:`SCHPNet` (eval) or a callable mapping a float32 numpy (1, 3, h, w) input to
            the fusion logits (1, C, h', w') — the ONNX backend passes one.
        device: where the torch network runs.
    """

    def __init__(self, net: nn.Module | object, *, device: torch.device | str = "cpu",
                 input_size: tuple[int, int] = INPUT_SIZE) -> None:
        self.net = net
        self.device = torch.device(device)
        self.input_size = input_size

    @torch.inference_mode()
    def fusion_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Fusion logits (1, C, h, w) upsampled to the input size (bilinear, align_corners)."""
        if isinstance(self.net, nn.Module):
            out = self.net(x.to(self.device))[1].float().cpu()
        else:
            out = torch.from_numpy(np.asarray(self.net(x.numpy()), dtype=np.float32))
        return F.interpolate(out, size=self.input_size, mode="bilinear", align_corners=True)

    def parse(self, rgb: np.ndarray, box: Sequence[float] | None = None) -> np.ndarray:
        """LIP labels of an image.

        Args:
            rgb: uint8 (H, W, 3).
            box: (x0, y0, x1, y1) region to parse (e.g. the person's box with a margin);
                None = the whole image, as SCHP's extractor does.
        Returns:
            uint8 (H, W) LIP labels in 0..19 (0 outside the box).
        """
        h, w = rgb.shape[:2]
        if box is None:
            xywh = (0.0, 0.0, w - 1.0, h - 1.0)
        else:
            x0, y0, x1, y1 = box
            xywh = (x0, y0, max(x1 - x0, 1.0), max(y1 - y0, 1.0))
        aspect = self.input_size[1] / self.input_size[0]
        center, scale = box_to_center_scale(xywh, aspect)
        trans = affine_to_input(center, scale, self.input_size)
        logits = self.fusion_logits(preprocess(rgb, trans, self.input_size))[0].numpy()
        return logits_to_labels(np.ascontiguousarray(logits), trans, h, w)


class OnnxSCHP:
    """An SCHP ONNX export (e.g. OOTDiffusion's ``parsing_lip.onnx``) as a callable.

    The export takes the normalised BGR input (1, 3, 473, 473) and returns SCHP's outputs
    flattened: [parsing, fusion, edge]; the fusion logits are used (a single output is taken
    as the prediction itself).
    """

    def __init__(self, path: str | os.PathLike[str], *, providers: Sequence[str] | None = None
                 ) -> None:
        import onnxruntime as ort

        path = Path(path)
        available = set(ort.get_available_providers())
        providers = [p for p in (providers or ["CPUExecutionProvider"]) if p in available] \
            or ["CPUExecutionProvider"]
        if not path.is_file() or path.stat().st_size == 0:
            raise WeightError(f"ONNX file {path} is missing or empty")
        try:
            self.session = ort.InferenceSession(
                str(path), providers=providers)
        except Exception as exc:
            raise WeightError(f"{path} could not be opened as an ONNX model ({exc}); it may be "
                              "truncated or another file") from exc
        inputs = self.session.get_inputs()
        outputs = self.session.get_outputs()
        if len(inputs) != 1 or len(inputs[0].shape) != 4 or len(outputs) not in (1, 3):
            raise WeightError(f"{path} is not an SCHP export: expected one 4-D input and 1 or 3 "
                              f"outputs, got {len(inputs)} inputs and {len(outputs)} outputs")
        self.input_name = inputs[0].name
        self.index = 1 if len(outputs) == 3 else 0

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: x.astype(np.float32)})[self.index]


def random_schp(calibration: Sequence[np.ndarray], *, seed: int = 0,
                num_classes: int = 20) -> SCHPNet:
    """A randomly initialised full-size :class:`SCHPNet` for tests and benchmarks.

    The norm layers' running statistics are set to the statistics of ``calibration`` images
    (uint8 RGB, at least two), so activations keep a realistic range: an uncalibrated random
    ResNet-101 underflows into denormal floats, which run an order of magnitude slower on CPU
    and would make timings meaningless. Its labels mean nothing.
    """
    if len(calibration) < 2:
        raise ValueError("random_schp needs at least two calibration images")
    gen_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        net = SCHPNet(num_classes=num_classes)
    finally:
        torch.random.set_rng_state(gen_state)
    abns = [m for m in net.modules() if isinstance(m, ABN)]
    for m in abns:
        m.momentum = 1.0  # running statistics := this batch's statistics
    size = (233, 233)
    batch = []
    for img in calibration:
        h, w = img.shape[:2]
        c, s = box_to_center_scale((0, 0, w - 1, h - 1))
        batch.append(preprocess(img, affine_to_input(c, s, size), size))
    net.train()
    with torch.no_grad():
        net(torch.cat(batch))
    for m in abns:
        m.momentum = 0.1
    return net.eval()
