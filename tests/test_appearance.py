"""Appearance Encoder through the real weight registry, with test-generated weights of the exact
pinned architectures (facenet-pytorch InceptionResnetV1 .pth served by the loopback Hub; timm
vgg19 safetensors at full size, sparse, placed in the weights folder)."""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from test_parts import astronaut_labels
from weight_fakes import facenet_state_bytes, write_sparse_vgg19

from dance_reenact.models.core.cache import model_cache
from dance_reenact.models.io import weights
from dance_reenact.models.io.weights import WeightError
from dance_reenact.models.networks.appearance import EMBED_DIM, ENCODER_ID
from dance_reenact.models.networks.facenet import InceptionResnetV1, load_facenet
from dance_reenact.models.networks.vgg import load_vgg19_features
from dance_reenact.nodes import b2f as b2f_nodes
from dance_reenact.nodes.b2f import AppearanceEncoderNode, PartCropper
from dance_reenact.nodes.runtime import NodeInputError
from dance_reenact.nodes.sockets import Parsing, rgb_uint8_to_image


@pytest.fixture(scope="session")
def fake_files(tmp_path_factory):
    """Generated once per session (~5 s): the two files and their sha256."""
    import hashlib

    d = tmp_path_factory.mktemp("fake_weights")
    face = facenet_state_bytes()
    vgg_path = d / "vgg19.tv_in1k.safetensors"
    vgg_sha = write_sparse_vgg19(vgg_path)
    return {"face": face, "face_sha": hashlib.sha256(face).hexdigest(),
            "vgg_path": vgg_path, "vgg_sha": vgg_sha}


@pytest.fixture
def registry_with_fakes(fake_files, hub, weights_dir, monkeypatch):
    """The registry entries keep repo, filename and local name; only the pinned sha256 is the
    generated file's. facenet comes from the loopback Hub, vgg19 is placed by hand."""
    face_spec = weights.REGISTRY["facenet_vggface2"]
    vgg_spec = weights.REGISTRY["vgg19"]
    hub.add(face_spec.repo_id, face_spec.filename, fake_files["face"], revision=face_spec.revision)
    monkeypatch.setitem(weights.REGISTRY, "facenet_vggface2",
                        dataclasses.replace(face_spec, sha256=fake_files["face_sha"]))
    monkeypatch.setitem(weights.REGISTRY, "vgg19",
                        dataclasses.replace(vgg_spec, sha256=fake_files["vgg_sha"]))
    os.link(fake_files["vgg_path"], weights_dir / vgg_spec.disk_name)
    model_cache().clear(b2f_nodes.ENCODER_KIND)
    return hub


def _parts(astronaut):
    image = rgb_uint8_to_image(astronaut)
    parsing = Parsing(torch.from_numpy(astronaut_labels())[None])
    return PartCropper().crop(image, parsing)[0]


@pytest.mark.slow
def test_pretrained_encoder_through_the_registry(registry_with_fakes, weights_dir, astronaut):
    torch.manual_seed(0)
    parts = _parts(astronaut)
    (app,) = AppearanceEncoderNode().encode(parts, "pretrained")
    assert app.encoder_id == ENCODER_ID
    e = app.embedding
    assert e.shape == (1, EMBED_DIM) == (1, 512 + 4 * 512)
    assert torch.isfinite(e).all()
    assert abs(e[0, :512].norm().item() - 1.0) < 1e-4  # the L2-normalised face embedding
    assert e[0, 512:1024].abs().sum() > 0  # upper clothes present
    assert e[0, 1024:].abs().max() == 0  # lower clothes, shoes, skin missing: zeros
    # facenet was downloaded from the (loopback) Hub into the weights folder
    assert (weights_dir / "facenet_20180402_114759_vggface2.pth").is_file()
    assert any("facenet" in path for _, path in registry_with_fakes.requests)
    # the weightless extras ride along
    assert app.targets[0].image.shape == (512, 512, 3)
    # deterministic, and another target gives another code
    (again,) = AppearanceEncoderNode().encode(parts, "pretrained")
    assert torch.allclose(again.embedding, e)
    flipped = _parts(np.ascontiguousarray(astronaut[:, :, ::-1]))
    (other,) = AppearanceEncoderNode().encode(flipped, "pretrained")
    assert (other.embedding - e).abs().max() > 1e-3


def test_missing_weights_offline_is_a_clear_node_error(weights_dir, monkeypatch, astronaut):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model_cache().clear(b2f_nodes.ENCODER_KIND)
    with pytest.raises(NodeInputError, match=r"\[Appearance Encoder\].*facenet.*Fix"):
        AppearanceEncoderNode().encode(_parts(astronaut), "pretrained")
    # the weightless backend needs nothing
    (app,) = AppearanceEncoderNode().encode(_parts(astronaut), "weightless")
    assert app.embedding is None and app.targets[0].labels.shape == (512, 512)


def test_facenet_file_loads_strictly_and_wrong_files_fail(tmp_path, fake_files):
    p = tmp_path / "face.pth"
    p.write_bytes(fake_files["face"])
    net = load_facenet(p)
    assert net.logits is not None and net.logits.weight.shape == (8631, 512)
    with torch.no_grad():
        emb = net(torch.randn(2, 3, 160, 160))
    assert emb.shape == (2, 512) and torch.allclose(emb.norm(dim=1), torch.ones(2), atol=1e-4)
    # one tensor with a wrong shape: named with both shapes
    state = torch.load(p, weights_only=True)
    state["last_linear.weight"] = torch.zeros(256, 1792)
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(WeightError, match=r"last_linear.weight: expected \(512, 1792\), "
                                          r"got \(256, 1792\)"):
        load_facenet(tmp_path / "bad.pth")
    # a truncated file
    (tmp_path / "trunc.pth").write_bytes(fake_files["face"][: len(fake_files["face"]) // 2])
    with pytest.raises(WeightError, match="truncated"):
        load_facenet(tmp_path / "trunc.pth")
    # another network's state dict
    save_file({"features.0.weight": torch.zeros(64, 3, 3, 3)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(WeightError, match="not an InceptionResnetV1"):
        load_facenet(tmp_path / "other.safetensors")


def test_vgg19_contract_is_checked_on_every_key(tmp_path):
    from dance_reenact.models.networks.vgg import vgg19_timm_shapes

    shapes = vgg19_timm_shapes()
    shapes["head.fc.weight"] = (10, 4096)  # a 10-class fine-tune, not tv_in1k
    path = tmp_path / "bad_vgg.safetensors"
    write_sparse_vgg19(path, shapes=shapes, digest=False)
    with pytest.raises(WeightError, match=r"head.fc.weight: expected \(1000, 4096\), got "
                                          r"\(10, 4096\)"):
        load_vgg19_features(path)
    vgg16ish = {k: v for k, v in vgg19_timm_shapes().items() if not k.startswith("features.34")}
    write_sparse_vgg19(path, shapes=vgg16ish, digest=False)
    with pytest.raises(WeightError, match="missing 2: features.34"):
        load_vgg19_features(path)


def test_facenet_architecture_matches_facenet_pytorch_layout():
    """Spot checks of key names/shapes of the published state dict (facenet-pytorch)."""
    sd = InceptionResnetV1().state_dict()
    assert sd["conv2d_1a.conv.weight"].shape == (32, 3, 3, 3)
    assert sd["repeat_1.4.branch2.2.bn.running_var"].shape == (32,)
    assert sd["repeat_2.9.branch1.2.conv.weight"].shape == (128, 128, 7, 1)
    assert sd["mixed_7a.branch2.2.conv.weight"].shape == (256, 256, 3, 3)
    assert sd["block8.conv2d.weight"].shape == (1792, 384, 1, 1)
    assert sd["last_bn.running_mean"].shape == (512,)
    assert sd["logits.weight"].shape == (8631, 512)
