"""Test-generated weight files with the exact architectures of the pinned third-party files
(random values): the facenet-pytorch InceptionResnetV1 state dict and timm's vgg19 safetensors.

The VGG19 file is written at its full size (575 MB) as a SPARSE file: the 16 feature
convolutions get random values, the classifier tensors (which our loader checks by name and
shape but never reads) are left as a hole of zeros, so writing takes a fraction of a second and
no disk space.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import struct
from pathlib import Path

import numpy as np
import torch

from dance_reenact.models.facenet import InceptionResnetV1
from dance_reenact.models.vgg import vgg19_timm_shapes


def facenet_state_bytes(seed: int = 0, drop_batch_counters: bool = True) -> bytes:
    torch.manual_seed(seed)
    net = InceptionResnetV1()
    for m in net.modules():  # non-trivial running statistics
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    state = net.state_dict()
    if drop_batch_counters:
        state = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getvalue()


def write_sparse_vgg19(path: Path, seed: int = 0, shapes: dict | None = None,
                       digest: bool = True) -> str:
    """Write timm's vgg19 key/shape layout as safetensors; returns the file's sha256
    (or "" with ``digest=False``)."""
    shapes = shapes or vgg19_timm_shapes()
    rng = np.random.default_rng(seed)
    order = sorted(shapes, key=lambda k: (not k.startswith("features."), k))
    header: dict = {"__metadata__": {"format": "pt"}}
    offset = 0
    for k in order:
        n = math.prod(shapes[k]) * 4
        header[k] = {"dtype": "F32", "shape": list(shapes[k]), "data_offsets": [offset, offset + n]}
        offset += n
    hjson = json.dumps(header, separators=(",", ":")).encode()
    hjson += b" " * (-len(hjson) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hjson)))
        f.write(hjson)
        for k in order:
            if not k.startswith("features."):
                break
            fan_in = math.prod(shapes[k][1:]) or 1
            arr = (rng.standard_normal(shapes[k], dtype=np.float32) * math.sqrt(2.0 / fan_in)
                   if len(shapes[k]) > 1 else np.zeros(shapes[k], np.float32))
            f.write(arr.astype("<f4").tobytes())
        f.truncate(8 + len(hjson) + offset)
    if not digest:
        return ""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 24):
            h.update(block)
    return h.hexdigest()
