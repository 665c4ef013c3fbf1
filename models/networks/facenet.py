"""InceptionResnetV1 face embedding (FaceNet, VGGFace2-trained), with facenet-pytorch's
parameter names so the registry file ``facenet_vggface2`` (py-feat/facenet,
``facenet_20180402_114759_vggface2.pth``) loads strictly.

The file is a state dict of the classifying network: it includes ``logits.*`` (8631 VGGFace2
identities), which we load (strictly) and do not use. Embeddings are the L2-normalised 512-d
output of ``last_bn``; :meth:`InceptionResnetV1.features` also returns activations at several
depths (the face perceptual loss of paper eq. 18 / §3.2 "face emphasis").

Input: RGB float (B, 3, H, W) standardised as ``(x*255 - 127.5) / 128`` (what the network was
trained with; :func:`standardize` does it), faces tightly cropped, 160x160 nominal.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..io.loading import register_architecture
from ..io.weights import WeightError

FACE_INPUT_SIZE = 160
EMBED_DIM = 512
VGGFACE2_CLASSES = 8631


class BasicConv2d(nn.Sequential):
    """conv (no bias) -> BatchNorm(eps 1e-3) -> ReLU; parameter names conv.*, bn.*."""

    def __init__(self, cin: int, cout: int, kernel: int | tuple[int, int], stride: int = 1,
                 padding: int | tuple[int, int] = 0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=0.001, momentum=0.1)
        self.relu = nn.ReLU()


class _Residual(nn.Module):
    """Inception-ResNet block: parallel branches, concat, 1x1 conv back, scaled residual."""

    def __init__(self, channels: int, branches: list[nn.Module], cat_channels: int,
                 scale: float, relu: bool = True) -> None:
        super().__init__()
        for i, b in enumerate(branches):
            self.add_module(f"branch{i}", b)
        self._n = len(branches)
        self.conv2d = nn.Conv2d(cat_channels, channels, 1)
        self.scale = scale
        self.use_relu = relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.cat([getattr(self, f"branch{i}")(x) for i in range(self._n)], 1)
        out = self.conv2d(out) * self.scale + x
        return F.relu(out) if self.use_relu else out


def block35(scale: float = 0.17) -> _Residual:
    return _Residual(256, [
        BasicConv2d(256, 32, 1),
        nn.Sequential(BasicConv2d(256, 32, 1), BasicConv2d(32, 32, 3, padding=1)),
        nn.Sequential(BasicConv2d(256, 32, 1), BasicConv2d(32, 32, 3, padding=1),
                      BasicConv2d(32, 32, 3, padding=1)),
    ], 96, scale)


def block17(scale: float = 0.10) -> _Residual:
    return _Residual(896, [
        BasicConv2d(896, 128, 1),
        nn.Sequential(BasicConv2d(896, 128, 1), BasicConv2d(128, 128, (1, 7), padding=(0, 3)),
                      BasicConv2d(128, 128, (7, 1), padding=(3, 0))),
    ], 256, scale)


def block8(scale: float = 0.20, relu: bool = True) -> _Residual:
    return _Residual(1792, [
        BasicConv2d(1792, 192, 1),
        nn.Sequential(BasicConv2d(1792, 192, 1), BasicConv2d(192, 192, (1, 3), padding=(0, 1)),
                      BasicConv2d(192, 192, (3, 1), padding=(1, 0))),
    ], 384, scale, relu)


class _Concat(nn.Module):
    """Reduction block: parallel branches concatenated (Mixed_6a / Mixed_7a)."""

    def __init__(self, branches: list[nn.Module]) -> None:
        super().__init__()
        for i, b in enumerate(branches):
            self.add_module(f"branch{i}", b)
        self._n = len(branches)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([getattr(self, f"branch{i}")(x) for i in range(self._n)], 1)


def mixed_6a() -> _Concat:
    return _Concat([
        BasicConv2d(256, 384, 3, stride=2),
        nn.Sequential(BasicConv2d(256, 192, 1), BasicConv2d(192, 192, 3, padding=1),
                      BasicConv2d(192, 256, 3, stride=2)),
        nn.MaxPool2d(3, stride=2),
    ])


def mixed_7a() -> _Concat:
    return _Concat([
        nn.Sequential(BasicConv2d(896, 256, 1), BasicConv2d(256, 384, 3, stride=2)),
        nn.Sequential(BasicConv2d(896, 256, 1), BasicConv2d(256, 256, 3, stride=2)),
        nn.Sequential(BasicConv2d(896, 256, 1), BasicConv2d(256, 256, 3, padding=1),
                      BasicConv2d(256, 256, 3, stride=2)),
        nn.MaxPool2d(3, stride=2),
    ])


# Stages whose outputs :meth:`InceptionResnetV1.features` can return, in forward order.
STAGES: tuple[str, ...] = (
    "conv2d_1a", "conv2d_2a", "conv2d_2b", "maxpool_3a", "conv2d_3b", "conv2d_4a", "conv2d_4b",
    "repeat_1", "mixed_6a", "repeat_2", "mixed_7a", "repeat_3", "block8",
)


@register_architecture
class InceptionResnetV1(nn.Module):
    """FaceNet's Inception-ResNet-v1 (facenet-pytorch layout).

    Shape: in (B, 3, H, W) standardised, H, W >= 80 -> embedding (B, 512), L2-normalised.
    """

    def __init__(self, *, num_classes: int = VGGFACE2_CLASSES) -> None:
        super().__init__()
        self.config = dict(num_classes=num_classes)
        self.conv2d_1a = BasicConv2d(3, 32, 3, stride=2)
        self.conv2d_2a = BasicConv2d(32, 32, 3)
        self.conv2d_2b = BasicConv2d(32, 64, 3, padding=1)
        self.maxpool_3a = nn.MaxPool2d(3, stride=2)
        self.conv2d_3b = BasicConv2d(64, 80, 1)
        self.conv2d_4a = BasicConv2d(80, 192, 3)
        self.conv2d_4b = BasicConv2d(192, 256, 3, stride=2)
        self.repeat_1 = nn.Sequential(*[block35() for _ in range(5)])
        self.mixed_6a = mixed_6a()
        self.repeat_2 = nn.Sequential(*[block17() for _ in range(10)])
        self.mixed_7a = mixed_7a()
        self.repeat_3 = nn.Sequential(*[block8() for _ in range(5)])
        self.block8 = block8(1.0, relu=False)
        self.last_linear = nn.Linear(1792, EMBED_DIM, bias=False)
        self.last_bn = nn.BatchNorm1d(EMBED_DIM, eps=0.001, momentum=0.1)
        # Kept so the VGGFace2 classifier file loads strictly; not used for embeddings.
        self.logits = nn.Linear(EMBED_DIM, num_classes) if num_classes > 0 else None

    def features(self, x: torch.Tensor, stages: tuple[str, ...] = STAGES,
                 ) -> dict[str, torch.Tensor]:
        """Activations after the named stages (stops after the deepest one asked for)."""
        wanted = set(stages)
        unknown = wanted - set(STAGES)
        if unknown:
            raise ValueError(f"unknown stages {sorted(unknown)}; choose from {STAGES}")
        last = max(STAGES.index(s) for s in wanted)
        out: dict[str, torch.Tensor] = {}
        for name in STAGES[:last + 1]:
            x = getattr(self, name)(x)
            if name in wanted:
                out[name] = x
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x, ("block8",))["block8"]
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        x = self.last_bn(self.last_linear(x))
        return F.normalize(x, p=2, dim=1)


def standardize(rgb01: torch.Tensor) -> torch.Tensor:
    """RGB in 0..1 -> FaceNet's input scale ``(x*255 - 127.5) / 128``."""
    return (rgb01 * 255.0 - 127.5) / 128.0


def load_facenet_state(module: InceptionResnetV1, state: Mapping[str, torch.Tensor],
                       source: str) -> None:
    """Strictly load a facenet-pytorch state dict. The only tolerance: BatchNorm
    ``num_batches_tracked`` counters may be absent (files converted from TensorFlow lack
    them; torch itself accepts that). Every parameter and running statistic must be there
    with the right shape; anything else is an error naming it."""
    from ..io.loading import check_state_dict

    own = module.state_dict()
    state = dict(state)
    for k, v in own.items():
        if k.endswith("num_batches_tracked") and k not in state:
            state[k] = v
    check_state_dict(module, state, source)
    module.load_state_dict(state, strict=True)


def load_facenet(path: str | Path, device: torch.device | str = "cpu") -> InceptionResnetV1:
    """The face embedding network from a facenet-pytorch ``.pth``/``.pt`` or safetensors file.

    Raises:
        WeightError: unreadable file or any key/shape mismatch.
    """
    from ..io.loading import load_state_dict_file

    state = load_state_dict_file(path)
    if "logits.weight" in state:
        num_classes = int(state["logits.weight"].shape[0])
    else:
        num_classes = 0
    if "last_linear.weight" not in state:
        raise WeightError(f"{path} is not an InceptionResnetV1 (facenet-pytorch) state dict: "
                          "it has no 'last_linear.weight'. Use the facenet_vggface2 file.")
    net = InceptionResnetV1(num_classes=num_classes)
    load_facenet_state(net, state, str(path))
    return net.to(device).eval()
