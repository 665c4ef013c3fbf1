"""ImageNet VGG19 convolutional features with timm's parameter names (``timm/vgg19.tv_in1k``).

The registry file ``vgg19`` holds timm's whole classifier: ``features.*`` (the 16 convolutions,
~80 MB) plus ``pre_logits.fc1/fc2`` and ``head.fc`` (~495 MB). We only run the features, so
:func:`load_vgg19_features` checks the file's COMPLETE key/shape list against timm's VGG19
(a wrong or truncated file fails, naming the key) and then reads only the feature tensors
(safetensors reads lazily), never the classifier bytes.

Used by the AppearanceEncoder (crops 2-5, global-pooled conv5 features, 512-d) and by the B2F
VGG perceptual loss (activations at relu1_1 ... relu5_1).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..io.weights import WeightError

VGG19_CFG: tuple[int | str, ...] = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M",
                                    512, 512, 512, 512, "M", 512, 512, 512, 512, "M")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# Index (in ``features``) of the ReLU after conv1_1, conv2_1, conv3_1, conv4_1, conv5_1.
VGG19_RELU_X_1: tuple[int, ...] = (1, 6, 11, 20, 29)


def vgg_features(cfg: tuple[int | str, ...] = VGG19_CFG, in_channels: int = 3) -> nn.Sequential:
    """torchvision/timm VGG ``features``: conv3x3+ReLU per int, MaxPool2d(2) per 'M'."""
    layers: list[nn.Module] = []
    c = in_channels
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(c, int(v), 3, padding=1), nn.ReLU(inplace=True)]
            c = int(v)
    return nn.Sequential(*layers)


def vgg19_timm_shapes(num_classes: int = 1000) -> dict[str, tuple[int, ...]]:
    """Every key and shape of timm's ``vgg19`` state dict (features + pre_logits + head)."""
    shapes = {f"features.{k}": tuple(v.shape)
              for k, v in vgg_features().state_dict().items()}
    shapes.update({
        "pre_logits.fc1.weight": (4096, 512, 7, 7), "pre_logits.fc1.bias": (4096,),
        "pre_logits.fc2.weight": (4096, 4096, 1, 1), "pre_logits.fc2.bias": (4096,),
        "head.fc.weight": (num_classes, 4096), "head.fc.bias": (num_classes,),
    })
    return shapes


class VGG19Features(nn.Module):
    """VGG19 conv features; input RGB (B, 3, H, W) in 0..1 (ImageNet-normalised inside).

    ``forward`` returns the last feature map (B, 512, H/32, W/32); :meth:`activations`
    returns the maps after the given ``features`` indices.
    """

    def __init__(self) -> None:
        super().__init__()
        self.features = vgg_features()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1),
                             persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1),
                             persistent=False)

    def normalize(self, rgb01: torch.Tensor) -> torch.Tensor:
        return (rgb01 - self.mean) / self.std

    def forward(self, rgb01: torch.Tensor) -> torch.Tensor:
        return self.features(self.normalize(rgb01))

    def activations(self, rgb01: torch.Tensor,
                    indices: tuple[int, ...] = VGG19_RELU_X_1) -> list[torch.Tensor]:
        x = self.normalize(rgb01)
        out = []
        last = max(indices)
        for i, layer in enumerate(self.features):
            # in-place ReLUs would overwrite a returned activation: apply them out of place
            x = torch.relu(x) if isinstance(layer, nn.ReLU) else layer(x)
            if i in indices:
                out.append(x)
            if i >= last:
                break
        return out


def load_vgg19_features(path: str | Path, device: torch.device | str = "cpu") -> VGG19Features:
    """Check a timm ``vgg19`` safetensors file's full key/shape contract, load its features.

    Raises:
        WeightError naming missing, unexpected or mis-shaped keys, or an unreadable file.
    """
    from safetensors import safe_open

    from ..io.loading import _check_file

    path = Path(path)
    _check_file(path)
    expected = vgg19_timm_shapes()
    try:
        with safe_open(str(path), framework="pt") as f:
            keys = list(f.keys())
            shapes = {k: tuple(f.get_slice(k).get_shape()) for k in keys}
            missing = [k for k in expected if k not in shapes]
            unexpected = [k for k in shapes if k not in expected]
            wrong = [f"{k}: expected {expected[k]}, got {shapes[k]}" for k in expected
                     if k in shapes and shapes[k] != expected[k]]
            if missing or unexpected or wrong:
                parts = []
                if wrong:
                    parts.append("shape mismatch: " + "; ".join(wrong[:6]))
                if missing:
                    parts.append(f"missing {len(missing)}: " + ", ".join(missing[:6]))
                if unexpected:
                    parts.append(f"unexpected {len(unexpected)}: " + ", ".join(unexpected[:6]))
                raise WeightError(f"{path} is not timm's vgg19 (vgg19.tv_in1k): "
                                  + " | ".join(parts))
            state = {k[len("features."):]: f.get_tensor(k) for k in keys
                     if k.startswith("features.")}
    except WeightError:
        raise
    except Exception as exc:
        raise WeightError(f"{path} could not be read as safetensors ({exc}); it may be "
                          "truncated or of another format.") from exc
    net = VGG19Features()
    net.features.load_state_dict(state, strict=True)
    return net.to(device).eval()
