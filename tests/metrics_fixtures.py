"""Test-generated weight files for the metric networks (random values, exact architectures).

The LPIPS linear heads are the REAL v0.1 files: the ``lpips`` package (a test dependency) ships
them, byte-identical to the registry's pinned sha256. Backbones and the FID Inception are random
weights in the exact layouts of the real files (timm VGG16 keys, torchvision SqueezeNet keys,
pytorch-fid Inception keys); the registry's sha256 is swapped for theirs in the tests that use
them, everything else (download, verification, strict loading) is the real code path.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import shutil
from pathlib import Path

import torch

from dance_reenact.models.io import weights
from dance_reenact.models.metrics import scores as metrics


def lpips_head_bytes(net: str) -> bytes:
    """The official LPIPS v0.1 head file shipped inside the ``lpips`` package."""
    import lpips

    return (Path(lpips.__file__).parent / "weights" / "v0.1" / f"{net}.pth").read_bytes()


def serve_lpips_head(hub, net: str) -> None:
    spec = weights.REGISTRY[{"vgg": "lpips_vgg", "squeeze": "lpips_squeeze",
                             "alex": "lpips_alex"}[net]]
    data = lpips_head_bytes(net)
    assert hashlib.sha256(data).hexdigest() == spec.sha256  # the real file, pinned hash
    hub.add(spec.repo_id, spec.filename, data, revision=spec.revision)


def write_timm_vgg16(path: Path, seed: int = 0) -> Path:
    """A full-size timm ``vgg16.tv_in1k`` safetensors (features + pre_logits + head, ~553 MB)
    with random values."""
    from safetensors.torch import save_file

    g = torch.Generator().manual_seed(seed)
    feats = metrics.LPIPS(backbone="vgg16").features.state_dict()
    tensors = {}
    for k, v in feats.items():
        scale = (2.0 / max(v[0].numel(), 1)) ** 0.5 if v.ndim == 4 else 0.01
        tensors[f"features.{k}"] = torch.randn(v.shape, generator=g) * scale
    for k, shape in (("pre_logits.fc1.weight", (4096, 512, 7, 7)), ("pre_logits.fc1.bias", (4096,)),
                     ("pre_logits.fc2.weight", (4096, 4096, 1, 1)),
                     ("pre_logits.fc2.bias", (4096,)), ("head.fc.weight", (1000, 4096)),
                     ("head.fc.bias", (1000,))):
        tensors[k] = torch.randn(shape, generator=g) * 0.01
    save_file(tensors, str(path))
    return path


def install_vgg16(src: Path, weights_dir: Path, monkeypatch) -> None:
    """Place the generated VGG16 where the registry looks and pin its sha256 for this test."""
    spec = weights.REGISTRY["vgg16"]
    dest = weights_dir / spec.disk_name
    try:
        os.link(src, dest)
    except OSError:
        shutil.copy(src, dest)
    monkeypatch.setitem(weights.REGISTRY, "vgg16",
                        dataclasses.replace(spec, sha256=_sha_cached(src), size=None))


_SHA: dict[str, str] = {}


def _sha_cached(path: Path) -> str:
    if str(path) not in _SHA:
        _SHA[str(path)] = weights.sha256_file(path)
    return _SHA[str(path)]


def fid_inception_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """Random FID Inception weights in the pt_inception-2015-12-05 layout (without BatchNorm's
    num_batches_tracked, like the 2015 graph's port)."""
    torch.manual_seed(seed)
    m = metrics.FIDInceptionV3()
    g = torch.Generator().manual_seed(seed)
    state = {}
    for k, v in m.state_dict().items():
        if k.endswith("num_batches_tracked"):
            continue
        if k.endswith("conv.weight"):  # He-normal: activations keep their scale through depth
            v = torch.randn(v.shape, generator=g) * (2.0 / v[0].numel()) ** 0.5
        elif k.endswith("running_mean"):
            v = torch.randn(v.shape, generator=g) * 0.05
        elif k.endswith("running_var"):
            v = 0.8 + 0.4 * torch.rand(v.shape, generator=g)
        state[k] = v.clone()
    return state


def fid_inception_bytes(seed: int = 0) -> bytes:
    buf = io.BytesIO()
    torch.save(fid_inception_state(seed), buf)
    return buf.getvalue()


def serve_fid_inception(hub, data: bytes, monkeypatch) -> None:
    spec = weights.REGISTRY["fid_inception"]
    hub.add(spec.repo_id, spec.filename, data, revision=spec.revision)
    monkeypatch.setitem(weights.REGISTRY, "fid_inception", dataclasses.replace(
        spec, sha256=hashlib.sha256(data).hexdigest(), size=len(data)))


def oracle_pipeline(target, driver, **_):
    """A test pipeline for ``reenact evaluate --pipeline metrics_fixtures:oracle_pipeline``:
    returns the driver frames themselves (a perfect reconstruction)."""
    yield from driver
