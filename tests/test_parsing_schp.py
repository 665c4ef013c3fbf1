"""SCHP LIP (the paper's parser): exact architecture, strict loading through the registry from a
loopback Hub, SCHP's inference pipeline, LIP -> schema mapping and hand painting.

The real checkpoint cannot be downloaded here, so a session fixture builds a FULL-SIZE random
checkpoint of the exact architecture, saved like SCHP's (a dict whose 'state_dict' keys carry
DataParallel's 'module.' prefix, legacy torch serialisation). Its size matching the published
file to a few bytes is the check that every parameter name and shape agrees with SCHP's.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import time
from collections import OrderedDict

import cv2
import numpy as np
import pytest
import torch

from dance_reenact.models.core.schema import LABEL, LIP_TO_SCHEMA, Person
from dance_reenact.models.io import weights
from dance_reenact.models.io.weights import WeightError
from dance_reenact.models.perception import schp
from dance_reenact.models.perception.human_parsing import HumanParser, lip_to_schema

logger = logging.getLogger(__name__)
SPEC = weights.REGISTRY["schp_lip"]
REAL_SIZE = 267449349  # bytes of exp-schp-201908261155-lip.pth (WEIGHTS.md row 10)


def _checkpoint_bytes(state: dict[str, torch.Tensor], legacy: bool = True) -> bytes:
    buf = io.BytesIO()
    sd = OrderedDict(("module." + k, v) for k, v in state.items())
    torch.save({"state_dict": sd}, buf, _use_new_zipfile_serialization=not legacy)
    return buf.getvalue()


@pytest.fixture(scope="session")
def schp_checkpoint(astronaut):
    """(bytes, state dict) of a random full-size SCHP LIP checkpoint; built once (~3 s)."""
    t0 = time.perf_counter()
    net = schp.random_schp([astronaut, astronaut[::-1].copy()], seed=0)
    state = {k: v.detach().clone() for k, v in net.state_dict().items()}
    data = _checkpoint_bytes(state)
    logger.warning("generated SCHP checkpoint: %d bytes in %.1f s", len(data),
                   time.perf_counter() - t0)
    return data, state


@pytest.fixture
def served_spec(hub, schp_checkpoint):
    data, _ = schp_checkpoint
    sha = hub.add(SPEC.repo_id, SPEC.filename, data, revision=SPEC.revision)
    return dataclasses.replace(SPEC, sha256=sha, size=len(data))


def test_architecture_matches_the_published_checkpoint(schp_checkpoint):
    data, state = schp_checkpoint
    # Same serialisation as the 2019 file: only a few bytes of dict framing may differ.
    assert abs(len(data) - REAL_SIZE) <= 64, len(data) - REAL_SIZE
    assert len(state) == 603
    n_params = sum(v.numel() for v in state.values())
    assert n_params == 66_838_456
    # Names SCHP's own code produces (misspellings included) and their shapes.
    expect = {
        "conv1.weight": (64, 3, 3, 3), "bn3.running_var": (128,),
        "layer3.22.conv2.weight": (256, 256, 3, 3), "layer4.0.downsample.1.weight": (2048,),
        "context_encoding.stages.3.1.weight": (512, 2048, 1, 1),
        "context_encoding.bottleneck.0.weight": (512, 4096, 3, 3),
        "edge.conv5.weight": (2, 6, 1, 1), "decoder.conv3.2.weight": (256, 256, 1, 1),
        "decoder.conv4.bias": (20,), "fushion.3.weight": (20, 256, 1, 1),
    }
    for k, shape in expect.items():
        assert tuple(state[k].shape) == shape, k
    assert not any("num_batches_tracked" in k for k in state)


def test_layer4_is_dilated_output_stride_16():
    net = schp.SCHPNet(layers=(1, 1, 1, 1)).eval()
    conv = net.layer4[0].conv2
    assert conv.dilation == (2, 2) and conv.stride == (1, 1)
    with torch.inference_mode():
        parsing, fusion, edge = net(torch.zeros(1, 3, 473, 473))
    assert parsing.shape == fusion.shape == (1, 20, 119, 119) and edge.shape == (1, 2, 119, 119)


def test_abn_is_batchnorm_then_leaky_relu():
    abn = schp.ABN(3).eval()
    abn.running_mean.copy_(torch.tensor([1.0, 0.0, -1.0]))
    abn.running_var.copy_(torch.tensor([4.0, 1.0, 0.25]))
    abn.weight.data.copy_(torch.tensor([1.0, 2.0, 1.0]))
    abn.bias.data.copy_(torch.tensor([0.0, -1.0, 0.5]))
    x = torch.tensor([-3.0, 0.25, -1.0]).view(1, 3, 1, 1)
    bn = (x.view(3) - abn.running_mean) / torch.sqrt(abn.running_var + 1e-5) * abn.weight.data \
        + abn.bias.data
    expected = torch.where(bn > 0, bn, 0.01 * bn)
    assert torch.allclose(abn(x).view(3), expected, atol=1e-5)
    assert torch.allclose(schp.ABN(3, activation="none").eval()(x), x, atol=1e-4)


def _reference_affine(center, scale, out_size):
    """SCHP's utils/transforms.get_affine_transform (rot=0), three-point construction."""
    src_w, dst_w, dst_h = scale[0], out_size[1], out_size[0]
    src = np.zeros((3, 2), np.float32)
    dst = np.zeros((3, 2), np.float32)
    src[0] = center
    src[1] = center + np.array([0, src_w * -0.5])
    dst[0] = [(dst_w - 1) * 0.5, (dst_h - 1) * 0.5]
    dst[1] = dst[0] + np.array([0, (dst_w - 1) * -0.5])

    def third(a, b):
        d = a - b
        return b + np.array([-d[1], d[0]], np.float32)

    src[2], dst[2] = third(src[0], src[1]), third(dst[0], dst[1])
    return cv2.getAffineTransform(src, dst), cv2.getAffineTransform(dst, src)


def _reference_parse(net, rgb):
    """SCHP's simple_extractor.py for one image, written out independently."""
    h, w = rgb.shape[:2]
    bw, bh = w - 1.0, h - 1.0
    center = np.array([bw * 0.5, bh * 0.5], np.float32)
    bw, bh = max(bw, bh), max(bw, bh)
    trans, inv = _reference_affine(center, np.array([bw, bh], np.float32), (473, 473))
    inp = cv2.warpAffine(rgb[..., ::-1].copy(), trans, (473, 473), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
    x = torch.from_numpy(inp).permute(2, 0, 1).float() / 255
    x = (x - torch.tensor([0.406, 0.456, 0.485]).view(3, 1, 1)) / \
        torch.tensor([0.225, 0.224, 0.229]).view(3, 1, 1)
    with torch.no_grad():
        out = net(x[None])[1]
    up = torch.nn.functional.interpolate(out, size=(473, 473), mode="bilinear",
                                         align_corners=True)[0].permute(1, 2, 0).numpy()
    logits = np.stack([cv2.warpAffine(up[:, :, c], inv, (w, h), flags=cv2.INTER_LINEAR,
                                      borderMode=cv2.BORDER_CONSTANT, borderValue=0)
                       for c in range(up.shape[2])], axis=2)
    return np.argmax(logits, axis=2).astype(np.uint8)


def test_affine_equals_schp_three_point_construction():
    for w, h in ((512, 512), (320, 512), (640, 200)):
        c, s = schp.box_to_center_scale((0, 0, w - 1, h - 1))
        ours = schp.affine_to_input(c, s)
        ref, _ = _reference_affine(c, s, (473, 473))
        assert np.allclose(ours, ref, atol=1e-3), (w, h)
        # the image centre lands on the input centre; the long side spans the input
        assert np.allclose(ours @ [(w - 1) / 2, (h - 1) / 2, 1], [236, 236], atol=1e-3)


@pytest.mark.slow
def test_registry_download_strict_load_and_schp_pipeline(served_spec, weights_dir, astronaut,
                                                        schp_checkpoint):
    t0 = time.perf_counter()
    parser = HumanParser("schp_lip", weights=served_spec)
    logger.warning("download + verify + strict load: %.1f s", time.perf_counter() - t0)
    assert parser.source == str(weights_dir / "exp-schp-201908261155-lip.pth")
    net = parser._schp.net
    _, state = schp_checkpoint
    assert torch.equal(net.state_dict()["fushion.3.weight"], state["fushion.3.weight"])
    rgb = cv2.resize(astronaut, (200, 320), interpolation=cv2.INTER_AREA)  # portrait, 320x200
    t0 = time.perf_counter()
    labels = parser.parse(rgb, None, hands=False)
    logger.warning("SCHP ResNet-101 parse of a 320x200 frame: %.1f s", time.perf_counter() - t0)
    ref = _reference_parse(net, rgb)
    assert labels.shape == (320, 200) and labels.dtype == np.uint8
    # identical to SCHP's own pipeline, up to float ties
    assert (labels == LIP_TO_SCHEMA[ref]).mean() > 0.999
    assert len(np.unique(ref)) > 1  # random weights still give a non-trivial map


def _forced_class(net: schp.SCHPNet, lip_class: int) -> None:
    """Make the fusion head predict one LIP class everywhere."""
    head = net.fushion[3]
    head.weight.data.zero_()
    head.bias.data.zero_()
    head.bias.data[lip_class] = 10.0


@pytest.mark.slow
def test_lip_labels_map_to_schema_and_hands_are_painted(schp_checkpoint, tmp_path):
    data, _ = schp_checkpoint
    path = tmp_path / "schp.pth"
    path.write_bytes(data)
    parser = HumanParser("schp_lip", weights=path)
    # LIP 10 "Jumpsuits" becomes our dress (6)
    _forced_class(parser._schp.net, 10)
    rgb = np.full((120, 160, 3), 128, np.uint8)
    assert (parser.parse(rgb, None) == LABEL["dress"]).all()
    # LIP 14 "Left-arm" everywhere + the subject's left-hand keypoints -> label 20 at the hand
    _forced_class(parser._schp.net, 14)
    hand = np.zeros((21, 3), np.float32)
    from dance_reenact.models.perception.base import HAND_TEMPLATE

    hand[:, :2] = np.array([100.0, 60.0]) + 30 * HAND_TEMPLATE
    hand[:, 2] = 1.0
    labels = parser.parse(rgb, Person(left_hand=hand))
    assert labels[60, 100] == LABEL["left_hand"]  # wrist
    assert labels[int(60 + 30 * 0.05), int(100 + 30)] == LABEL["left_hand"]  # middle fingertip
    assert labels[10, 10] == LABEL["left_arm"]  # far from the hand: still arm
    assert 150 < (labels == LABEL["left_hand"]).sum() < 2000
    assert not (labels == LABEL["right_hand"]).any()


def test_lip_to_schema_rejects_out_of_range():
    assert lip_to_schema(np.array([[0, 13, 19]])).tolist() == [[0, 13, 19]]
    with pytest.raises(ValueError, match="out of range"):
        lip_to_schema(np.array([[20]]))


def test_wrong_architecture_names_parameters_and_shapes(tmp_path):
    wrong = {"conv1.weight": torch.zeros(64, 3, 7, 7), "fc.weight": torch.zeros(1000, 2048)}
    path = tmp_path / "resnet_like.pth"
    path.write_bytes(_checkpoint_bytes(wrong, legacy=False))
    with pytest.raises(WeightError) as err:
        schp.load_schp(path)
    msg = str(err.value)
    assert "conv1.weight: expected (64, 3, 3, 3), got (64, 3, 7, 7)" in msg
    assert "unexpected 1: fc.weight" in msg and "missing 602" in msg
    assert "SCHP ResNet-101" in msg


def test_other_class_count_is_rejected(schp_checkpoint, tmp_path):
    _, state = schp_checkpoint
    atr = dict(state)
    atr["fushion.3.weight"] = torch.zeros(18, 256, 1, 1)
    atr["fushion.3.bias"] = torch.zeros(18)
    atr["decoder.conv4.weight"] = torch.zeros(18, 256, 1, 1)
    atr["decoder.conv4.bias"] = torch.zeros(18)
    path = tmp_path / "atr.pth"
    path.write_bytes(_checkpoint_bytes(atr, legacy=False))
    with pytest.raises(WeightError, match=r"fushion.3.weight: expected \(20, 256, 1, 1\), got "
                                          r"\(18, 256, 1, 1\)"):
        schp.load_schp(path)


def test_truncated_file_is_a_clear_error(schp_checkpoint, tmp_path, weights_dir):
    data, _ = schp_checkpoint
    cut = data[: len(data) // 3]
    path = tmp_path / "cut.pth"
    path.write_bytes(cut)
    with pytest.raises(WeightError, match="truncated"):
        schp.load_schp(path)
    # the same bytes where the registry looks: the pinned sha256 catches it before loading
    (weights_dir / SPEC.disk_name).write_bytes(cut)
    with pytest.raises(WeightError) as err:
        HumanParser("schp_lip")
    msg = str(err.value)
    assert "truncated" in msg and SPEC.repo_id in msg and SPEC.sha256 in msg


def test_missing_weights_offline_is_a_clear_error(monkeypatch, weights_dir):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightError) as err:
        HumanParser("schp_lip")
    msg = str(err.value)
    assert "exp-schp-201908261155-lip.pth" in msg and str(weights_dir) in msg


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_onnx_backend_matches_torch(tmp_path):
    """The ONNX backend runs an export of the same network (a small variant keeps it fast)."""
    torch.manual_seed(1)
    net = schp.SCHPNet(layers=(1, 1, 1, 1)).eval()
    path = tmp_path / "parsing_lip.onnx"
    with torch.inference_mode():
        torch.onnx.export(net, torch.zeros(1, 3, 473, 473), str(path), dynamo=False,
                          input_names=["input.1"], opset_version=11)
    rgb = np.random.default_rng(0).integers(0, 255, (90, 140, 3), dtype=np.uint8)
    onnx_parser = HumanParser("schp_lip_onnx", weights=path)
    torch_labels = schp.SCHPParser(net).parse(rgb)
    onnx_labels = onnx_parser.parse(rgb, None)
    assert (onnx_labels == LIP_TO_SCHEMA[torch_labels]).mean() > 0.99
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(WeightError, match="ONNX"):
        HumanParser("schp_lip_onnx", weights=bad)



@pytest.fixture
def fresh_node_cache(monkeypatch):
    from dance_reenact.models.core.cache import model_cache
    from dance_reenact.nodes import parsing as parsing_nodes

    model_cache().clear(parsing_nodes.PARSER_KIND)
    yield parsing_nodes
    model_cache().clear(parsing_nodes.PARSER_KIND)


@pytest.mark.slow
def test_node_runs_schp_from_the_registry_and_draws_hands(fresh_node_cache, served_spec,
                                                          monkeypatch, astronaut):
    """The node resolves 'schp_lip' through the registry (entry pointed at the generated file),
    parses with SCHP, and draws the hands from MediaPipe's hand keypoints."""
    from dance_reenact.models.perception.mediapipe_holistic import detect_people

    monkeypatch.setitem(weights.REGISTRY, "schp_lip", served_spec)
    image = torch.from_numpy(astronaut).float()[None] / 255
    parsing, preview, mask, _ = fresh_node_cache.HumanParse().parse(
        image, backend="schp_lip", mask_group="hands")
    labels = parsing.labels[0].numpy()
    assert labels.shape == (512, 512) and preview.shape == (1, 512, 512, 3)
    assert labels.max() < 22
    assert torch.equal(mask[0] > 0, torch.from_numpy(np.isin(labels, (20, 21))))
    # the cached network, made to see "Right-arm" everywhere: both hands get painted at the
    # hand keypoints MediaPipe found (or derived from the forearms)
    from dance_reenact.models.core.cache import model_cache

    (key,) = model_cache().keys(fresh_node_cache.PARSER_KIND)
    parser = model_cache().get(*key)
    _forced_class(parser._schp.net, 15)
    labels = fresh_node_cache.HumanParse().parse(image, backend="schp_lip")[0].labels[0].numpy()
    person = detect_people(astronaut)[0].person
    for side in ("left", "right"):
        hand = getattr(person, f"{side}_hand")
        ok = hand[:, 2] > 0
        hy, hx = np.nonzero(labels == LABEL[f"{side}_hand"])
        assert len(hy) > 100, side
        assert np.hypot(hx.mean() - hand[ok, 0].mean(), hy.mean() - hand[ok, 1].mean()) < 25
    assert (labels == LABEL["right_arm"]).mean() > 0.9


def test_crop_to_person_parses_only_the_person_box(tmp_path):
    """crop_to_person: SCHP sees the person's box (with a margin), nothing outside it."""
    net = schp.SCHPNet(layers=(1, 1, 1, 1)).eval()
    parser = HumanParser("geometric")  # swap in a small SCHP network of the same design
    parser._schp = schp.SCHPParser(net)
    _forced_class(net, 13)
    body = np.zeros((18, 3), np.float32)
    body[0] = (300, 100, 1)  # nose
    body[1] = (300, 140, 1)  # neck
    rgb = np.zeros((240, 480, 3), np.uint8)
    labels = parser.parse(rgb, Person(body=body), crop_to_person=True, hands=False)
    ys, xs = np.nonzero(labels == LABEL["face"])
    assert xs.min() > 200 and xs.max() < 400 and ys.max() < 200  # around the keypoints only
    assert (labels[:, :200] == 0).all()
    assert (parser.parse(rgb, Person(body=body), hands=False) == LABEL["face"]).all()
    with pytest.raises(WeightError, match="does not exist"):
        HumanParser("schp_lip", weights=tmp_path / "nope.pth")
