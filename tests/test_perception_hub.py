"""Hub backends (openpose, dwpose, densepose_r50) through the REAL registry and loaders, with
weight files these tests generate for the exact architectures/signatures: served by the
loopback Hub or placed in the weights folder. No real weights are needed."""

from __future__ import annotations

import dataclasses
import io
import math

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from dance_reenact.models.core.cache import model_cache
from dance_reenact.models.core.schema import BODY, DENSEPOSE_COLORS, DENSEPOSE_PART
from dance_reenact.models.io import weights
from dance_reenact.models.perception import pose as pose_mod
from dance_reenact.nodes import perception as perc
from dance_reenact.nodes.runtime import NodeInputError
from dance_reenact.nodes.sockets import DensePose, rgb_uint8_to_image


@pytest.fixture(autouse=True)
def _fresh_caches():
    pose_mod.clear_cache()
    model_cache().clear(perc.DENSEPOSE_KIND)
    yield
    pose_mod.clear_cache()
    model_cache().clear(perc.DENSEPOSE_KIND)


def _serve(hub, monkeypatch, name: str, data: bytes) -> None:
    """Put ``data`` on the loopback Hub where registry entry ``name`` points, pinned by its
    sha256 (the real entries pin the real files' hashes)."""
    spec = weights.REGISTRY[name]
    sha = hub.add(spec.repo_id, spec.filename, data, revision=spec.revision)
    monkeypatch.setitem(weights.REGISTRY, name,
                        dataclasses.replace(spec, sha256=sha, size=len(data)))


def _place(weights_dir, monkeypatch, name: str, data: bytes) -> None:
    """Drop ``data`` into the weights folder by hand under the entry's file name."""
    import hashlib

    spec = weights.REGISTRY[name]
    (weights_dir / spec.disk_name).write_bytes(data)
    monkeypatch.setitem(weights.REGISTRY, name, dataclasses.replace(
        spec, sha256=hashlib.sha256(data).hexdigest(), size=len(data)))


# --------------------------------------------------------------------------------------------
# DWPose: ONNX files with DWPose's input/output signature and crafted constant outputs
# --------------------------------------------------------------------------------------------

def _const_model(in_name: str, in_shape, outputs: dict[str, np.ndarray]) -> bytes:
    """An ONNX graph: every output = constant + 0 * mean(input) (so it depends on the input)."""
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
    onnx.checker.check_model(model)
    return model.SerializeToString()


# Frame 320x240; person boxes in frame pixels (x0, y0, x1, y1).
BOX_A = (110.0, 20.0, 210.0, 220.0)
BOX_B = (10.0, 40.0, 70.0, 160.0)


def _yolox_output(boxes) -> np.ndarray:
    """(1, 8400, 85) YOLOX raw output with one stride-32 anchor per box (frame 320x240 ->
    letterbox ratio 2), plus an NMS duplicate and a confident non-person box."""
    out = np.zeros((1, 8400, 85), np.float32)
    ratio = 2.0

    def put(anchor_gx, anchor_gy, box, cls, score):
        x0, y0, x1, y1 = (v * ratio for v in box)
        cx, cy, w, h = (x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0
        i = 8000 + anchor_gy * 20 + anchor_gx
        out[0, i, :4] = (cx / 32 - anchor_gx, cy / 32 - anchor_gy, math.log(w / 32),
                         math.log(h / 32))
        out[0, i, 4] = score
        out[0, i, 5 + cls] = 0.95

    for k, box in enumerate(boxes):
        put(10 + k, 7, box, 0, 0.9 - 0.1 * k)
    put(3, 3, boxes[0], 0, 0.5)  # duplicate of box 0 with a lower score: removed by NMS
    put(15, 15, (250, 200, 300, 230), 2, 0.99)  # a car: not a person
    return out


def _keypoint_targets() -> tuple[np.ndarray, np.ndarray]:
    """Where each of the 133 keypoints should land in BOX_A's frame, and its score."""
    k = np.arange(133)
    loc = np.stack([120 + (k % 10) * 8.0, 10 + (k // 10) * 14.0], 1)
    score = np.full(133, 0.9, np.float32)
    score[15] = 0.1  # COCO left ankle: below DWPose's 0.3 threshold -> missing
    return loc, score


def _simcc_output(box) -> tuple[np.ndarray, np.ndarray]:
    """simcc_x (1, 133, 576), simcc_y (1, 133, 768) peaking where _keypoint_targets are, for
    RTMPose's 1.25x padded, aspect-fixed crop of ``box`` at 288x384."""
    loc, score = _keypoint_targets()
    x0, y0, x1, y1 = box
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    bw, bh = (x1 - x0) * 1.25, (y1 - y0) * 1.25
    if bw > bh * 0.75:
        bh = bw / 0.75
    else:
        bw = bh * 0.75
    crop = (loc - [cx - bw / 2, cy - bh / 2]) * [288 / bw, 384 / bh]
    sx = np.zeros((1, 133, 576), np.float32)
    sy = np.zeros((1, 133, 768), np.float32)
    for i in range(133):
        sx[0, i, int(round(crop[i, 0] * 2))] = score[i]
        sy[0, i, int(round(crop[i, 1] * 2))] = score[i]
    return sx, sy


def _dwpose_files(boxes=(BOX_A,)) -> tuple[bytes, bytes]:
    det = _const_model("images", (1, 3, 640, 640), {"output": _yolox_output(boxes)})
    sx, sy = _simcc_output(BOX_A)
    pose = _const_model("input", (1, 3, 384, 288), {"simcc_x": sx, "simcc_y": sy})
    return det, pose


def _frame(h=240, w=320) -> torch.Tensor:
    rng = np.random.default_rng(0)
    return rgb_uint8_to_image(rng.integers(0, 255, (h, w, 3), dtype=np.uint8))


def test_dwpose_through_hub_decodes_keypoints(hub, monkeypatch):
    det, pose = _dwpose_files()
    _serve(hub, monkeypatch, "dwpose_detector", det)
    _serve(hub, monkeypatch, "dwpose_wholebody", pose)
    frames, stick, mask, counts, _ = perc.OpenPose().detect(_frame(), backend="dwpose",
                                                         derive_missing_hands=False)
    assert counts == "1"  # the duplicate box is suppressed, the car ignored
    assert len(frames) == 1 and frames[0]["canvas_width"] == 320
    p = frames[0]["people"][0]
    body = np.asarray(p["pose_keypoints_2d"]).reshape(18, 3)
    loc, _ = _keypoint_targets()
    # OpenPose right shoulder <- COCO 6, right eye <- COCO 2, left ear <- COCO 3.
    for op, coco in ((BODY["right_shoulder"], 6), (BODY["right_eye"], 2),
                     (BODY["left_ear"], 3), (BODY["nose"], 0)):
        assert np.allclose(body[op, :2], loc[coco], atol=1.5), (op, body[op], loc[coco])
        assert body[op, 2] > 0.3
    assert np.allclose(body[BODY["neck"], :2], (loc[5] + loc[6]) / 2, atol=1.5)
    assert body[BODY["left_ankle"], 2] == 0  # COCO 15 had score 0.1
    face = np.asarray(p["face_keypoints_2d"]).reshape(70, 3)
    assert np.allclose(face[0, :2], loc[23], atol=1.5) and np.allclose(face[67, :2], loc[90],
                                                                        atol=1.5)
    assert np.allclose(face[68, :2], loc[23 + 36:23 + 42].mean(0), atol=1.5)  # pupil
    lh = np.asarray(p["hand_left_keypoints_2d"]).reshape(21, 3)
    rh = np.asarray(p["hand_right_keypoints_2d"]).reshape(21, 3)
    assert np.allclose(lh[:, :2], loc[91:112], atol=1.5)
    assert np.allclose(rh[:, :2], loc[112:133], atol=1.5)
    # Stick figure at the input size, something drawn; mask from keypoints around the body.
    assert stick.shape == (1, 240, 320, 3) and float(stick.max()) > 0.5
    assert mask.shape == (1, 240, 320) and set(np.unique(mask.numpy())) <= {0.0, 1.0}
    x, y = body[BODY["neck"], :2].astype(int)
    assert mask[0, y, x] == 1 and mask[0, 230, 5] == 0


def test_dwpose_two_people_selection(hub, monkeypatch):
    det, pose = _dwpose_files(boxes=(BOX_A, BOX_B))
    _serve(hub, monkeypatch, "dwpose_detector", det)
    _serve(hub, monkeypatch, "dwpose_wholebody", pose)
    node = perc.OpenPose()
    frames, _, _, counts, _ = node.detect(_frame(), backend="dwpose", people="all")
    assert counts == "2" and len(frames[0]["people"]) == 2
    frames, _, _, _, _ = node.detect(_frame(), backend="dwpose", people="largest")
    assert len(frames[0]["people"]) == 1
    # index counts from the left: person 0 is BOX_B's (x < 80).
    frames, _, _, _, _ = node.detect(_frame(), backend="dwpose", people="index", person_index=0)
    body = np.asarray(frames[0]["people"][0]["pose_keypoints_2d"]).reshape(18, 3)
    assert body[body[:, 2] > 0, 0].max() < 80
    with pytest.raises(NodeInputError, match="person_index.*has 2 people"):
        node.detect(_frame(), backend="dwpose", people="index", person_index=2)


def test_dwpose_missing_weights_offline_gives_clear_error(monkeypatch):
    monkeypatch.setenv("DANCE_REENACT_OFFLINE", "1")
    with pytest.raises(weights.WeightError, match=r"yzd-v/DWPose.*not available.*offline"):
        perc.OpenPose().detect(_frame(), backend="dwpose")


def test_dwpose_wrong_file_gives_clear_error(weights_dir, monkeypatch):
    _place(weights_dir, monkeypatch, "dwpose_detector", b"not an onnx file" * 10)
    _place(weights_dir, monkeypatch, "dwpose_wholebody", b"nope" * 10)
    with pytest.raises(weights.WeightError, match="not a loadable ONNX model"):
        perc.OpenPose().detect(_frame(), backend="dwpose")


# --------------------------------------------------------------------------------------------
# OpenPose: controlnet_aux's networks with random weights saved the way Annotators ships them
# --------------------------------------------------------------------------------------------

def _state_bytes(state: dict) -> bytes:
    buf = io.BytesIO()
    torch.save({k: v.half() for k, v in state.items()}, buf)  # fp16 keeps the files small
    return buf.getvalue()


@pytest.fixture(scope="module")
def openpose_files():
    from controlnet_aux.open_pose.face import FaceNet
    from controlnet_aux.open_pose.model import bodypose_model, handpose_model

    torch.manual_seed(0)

    def annotators_keys(model) -> dict:  # the files lack the first key component
        out = {}
        for k, v in model.state_dict().items():
            out[".".join(k.split(".")[1:])] = v * 0.01
        return out

    return {"openpose_body": _state_bytes(annotators_keys(bodypose_model())),
            "openpose_hand": _state_bytes(annotators_keys(handpose_model())),
            "openpose_face": _state_bytes({k: v * 0.01 for k, v in
                                           FaceNet().state_dict().items()})}


@pytest.mark.slow
def test_openpose_loads_registry_files_and_runs(weights_dir, monkeypatch, openpose_files):
    for name, data in openpose_files.items():
        _place(weights_dir, monkeypatch, name, data)
    est = pose_mod.PoseEstimator("openpose", hands=True, face=True)
    det = est._run.detector
    # The networks hold exactly the file's values.
    w = det.body_estimation.model.model0.conv1_1.weight
    ref = torch.load(io.BytesIO(openpose_files["openpose_body"]), weights_only=True)
    assert torch.equal(w, ref["conv1_1.weight"].float())
    # Random small weights find nobody; the node reports it both ways.
    frames, stick, mask, counts, _ = perc.OpenPose().detect(_frame(96, 128), backend="openpose",
                                                         on_no_person="empty")
    assert counts == "0" and frames[0]["people"] == [] and float(stick.max()) == 0.0
    assert mask.shape == (1, 96, 128) and float(mask.max()) == 0.0
    with pytest.raises(NodeInputError, match="no person was found in the image"):
        perc.OpenPose().detect(_frame(96, 128), backend="openpose")
    # The hand and face networks are built and run: 22 hand maps (21 + background), 71 face
    # maps (70 + background) at stride 8. (controlnet_aux's multi-scale hand search on full
    # crops takes a minute on CPU, so the networks are called directly here.)
    with torch.no_grad():
        hand_out = det.hand_estimation.model(torch.zeros(1, 3, 64, 64))
        face_out = det.face_estimation.model(torch.zeros(1, 3, 64, 64))
    assert tuple(hand_out.shape) == (1, 22, 8, 8)
    last = face_out[-1] if isinstance(face_out, (list, tuple)) else face_out
    assert tuple(last.shape) == (1, 71, 8, 8)


def test_openpose_wrong_architecture_names_parameter(weights_dir, monkeypatch, openpose_files):
    from controlnet_aux.open_pose.model import handpose_model

    # A hand checkpoint where the body file should be.
    _place(weights_dir, monkeypatch, "openpose_body", openpose_files["openpose_hand"])
    for name in ("openpose_hand", "openpose_face"):
        _place(weights_dir, monkeypatch, name, openpose_files[name])
    assert handpose_model  # imported above to make the intent explicit
    with pytest.raises(weights.WeightError, match="not an OpenPose checkpoint.*missing"):
        perc.OpenPose().detect(_frame(), backend="openpose")


def test_openpose_corrupt_file_rejected_by_sha256(weights_dir):
    # The real registry pins the real file's sha256: a truncated/other file is refused.
    (weights_dir / "body_pose_model.pth").write_bytes(b"\0" * 1000)
    with pytest.raises(weights.WeightError, match="lllyasviel/Annotators/body_pose_model.pth"):
        perc.OpenPose().detect(_frame(), backend="openpose")


# --------------------------------------------------------------------------------------------
# DensePose TorchScript: a scripted module with the R50-FPN's input/output contract
# --------------------------------------------------------------------------------------------

class _FakeDensePose(torch.nn.Module):
    """uint8 (3, H, W) -> (boxes (N,4) xyxy, coarse (N,2,112,112), fine (N,25,112,112),
    u (N,25,112,112), v (N,25,112,112)); one box over the central half when the image is not
    black: its left half part 2 (torso front), right half part 23 (head right)."""

    def forward(self, x: torch.Tensor):
        h, w = x.shape[1], x.shape[2]
        n = 1 if bool(x.float().mean() > 5.0) else 0
        boxes = torch.tensor([[w * 0.25, h * 0.25, w * 0.75, h * 0.75]]).repeat(n, 1)
        coarse = torch.zeros(n, 2, 112, 112)
        coarse[:, 1] = 1.0
        fine = torch.zeros(n, 25, 112, 112)
        fine[:, 2, :, :56] = 5.0
        fine[:, 23, :, 56:] = 5.0
        u = torch.full((n, 25, 112, 112), 0.25)
        v = torch.full((n, 25, 112, 112), 0.75)
        return boxes, coarse, fine, u, v


def _torchscript_bytes() -> bytes:
    buf = io.BytesIO()
    torch.jit.save(torch.jit.script(_FakeDensePose()), buf)
    return buf.getvalue()


def test_densepose_r50_contract_through_hub(hub, monkeypatch):
    _serve(hub, monkeypatch, "densepose_r50", _torchscript_bytes())
    img = np.full((200, 300, 3), 128, np.uint8)
    dp, preview, _ = perc.DensePoseNode().estimate(rgb_uint8_to_image(img), backend="densepose_r50")
    assert isinstance(dp, DensePose) and dp.index.shape == (1, 200, 300)
    idx = dp.index[0].numpy()
    # The box covers the central half of the (resized, padded) frame.
    assert idx[:40].max() == 0 and idx[:, :60].max() == 0 and idx[170:].max() == 0
    assert idx[100, 110] == DENSEPOSE_PART["torso_front"]
    assert idx[100, 190] == DENSEPOSE_PART["head_right"]
    fg = idx > 0
    assert 0.15 < fg.mean() < 0.35
    assert np.allclose(dp.u[0].numpy()[fg], 0.25, atol=1e-4)
    assert np.allclose(dp.v[0].numpy()[fg], 0.75, atol=1e-4)
    assert (dp.u[0].numpy()[~fg] == 0).all()
    pv = (preview[0].numpy() * 255).round().astype(np.uint8)
    assert (pv[100, 110] == DENSEPOSE_COLORS[2]).all() and (pv[5, 5] == DENSEPOSE_COLORS[0]).all()


def test_densepose_r50_no_person_and_empty(hub, monkeypatch):
    _serve(hub, monkeypatch, "densepose_r50", _torchscript_bytes())
    black = torch.zeros(2, 64, 64, 3)
    with pytest.raises(NodeInputError, match="no person was found in frame 0 of 2"):
        perc.DensePoseNode().estimate(black, backend="densepose_r50", on_no_person="error")
    with pytest.raises(NodeInputError, match="no person was found in any of the 2 frames"):
        perc.DensePoseNode().estimate(black, backend="densepose_r50")  # nothing to hold
    dp, preview, _ = perc.DensePoseNode().estimate(black, backend="densepose_r50",
                                                on_no_person="empty")
    assert len(dp) == 2 and int(dp.index.max()) == 0 and preview.shape == (2, 64, 64, 3)


def test_densepose_r50_truncated_download_is_refused(hub, monkeypatch):
    data = _torchscript_bytes()
    spec = weights.REGISTRY["densepose_r50"]
    hub.add(spec.repo_id, spec.filename, data[: len(data) // 2], revision=spec.revision)
    # The real pinned sha256 does not match the truncated bytes: nothing is loaded.
    with pytest.raises(weights.WeightError, match="corrupt"):
        perc.DensePoseNode().estimate(_frame(), backend="densepose_r50")
    assert not (weights.search_roots()[0] / spec.disk_name).exists()


# --------------------------------------------------------------------------------------------
# DWPose against upstream's pre/post-processing: stand-ins that react to what they are fed
# --------------------------------------------------------------------------------------------

def _dwpose_runner(tmp_path, det: bytes, pose: bytes):
    from dance_reenact.models.perception.dwpose import DWPoseOnnx

    (tmp_path / "det.onnx").write_bytes(det)
    (tmp_path / "pose.onnx").write_bytes(pose)
    return DWPoseOnnx(tmp_path / "det.onnx", tmp_path / "pose.onnx",
                      providers=["CPUExecutionProvider"])


RGB = (200, 230, 30)  # a frame of one colour: each channel's mean is known exactly


def test_dwpose_detector_gets_upstreams_rgb_0_255_letterbox(tmp_path):
    from weight_fakes import CHANNEL_BOX_WH, dwpose_channel_files

    run = _dwpose_runner(tmp_path, *dwpose_channel_files())
    frame = np.empty((640, 640, 3), np.uint8)
    frame[:] = RGB
    boxes = run.detect_boxes(frame)
    # The stand-in centres its box on (mean of channel 0, mean of channel 1) of its input:
    # RGB order, 0..255, no normalisation (upstream feeds the detector the RGB frame as is).
    # Fed BGR, channel 0 would be 30 and the person score 0.9 * 30 / 255 < 0.3: no box.
    assert boxes.shape == (1, 4)
    w, h = CHANNEL_BOX_WH
    assert np.allclose(boxes[0], (RGB[0] - w / 2, RGB[1] - h / 2, RGB[0] + w / 2,
                                  RGB[1] + h / 2), atol=0.5)
    # Letterbox: a 320x320 frame is scaled 2x; the box comes back in frame pixels.
    boxes = run.detect_boxes(frame[:320, :320])
    assert np.allclose(boxes[0], np.array([RGB[0] - w / 2, RGB[1] - h / 2, RGB[0] + w / 2,
                                           RGB[1] + h / 2]) / 2, atol=0.5)


def test_dwpose_pose_input_is_rgb_imagenet_normalised_and_score_is_min(tmp_path):
    from weight_fakes import (
        CHANNEL_PEAKS,
        CHANNEL_SIMCC_OFFSET,
        CHANNEL_SIMCC_SCALE,
        CHANNEL_Y_BIN,
        dwpose_channel_files,
    )

    from dance_reenact.models.perception.dwpose import MEAN, STD

    run = _dwpose_runner(tmp_path, *dwpose_channel_files())
    frame = np.empty((640, 640, 3), np.uint8)
    frame[:] = RGB
    (box,) = run.detect_boxes(frame)  # (140, 150, 260, 310): its 1.25x crop stays inside
    loc, score = run.keypoints(frame, box)
    # Invert the crop (1.25x box, aspect 288:384 -> 150x200 frame pixels at (200, 230)).
    x0, y0 = RGB[0] - 75.0, RGB[1] - 100.0
    crop_x = (loc[:, 0] - x0) * 288 / 150
    crop_y = (loc[:, 1] - y0) * 384 / 200
    seen = (2 * crop_x - CHANNEL_SIMCC_OFFSET) / CHANNEL_SIMCC_SCALE
    expected = ((np.array(RGB, np.float32) - MEAN) / STD)[np.arange(133) % 3]
    assert np.allclose(seen, expected, atol=0.015), (seen[:3], expected[:3])
    assert np.allclose(crop_y, CHANNEL_Y_BIN / 2, atol=0.01)
    # get_simcc_maximum: the smaller of the x and y maxima, not their mean.
    assert np.allclose(score, CHANNEL_PEAKS.min(1), atol=1e-3)
    dets = run(frame)
    assert len(dets) == 1
    person = dets[0].person
    assert person.body[BODY["nose"], 2] == 0  # min 0.25 < 0.3 (the mean 0.575 would pass)
    assert person.body[BODY["left_shoulder"], 2] == pytest.approx(0.32, abs=1e-3)
    assert person.body[BODY["neck"], 2] == pytest.approx(0.32, abs=1e-3)
    assert np.allclose(person.face[:68, 2], 0.6, atol=1e-3)
    # a frame with the channels swapped moves every x keypoint (BGR vs RGB is visible)
    loc_bgr, _ = run.keypoints(frame[..., ::-1].copy(), box)
    assert np.abs(loc_bgr[0, 0] - loc[0, 0]) > 10


def test_simcc_maximum_matches_mmpose():
    from dance_reenact.models.perception.dwpose import simcc_maximum, wholebody_to_person

    sx = np.zeros((3, 8), np.float32)
    sy = np.zeros((3, 10), np.float32)
    sx[0, 5], sy[0, 2] = 0.8, 0.4  # score min(0.8, 0.4) = 0.4
    sx[1, 1], sy[1, 7] = 0.2, 0.9  # 0.2
    sx[2], sy[2] = -1.0, -1.0  # no positive response: location -1 as upstream marks it
    sx[2, 3] = -0.5
    loc, val = simcc_maximum(sx, sy, 2.0, 2.0)
    assert np.allclose(val, [0.4, 0.2, -1.0])
    assert np.allclose(loc, [[2.5, 1.0], [0.5, 3.5], [-0.5, -0.5]])
    # visibility: body ``score > 0.3``, face/hands ``not score < 0.3`` (annotator __init__)
    loc133 = np.full((133, 2), 10.0, np.float32)
    sc = np.full(133, 0.3, np.float32)
    p = wholebody_to_person(loc133, sc)
    assert p.body[BODY["nose"], 2] == 0 and p.face[0, 2] == pytest.approx(0.3)


def test_dwpose_detector_class_aware_like_upstream(tmp_path):
    """A box is a person when its person score passes, whatever its best class; another
    class's box never suppresses a person; person boxes scoring 0.1..0.3 are dropped."""
    out = np.zeros((1, 8400, 85), np.float32)

    def put(i, gx, gy, box, obj, probs):
        x0, y0, x1, y1 = box
        out[0, i, :4] = ((x0 + x1) / 64 - gx, (y0 + y1) / 64 - gy, math.log((x1 - x0) / 32),
                         math.log((y1 - y0) / 32))
        out[0, i, 4] = obj
        for c, p in probs.items():
            out[0, i, 5 + c] = p

    put(8000, 0, 0, (100, 100, 300, 500), 0.9, {0: 0.95})  # a person
    put(8001, 1, 0, (400, 100, 600, 500), 0.9, {0: 0.5, 56: 0.8})  # best class chair: kept
    put(8002, 2, 0, (105, 100, 300, 500), 0.99, {0: 0.2, 2: 0.99})  # a car over the person
    put(8003, 3, 0, (20, 520, 200, 630), 0.9, {0: 0.25})  # person score 0.225: dropped
    det = _const_model("images", (1, 3, 640, 640), {"output": out})
    sx, sy = _simcc_output(BOX_A)
    pose = _const_model("input", (1, 3, 384, 288), {"simcc_x": sx, "simcc_y": sy})
    run = _dwpose_runner(tmp_path, det, pose)
    boxes = run.detect_boxes(np.zeros((640, 640, 3), np.uint8))
    assert np.allclose(boxes, [[100, 100, 300, 500], [400, 100, 600, 500]], atol=0.5)
