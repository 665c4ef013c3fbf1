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

from dance_reenact.models.networks.facenet import InceptionResnetV1
from dance_reenact.models.networks.vgg import vgg19_timm_shapes


def facenet_state_bytes(seed: int = 0, drop_batch_counters: bool = True,
                        legacy: bool = False) -> bytes:
    """A random InceptionResnetV1 (with its 8631-way ``logits``) saved as a state dict;
    ``legacy=True`` uses torch's pre-1.6 serialisation (the 2018 file's format)."""
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
    torch.save(state, buf, _use_new_zipfile_serialization=not legacy)
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


# --------------------------------------------------------------------------------------------
# DWPose and DensePose stand-ins whose person box FOLLOWS the person (for workflow tests)
# --------------------------------------------------------------------------------------------

# COCO-WholeBody body keypoints (u, v) as fractions of RTMPose's 288x384 crop of the 1.25x
# padded, aspect-fixed person box: an upright person facing the camera, kept within the crop's
# central part so the points stay inside both tall (full-body) and square (portrait) boxes.
_BODY_UV = [(0.5, 0.26), (0.51, 0.25), (0.49, 0.25), (0.52, 0.255), (0.48, 0.255),
            (0.56, 0.32), (0.44, 0.32), (0.6, 0.42), (0.4, 0.42), (0.62, 0.5), (0.38, 0.5),
            (0.54, 0.52), (0.46, 0.52), (0.545, 0.65), (0.455, 0.65), (0.55, 0.77),
            (0.45, 0.77)]


def _wholebody_uv() -> np.ndarray:
    """(133, 2) crop fractions: body 17, feet 6, face 68 (on a small ellipse), hands 2x21."""
    pts = list(_BODY_UV)
    pts += [(0.55, 0.78), (0.56, 0.78), (0.55, 0.775), (0.45, 0.78), (0.44, 0.78), (0.45, 0.775)]
    t = np.linspace(0, 2 * np.pi, 68, endpoint=False)
    pts += list(zip(0.5 + 0.025 * np.cos(t), 0.265 + 0.03 * np.sin(t)))
    for wx in (0.62, 0.38):  # left hand (image right), right hand
        a = np.linspace(-0.6, 0.6, 21)
        pts += list(zip(wx + 0.02 * np.sin(a) * np.sign(wx - 0.5), 0.5 + 0.03 * np.cos(a)))
    return np.asarray(pts, np.float64)


def _yolox_model(nodes: list, inits: list):
    """The YOLOX detector stand-ins' ONNX model: ``images`` (1, 3, 640, 640) -> ``output``
    (1, 8400, 85) computed by ``nodes`` from ``inits``; checked by onnx."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        nodes, "det", [helper.make_tensor_value_info("images", TensorProto.FLOAT,
                                                     [1, 3, 640, 640])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 8400, 85])], inits)
    det = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    det.ir_version = 8
    onnx.checker.check_model(det)
    return det


def dwpose_following_files() -> tuple[bytes, bytes]:
    """(detector, pose) ONNX files with DWPose's signatures. The detector's one box is the
    bounding box of the input pixels that are neither black (channel sum <= 40) nor the
    letterbox grey (114): put the person on a black background and the box follows them. The
    pose model puts the 133 keypoints at :func:`_wholebody_uv` of its crop, so they follow the
    box."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    f32 = np.float32
    onehot = np.zeros((8400, 1), f32)
    onehot[8000] = 1.0  # the first stride-32 anchor (grid 0, 0) carries the box
    inits = [numpy_helper.from_array(np.array(v, f32), n) for n, v in (
        ("c114", 114.0), ("c3", 3.0), ("c40", 40.0), ("one", 1.0), ("c640", 640.0),
        ("half", 0.5), ("inv32", 1.0 / 32.0), ("score", 0.9), ("cls", 0.95))]
    inits += [numpy_helper.from_array(np.array([1], np.int64), "ax1"),
              numpy_helper.from_array(np.arange(1, 641, dtype=f32), "idx_up"),
              numpy_helper.from_array(np.arange(640, 0, -1, dtype=f32), "idx_down"),
              numpy_helper.from_array(np.zeros((1, 79), f32), "zeros79"),
              numpy_helper.from_array(onehot, "onehot"),
              numpy_helper.from_array(np.array([1, 8400, 85], np.int64), "shape_out"),
              numpy_helper.from_array(np.array([1, 1], np.int64), "shape11")]
    N = helper.make_node
    nodes = [
        N("Sub", ["images", "c114"], ["d"]), N("Abs", ["d"], ["ad"]),
        N("ReduceSum", ["ad", "ax1"], ["sd"], keepdims=0),
        N("Greater", ["sd", "c3"], ["notpad"]),
        N("ReduceSum", ["images", "ax1"], ["s"], keepdims=0),
        N("Greater", ["s", "c40"], ["notblack"]),
        N("And", ["notpad", "notblack"], ["pb"]), N("Cast", ["pb"], ["p"], to=TensorProto.FLOAT),
        N("ReduceMax", ["p"], ["col"], axes=[1], keepdims=0),  # (1, 640) over rows
        N("ReduceMax", ["p"], ["row"], axes=[2], keepdims=0),
        N("ReduceMax", ["p"], ["any"], axes=[0, 1, 2], keepdims=1),
    ]
    for prof, lo, hi in (("col", "x0", "x1"), ("row", "y0", "y1")):
        nodes += [N("Mul", [prof, "idx_up"], [f"{prof}_u"]),
                  N("ReduceMax", [f"{prof}_u"], [hi], axes=[0, 1], keepdims=1),
                  N("Mul", [prof, "idx_down"], [f"{prof}_d"]),
                  N("ReduceMax", [f"{prof}_d"], [f"{lo}_r"], axes=[0, 1], keepdims=1),
                  N("Sub", ["c640", f"{lo}_r"], [lo]),
                  N("Add", [lo, hi], [f"{prof}_s"]), N("Mul", [f"{prof}_s", "half"],
                                                         [f"{prof}_c"]),
                  N("Mul", [f"{prof}_c", "inv32"], [f"{prof}_c32"]),
                  N("Sub", [hi, lo], [f"{prof}_w"]), N("Max", [f"{prof}_w", "one"],
                                                       [f"{prof}_wp"]),
                  N("Mul", [f"{prof}_wp", "inv32"], [f"{prof}_w32"]),
                  N("Log", [f"{prof}_w32"], [f"{prof}_lw"])]
    nodes += [N("Mul", ["any", "score"], ["obj3"]), N("Reshape", ["obj3", "shape11"], ["obj"]),
              N("Reshape", ["cls", "shape11"], ["cls11"])]
    for name in ("col_c32", "row_c32", "col_lw", "row_lw"):
        nodes.append(N("Reshape", [name, "shape11"], [f"{name}_11"]))
    nodes += [N("Concat", ["col_c32_11", "row_c32_11", "col_lw_11", "row_lw_11", "obj", "cls11",
                           "zeros79"], ["vec"], axis=1),
              N("Mul", ["onehot", "vec"], ["grid"]),
              N("Reshape", ["grid", "shape_out"], ["output"])]
    det = _yolox_model(nodes, inits)

    uv = _wholebody_uv()
    sx = np.zeros((1, 133, 576), f32)
    sy = np.zeros((1, 133, 768), f32)
    for i, (u, v) in enumerate(uv):
        sx[0, i, int(round(u * 576))] = 0.9
        sy[0, i, int(round(v * 768))] = 0.9
    pose_nodes = [N("ReduceMean", ["input"], ["m"], keepdims=0), N("Mul", ["m", "zero"], ["m0"]),
                  N("Add", ["sx_c", "m0"], ["simcc_x"]), N("Add", ["sy_c", "m0"], ["simcc_y"])]
    pose_graph = helper.make_graph(
        pose_nodes, "pose", [helper.make_tensor_value_info("input", TensorProto.FLOAT,
                                                           [1, 3, 384, 288])],
        [helper.make_tensor_value_info("simcc_x", TensorProto.FLOAT, [1, 133, 576]),
         helper.make_tensor_value_info("simcc_y", TensorProto.FLOAT, [1, 133, 768])],
        [numpy_helper.from_array(np.zeros((), f32), "zero"),
         numpy_helper.from_array(sx, "sx_c"), numpy_helper.from_array(sy, "sy_c")])
    pose = helper.make_model(pose_graph, opset_imports=[helper.make_opsetid("", 13)])
    pose.ir_version = 8
    onnx.checker.check_model(pose)
    return det.SerializeToString(), pose.SerializeToString()


class _BoxDensePose(torch.nn.Module):
    """DensePose R50's TorchScript contract (uint8 (3, H, W) -> boxes, coarse, fine, u, v):
    one box around the pixels that are not black; its left half torso front (2), its right
    half head right (23)."""

    def forward(self, x: torch.Tensor):
        m = x.float().sum(0) > 40.0
        ys = torch.nonzero(m.any(1)).flatten()
        xs = torch.nonzero(m.any(0)).flatten()
        n = 1 if int(ys.numel()) > 0 else 0
        boxes = torch.zeros(n, 4)
        if n == 1:
            boxes[0, 0] = xs.min().float()
            boxes[0, 1] = ys.min().float()
            boxes[0, 2] = xs.max().float() + 1.0
            boxes[0, 3] = ys.max().float() + 1.0
        coarse = torch.zeros(n, 2, 112, 112)
        coarse[:, 1] = 1.0
        fine = torch.zeros(n, 25, 112, 112)
        fine[:, 2, :, :56] = 5.0
        fine[:, 23, :, 56:] = 5.0
        u = torch.full((n, 25, 112, 112), 0.25)
        v = torch.full((n, 25, 112, 112), 0.75)
        return boxes, coarse, fine, u, v


def box_densepose_torchscript() -> bytes:
    buf = io.BytesIO()
    torch.jit.save(torch.jit.script(_BoxDensePose()), buf)
    return buf.getvalue()


# --------------------------------------------------------------------------------------------
# Stand-ins that REACT to their input: their outputs encode what they were fed, so a swapped
# colour order, a wrong normalisation or a wrong mask convention changes the result
# --------------------------------------------------------------------------------------------

# DWPose channel stand-ins: geometry the tests invert.
CHANNEL_BOX_WH = (120.0, 160.0)  # the detector's box size in its 640x640 input pixels
CHANNEL_SIMCC_OFFSET = 288.0  # x bin of keypoint k = offset + scale * mean of channel k % 3
CHANNEL_SIMCC_SCALE = 100.0
CHANNEL_Y_BIN = 300  # every y peak sits at this bin (150 crop pixels)
# (x max, y max) of keypoint k's SimCC vectors: different heights so min and mean differ.
CHANNEL_PEAKS = np.tile(np.array([[0.9, 0.6]], np.float32), (133, 1))
CHANNEL_PEAKS[0] = (0.9, 0.25)  # nose: min 0.25 < 0.3 < mean 0.575 -> hidden upstream
CHANNEL_PEAKS[5] = (0.32, 0.95)  # left shoulder: min 0.32 -> kept


def dwpose_channel_files() -> tuple[bytes, bytes]:
    """(detector, pose) ONNX files with DWPose's signatures whose outputs encode the mean of
    each input channel separately.

    Detector: one box on the first stride-32 anchor, centred at (mean of channel 0, mean of
    channel 1) of its 640x640 input, :data:`CHANNEL_BOX_WH` in size; objectness 0.9 and
    class-0 probability ``mean(channel 0) / 255`` (so a frame whose first channel is dark
    has no person). Pose model: keypoint k's x SimCC vector peaks at bin
    ``CHANNEL_SIMCC_OFFSET + CHANNEL_SIMCC_SCALE * mean(channel k % 3)`` of its (normalised)
    input, its y vector at :data:`CHANNEL_Y_BIN`; peak heights :data:`CHANNEL_PEAKS`.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    f32 = np.float32
    N = helper.make_node
    onehot = np.zeros((8400, 1), f32)
    onehot[8000] = 1.0
    w, h = CHANNEL_BOX_WH
    inits = [numpy_helper.from_array(onehot, "onehot"),
             numpy_helper.from_array(np.array([[1 / 32, 0], [0, 1 / 32], [0, 0]], f32), "sel_xy"),
             numpy_helper.from_array(np.array([[1 / 255], [0], [0]], f32), "sel_cls"),
             numpy_helper.from_array(np.array([[np.log(w / 32), np.log(h / 32), 0.9]], f32),
                                     "wh_obj"),
             numpy_helper.from_array(np.zeros((1, 79), f32), "zeros79"),
             numpy_helper.from_array(np.array([1, 8400, 85], np.int64), "shape_out")]
    nodes = [N("ReduceMean", ["images"], ["m4"], axes=[2, 3], keepdims=0),  # (1, 3)
             N("MatMul", ["m4", "sel_xy"], ["xy"]), N("MatMul", ["m4", "sel_cls"], ["cls"]),
             N("Concat", ["xy", "wh_obj", "cls", "zeros79"], ["vec"], axis=1),
             N("Mul", ["onehot", "vec"], ["grid"]),
             N("Reshape", ["grid", "shape_out"], ["output"])]
    det = _yolox_model(nodes, inits)

    sel = np.zeros((3, 133), f32)
    sel[np.arange(133) % 3, np.arange(133)] = 1.0
    bins_x = np.arange(576, dtype=f32)[None, None]
    sy = np.zeros((1, 133, 768), f32)
    sy[0, :, CHANNEL_Y_BIN] = CHANNEL_PEAKS[:, 1]
    inits = [numpy_helper.from_array(sel, "sel"), numpy_helper.from_array(bins_x, "bins"),
             numpy_helper.from_array(np.array(CHANNEL_SIMCC_SCALE, f32), "scale"),
             numpy_helper.from_array(np.array(CHANNEL_SIMCC_OFFSET, f32), "offset"),
             numpy_helper.from_array(np.array(1e-3, f32), "slope"),
             numpy_helper.from_array(CHANNEL_PEAKS[None, :, 0:1].copy(), "xpeak"),
             numpy_helper.from_array(np.array([1, 133, 1], np.int64), "shape_k1"),
             numpy_helper.from_array(sy, "sy_c"), numpy_helper.from_array(np.zeros((), f32),
                                                                          "zero")]
    nodes = [N("ReduceMean", ["input"], ["m"], axes=[2, 3], keepdims=0),  # (1, 3)
             N("MatMul", ["m", "sel"], ["mk"]),  # (1, 133): mean of channel k % 3
             N("Mul", ["mk", "scale"], ["mks"]), N("Add", ["mks", "offset"], ["t"]),
             N("Reshape", ["t", "shape_k1"], ["t3"]),
             N("Sub", ["bins", "t3"], ["d"]), N("Abs", ["d"], ["ad"]),
             N("Mul", ["ad", "slope"], ["ads"]), N("Sub", ["xpeak", "ads"], ["simcc_x"]),
             N("ReduceMean", ["input"], ["mm"], keepdims=0), N("Mul", ["mm", "zero"], ["m0"]),
             N("Add", ["sy_c", "m0"], ["simcc_y"])]
    graph = helper.make_graph(
        nodes, "pose", [helper.make_tensor_value_info("input", TensorProto.FLOAT,
                                                      [1, 3, 384, 288])],
        [helper.make_tensor_value_info("simcc_x", TensorProto.FLOAT, [1, 133, 576]),
         helper.make_tensor_value_info("simcc_y", TensorProto.FLOAT, [1, 133, 768])], inits)
    pose = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    pose.ir_version = 8
    onnx.checker.check_model(pose)
    return det.SerializeToString(), pose.SerializeToString()


LAMA_CHANNEL_GAIN = (1.0, 0.5, 0.25)


class _ChannelLama(torch.nn.Module):
    """big-LaMa's TorchScript contract (image (1,3,H,W) 0..1, mask (1,1,H,W) 1 = fill).

    Every pixel becomes ``gain[c] * mean of channel c over the pixels the mask marks as
    KNOWN`` (mask 0) of the padded input: channel-asymmetric (a swapped colour order shows),
    scale-sensitive (0..255 input clamps), and an inverted mask averages the hole instead."""

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        known = 1.0 - mask
        mean = (image * known).sum((2, 3), keepdim=True) / known.sum((2, 3), keepdim=True)
        gain = torch.tensor([1.0, 0.5, 0.25]).view(1, 3, 1, 1)
        return (mean * gain).expand_as(image).contiguous()


def channel_lama_torchscript() -> bytes:
    buf = io.BytesIO()
    torch.jit.save(torch.jit.script(_ChannelLama()), buf)
    return buf.getvalue()


class _ChannelDensePose(torch.nn.Module):
    """DensePose R50's TorchScript contract (uint8 (3, H, W) RGB -> boxes, coarse, fine, u, v):
    one box over the pixels that are not black, labelled torso front (2) when the input's
    first channel is brighter than its third, else head right (23); U = mean of channel 0 /
    255, V = mean of channel 2 / 255 over the box. Fed BGR or normalised, the labels and
    charts change."""

    def forward(self, x: torch.Tensor):
        xf = x.float()
        m = xf.sum(0) > 40.0
        ys = torch.nonzero(m.any(1)).flatten()
        xs = torch.nonzero(m.any(0)).flatten()
        n = 1 if int(ys.numel()) > 0 else 0
        boxes = torch.zeros(n, 4)
        coarse = torch.zeros(n, 2, 112, 112)
        fine = torch.zeros(n, 25, 112, 112)
        u = torch.zeros(n, 25, 112, 112)
        v = torch.zeros(n, 25, 112, 112)
        if n == 1:
            x0, x1 = int(xs.min()), int(xs.max()) + 1
            y0, y1 = int(ys.min()), int(ys.max()) + 1
            boxes[0] = torch.tensor([float(x0), float(y0), float(x1), float(y1)])
            inside = xf[:, y0:y1, x0:x1].mean((1, 2))
            coarse[:, 1] = 1.0
            part = 2 if bool(inside[0] > inside[2]) else 23
            fine[:, part] = 5.0
            u[:] = inside[0] / 255.0
            v[:] = inside[2] / 255.0
        return boxes, coarse, fine, u, v


def channel_densepose_torchscript() -> bytes:
    buf = io.BytesIO()
    torch.jit.save(torch.jit.script(_ChannelDensePose()), buf)
    return buf.getvalue()
