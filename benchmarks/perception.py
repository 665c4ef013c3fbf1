"""Per-frame time of each perception backend on 512x320 (H x W) frames of the astronaut photo.

    python benchmarks/perception.py [--frames 5]

Backends whose real weights are not on disk run with weights this script GENERATES (random
values in the exact architecture for OpenPose; constant-output ONNX/TorchScript with the
DWPose / DensePose signatures). The output says which: OpenPose with random weights measures
the real body network's cost (it then finds nobody, so the hand/face networks do not run);
the DWPose and DensePose stand-ins only measure our pre/post-processing, not the networks.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import io
import logging
import math
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def _frames(n: int) -> torch.Tensor:
    import cv2
    from skimage import data

    from dance_reenact.nodes.sockets import rgb_uint8_to_image

    img = data.astronaut()[:, 56:376]  # 512 x 320 portrait crop around her
    frames = []
    for i in range(n):  # a slowly shifting camera so the video is not one repeated frame
        m = np.float32([[1, 0, i * 2], [0, 1, i]])
        frames.append(cv2.warpAffine(img, m, (320, 512), borderMode=cv2.BORDER_REFLECT))
    return rgb_uint8_to_image(frames)


def _install(root: Path, name: str, data: bytes) -> None:
    from dance_reenact.models.io import weights

    spec = weights.REGISTRY[name]
    (root / spec.disk_name).write_bytes(data)
    weights.REGISTRY[name] = dataclasses.replace(  # type: ignore[index]
        spec, sha256=hashlib.sha256(data).hexdigest(), size=len(data))


def _gen_openpose(root: Path) -> None:
    from controlnet_aux.open_pose.face import FaceNet
    from controlnet_aux.open_pose.model import bodypose_model, handpose_model

    for name, model, strip in (("openpose_body", bodypose_model(), True),
                               ("openpose_hand", handpose_model(), True),
                               ("openpose_face", FaceNet(), False)):
        state = {(".".join(k.split(".")[1:]) if strip else k): v * 0.01
                 for k, v in model.state_dict().items()}
        buf = io.BytesIO()
        torch.save(state, buf)
        _install(root, name, buf.getvalue())


def _const_onnx(in_name: str, in_shape, outputs: dict[str, np.ndarray]) -> bytes:
    from onnx import TensorProto, helper, numpy_helper

    nodes = [helper.make_node("ReduceMean", [in_name], ["m"], keepdims=0),
             helper.make_node("Mul", ["m", "zero"], ["m0"])]
    inits = [numpy_helper.from_array(np.zeros((), np.float32), "zero")]
    outs = []
    for name, value in outputs.items():
        inits.append(numpy_helper.from_array(value.astype(np.float32), f"{name}_c"))
        nodes.append(helper.make_node("Add", [f"{name}_c", "m0"], [name]))
        outs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, list(value.shape)))
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(
        in_name, TensorProto.FLOAT, list(in_shape))], outs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model.SerializeToString()


def _gen_dwpose(root: Path) -> None:
    det = np.zeros((1, 8400, 85), np.float32)
    det[0, 8000 + 8 * 20 + 10, :6] = (0, 0, math.log(6), math.log(12), 0.9, 0.95)  # one person
    sx = np.zeros((1, 133, 576), np.float32)
    sy = np.zeros((1, 133, 768), np.float32)
    sx[0, :, 288] = 0.9
    sy[0, :, 300] = 0.9
    _install(root, "dwpose_detector", _const_onnx("images", (1, 3, 640, 640), {"output": det}))
    _install(root, "dwpose_wholebody", _const_onnx("input", (1, 3, 384, 288),
                                                   {"simcc_x": sx, "simcc_y": sy}))


class _ContractDensePose(torch.nn.Module):
    def forward(self, x: torch.Tensor):
        h, w = x.shape[1], x.shape[2]
        boxes = torch.tensor([[w * 0.2, h * 0.1, w * 0.8, h * 0.95]])
        fine = torch.zeros(1, 25, 112, 112)
        fine[:, 2] = 1.0
        return (boxes, torch.ones(1, 2, 112, 112).cumsum(1), fine,
                torch.full((1, 25, 112, 112), 0.5), torch.full((1, 25, 112, 112), 0.5))


def _gen_densepose(root: Path) -> None:
    buf = io.BytesIO()
    torch.jit.save(torch.jit.script(_ContractDensePose()), buf)
    _install(root, "densepose_r50", buf.getvalue())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=5)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    from dance_reenact.models.io import weights
    from dance_reenact.models.perception.pose import POSE_WEIGHTS
    from dance_reenact.nodes.perception import DensePoseNode, OpenPose

    tmp = Path(tempfile.mkdtemp(prefix="perception-bench-"))
    generated: set[str] = set()

    def ensure(names: tuple[str, ...], gen) -> None:
        if all(weights.find_local(weights.REGISTRY[n]) is not None for n in names):
            return
        os.environ[weights.ENV_MODELS_DIR] = str(tmp)
        gen(tmp)
        generated.update(names)

    ensure(POSE_WEIGHTS["openpose"], _gen_openpose)
    ensure(POSE_WEIGHTS["dwpose"], _gen_dwpose)
    ensure(("densepose_r50",), _gen_densepose)

    video = _frames(args.frames + 1)
    print(f"perception backends, {args.frames} frames of 512x320 (H x W), "
          f"torch threads {torch.get_num_threads()}, device cpu")

    def timeit(label: str, fn, note: str = "") -> None:
        fn(video[:1])  # warm-up: loading, graph construction
        t = time.perf_counter()
        fn(video[1:])
        ms = (time.perf_counter() - t) * 1000 / args.frames
        print(f"  {label:<34} {ms:8.1f} ms/frame  {note}")

    op = OpenPose()
    for backend in ("mediapipe", "openpose", "dwpose"):
        gen = bool(set(POSE_WEIGHTS[backend]) & generated)
        note = {"mediapipe": "real models (wheel)",
                "openpose": "GENERATED random weights: body net cost only (finds nobody)"
                if gen else "real weights",
                "dwpose": "GENERATED constant ONNX: pre/post-processing only"
                if gen else "real weights"}[backend]
        timeit(f"OpenPose node, {backend}",
               lambda v, b=backend: op.detect(v, backend=b, on_no_person="empty"), note)
    frames, _, mask, _, _ = op.detect(video, backend="mediapipe", on_no_person="empty")
    dp = DensePoseNode()
    timeit("DensePose weightless (given pose)",
           lambda v: dp.estimate(v, pose_keypoint=frames[-len(v):], person_mask=mask[-len(v):],
                                 on_no_person="empty"), "keypoints + mask from OpenPose")
    timeit("DensePose weightless (+mediapipe)",
           lambda v: dp.estimate(v, on_no_person="empty"), "runs MediaPipe itself")
    gen = "densepose_r50" in generated
    timeit("DensePose densepose_r50",
           lambda v: dp.estimate(v, backend="densepose_r50", on_no_person="empty"),
           "GENERATED TorchScript with the R50 contract: pre/post-processing only"
           if gen else "real weights")


if __name__ == "__main__":
    main()
