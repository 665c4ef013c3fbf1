"""B2F: the generator, the 27-channel body map, crop/paste-back, the loader and node (network
and weightless warp backends), and their bad inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dance_reenact.models.core.schema import LABEL, people_to_frame
from dance_reenact.models.geometry.b2f_warp import warp_frame
from dance_reenact.models.io import weights
from dance_reenact.models.io.loading import save_model
from dance_reenact.models.networks.b2f import (
    B2FGenerator,
    body_map,
    draw_face_labels,
)
from dance_reenact.models.networks.p2b import labels_box
from dance_reenact.nodes.b2f import B2F, AppearanceEncoderNode, B2FLoader, PartCropper
from dance_reenact.nodes.runtime import NodeInputError
from dance_reenact.nodes.sockets import Appearance, Parsing, rgb_uint8_to_image
from dance_reenact.training.synthetic import random_pair

TINY = dict(embed_dim=40, fc_channels=32, ngf=8, n_up=3, spade_hidden=8)


def test_default_generator_is_512x320_from_8x5():
    with torch.device("meta"):  # shapes only: no 200M-parameter initialisation
        g = B2FGenerator()
    assert g.out_size == (512, 320)
    assert g.config["fc_channels"] == 1024 and g.fc.out_features == 1024 * 8 * 5
    assert len(g.ups) == 6


def test_tiny_generator_shapes_ranges_and_project_once():
    torch.manual_seed(0)
    g = B2FGenerator(**TINY).eval()
    assert g.out_size == (64, 40)
    labels = torch.randint(0, 22, (2, 64, 40))
    bm = body_map(labels)
    assert bm.shape == (2, 27, 64, 40)
    assert torch.equal(bm[:, :22].argmax(1), labels) and bm[:, 22:].abs().max() == 0
    with torch.no_grad():
        z, m = g(torch.randn(2, 40), bm)
        z2, m2 = g.decode(g.project(torch.randn(1, 40)), bm)  # one target, two frames
    assert z.shape == (2, 3, 64, 40) and m.shape == (2, 1, 64, 40)
    assert z.min() >= -1 and z.max() <= 1 and m.min() > 0 and m.max() < 1
    assert z2.shape == (2, 3, 64, 40)
    with pytest.raises(ValueError, match="body map must be"):
        g.decode(g.project(torch.randn(1, 40)), body_map(torch.zeros(1, 32, 20)))


def test_face_labels_from_landmarks():
    _, a, _ = random_pair(np.random.default_rng(3), 512, 320)
    face = draw_face_labels(a.person.face, 512, 320)
    assert face.shape == (5, 512, 320) and face.dtype == np.uint8
    assert all(face[k].sum() > 0 for k in range(5)), [int(face[k].sum()) for k in range(5)]
    head = (a.labels == LABEL["face"]) | (a.labels == LABEL["hair"])
    inside = (face.max(0) > 0) & head
    assert inside.sum() > 0.8 * (face.max(0) > 0).sum()  # drawn on the face
    assert not (face[3] & face[4]).any()  # lips exclude the inner mouth
    assert draw_face_labels(np.zeros((70, 3)), 10, 10).sum() == 0


def _pose_frames(people, w, h):
    return [people_to_frame([p], w, h) for p in people]


@pytest.fixture
def scene():
    """A synthetic target (256x160) and three driver frames of another size (240x200)."""
    rng = np.random.default_rng(7)
    body, a, _ = random_pair(rng, 256, 160)
    drivers = [random_pair(rng, 240, 200, body=body)[2] for _ in range(3)]
    parts, _, _ = PartCropper().crop(rgb_uint8_to_image(a.image),
                                     Parsing(torch.from_numpy(a.labels)[None]),
                                     pose_keypoint=[people_to_frame([a.person], 160, 256)])
    parsing = Parsing(torch.from_numpy(np.stack([d.labels for d in drivers])))
    pose = _pose_frames([d.person for d in drivers], 200, 240)
    return {"target": a, "drivers": drivers, "parts": parts, "parsing": parsing, "pose": pose}


def test_warp_backend_node_renders_at_the_driver_size(scene):
    (handle,) = B2FLoader().load("warp")
    (app,) = AppearanceEncoderNode().encode(scene["parts"], "weightless")
    z, m, report = B2F().generate(handle, scene["parsing"], app, scene["pose"])
    assert z.shape == (3, 240, 200, 3) and m.shape == (3, 240, 200)
    for i, d in enumerate(scene["drivers"]):
        person = d.mask
        pred = m[i].numpy() > 0.5
        iou = (pred & person).sum() / (pred | person).sum()
        assert iou > 0.9, iou
        err = np.abs(z[i].numpy() * 255 - d.image.astype(np.float32))[person].mean()
        naive = np.abs(np.full(3, 128.0) - d.image.astype(np.float32))[person].mean()
        assert err < 0.7 * naive, (err, naive)
    assert "3 frames" in report

    assert "ends at the hips" not in report  # a full-body target keeps its legs


def test_warp_report_says_when_a_photo_cut_at_the_hips_leaves_the_legs_out(scene):
    from dance_reenact.models.core.schema import BODY, Person

    a = scene["target"]
    b = a.person.body
    hip_y = (b[BODY["right_hip"], 1] + b[BODY["left_hip"], 1]) / 2
    torso = float(hip_y - b[BODY["neck"], 1])
    cut = int(hip_y + 0.2 * torso)  # a waist-up photo
    body = b.copy()
    body[body[:, 1] >= cut - 1, 2] = 0
    person = Person(body=body, face=a.person.face, left_hand=a.person.left_hand,
                    right_hand=a.person.right_hand)
    parts, _, _ = PartCropper().crop(rgb_uint8_to_image(a.image[:cut].copy()),
                                     Parsing(torch.from_numpy(a.labels[:cut].copy())[None]),
                                     pose_keypoint=[people_to_frame([person], 160, cut)])
    (handle,) = B2FLoader().load("warp")
    (app,) = AppearanceEncoderNode().encode(parts, "weightless")
    _, m, report = B2F().generate(handle, scene["parsing"], app, scene["pose"])
    assert ("the target photo ends at the hips: right leg and left leg left out, so the figure "
            "ends there") in report
    for i, d in enumerate(scene["drivers"]):  # (almost) nothing drawn on the driver's legs
        legs = np.isin(d.labels, [LABEL["left_leg"], LABEL["right_leg"], LABEL["left_shoe"],
                                  LABEL["right_shoe"]])
        assert (m[i].numpy()[legs] >= 0.5).mean() < 0.1

def test_warp_leaves_out_parts_the_target_does_not_show(scene):
    a, d = scene["target"], scene["drivers"][0]
    no_legs = np.where(np.isin(a.labels, [LABEL["left_leg"], LABEL["right_leg"],
                                          LABEL["left_shoe"], LABEL["right_shoe"]]), 0, a.labels)
    res = warp_frame(a.image, no_legs.astype(np.uint8), a.person, d.labels, d.person,
                     feather=0)
    legs = np.isin(d.labels, [LABEL["left_leg"], LABEL["right_leg"], LABEL["left_shoe"],
                              LABEL["right_shoe"]])
    assert legs.sum() > 0 and res.absent_pixels == int(legs.sum())
    assert res.mask[legs].max() == 0 and res.image[legs].max() == 0


def test_network_backend_from_local_file_and_hub(scene, weights_dir, hub):
    torch.manual_seed(0)
    net = B2FGenerator(**TINY)
    save_model(net, weights_dir / "my_b2f.safetensors")
    (handle,) = B2FLoader().load("local", local_file="my_b2f.safetensors")
    assert handle.backend == "network" and isinstance(handle.module, B2FGenerator)
    app = Appearance(embedding=torch.randn(1, 40), encoder_id="test")
    calls = []
    real_project = handle.module.project
    handle.module.project = lambda e: calls.append(1) or real_project(e)
    z, m, report = B2F().generate(handle, scene["parsing"], app, scene["pose"])
    assert z.shape == (3, 240, 200, 3) and m.shape == (3, 240, 200)
    assert calls == [1]  # e_z -> FC once for the whole video
    # outside the person's crop box nothing is drawn
    for i, d in enumerate(scene["drivers"]):
        box = labels_box(d.labels, (64, 40), 0.08)
        x0, y0, x1, y1 = box.x0, box.y0, box.x1, box.y1
        outside = torch.ones(240, 200, dtype=torch.bool)
        outside[max(0, y0):y1, max(0, x0):x1] = False
        assert m[i][outside].abs().max() == 0
        assert m[i][~outside].mean() > 0.05
    # the same file from the (loopback) Hub
    data = (weights_dir / "my_b2f.safetensors").read_bytes()
    hub.add("me/b2f", "b2f.safetensors", data)
    (h2,) = B2FLoader().load("hub", repo_id="me/b2f", filename="b2f.safetensors")
    assert h2.backend == "network" and h2.module.config == net.config


def test_bad_inputs(scene, weights_dir, monkeypatch):
    node = B2F()
    (warp,) = B2FLoader().load("warp")
    (app,) = AppearanceEncoderNode().encode(scene["parts"], "weightless")
    # PARSING / APPEARANCE batch mismatch
    two = Appearance(embedding=torch.randn(2, 40), encoder_id="test")
    torch.manual_seed(0)
    save_model(B2FGenerator(**TINY), weights_dir / "tiny.safetensors")
    (net,) = B2FLoader().load("local", local_file="tiny.safetensors")
    with pytest.raises(NodeInputError, match=r"\[B2F\] input 'appearance'.*2 targets.*3 frames"):
        node.generate(net, scene["parsing"], two, scene["pose"])
    # wrong embedding size, weightless appearance for a network
    with pytest.raises(NodeInputError, match="expects 40"):
        node.generate(net, scene["parsing"], Appearance("x", torch.randn(1, 7)))
    with pytest.raises(NodeInputError, match="'pretrained'"):
        node.generate(net, scene["parsing"], app)
    # 16x16 frames
    with pytest.raises(NodeInputError, match="16x16"):
        node.generate(warp, Parsing(torch.ones(1, 16, 16, dtype=torch.uint8)), app)
    # an all-background parsing (empty person mask)
    empty = Parsing(torch.zeros(3, 240, 200, dtype=torch.uint8))
    with pytest.raises(NodeInputError, match="no frame has any person"):
        node.generate(warp, empty, app, scene["pose"])
    # warp without driver keypoints / pose of another length
    with pytest.raises(NodeInputError, match="input 'driver_pose'"):
        node.generate(warp, scene["parsing"], app)
    with pytest.raises(NodeInputError, match="2 frames but the parsing has 3"):
        node.generate(warp, scene["parsing"], app, scene["pose"][:2])
    # wrong checkpoint: another architecture, a truncated file, a missing Hub file
    from dance_reenact.models.networks.facenet import InceptionResnetV1

    save_model(InceptionResnetV1(num_classes=0), weights_dir / "face.safetensors")
    with pytest.raises(NodeInputError, match="InceptionResnetV1 checkpoint, but a "
                                             "B2FGenerator is needed"):
        B2FLoader().load("local", local_file="face.safetensors")
    data = (weights_dir / "tiny.safetensors").read_bytes()
    (weights_dir / "cut.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(NodeInputError, match="input 'local_file'"):
        B2FLoader().load("local", local_file="cut.safetensors")
    with pytest.raises(NodeInputError, match="not in"):
        B2FLoader().load("local", local_file="nope.safetensors")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(NodeInputError, match=r"\[B2F Loader\] input 'repo_id'.*offline"):
        B2FLoader().load("hub", repo_id="me/missing", filename="b2f.safetensors")
    with pytest.raises(NodeInputError, match="it is empty"):
        B2FLoader().load("hub", repo_id=" ")
    assert weights.search_roots()[0] == weights_dir


def test_frames_without_a_person_get_an_empty_mask(scene):
    (warp,) = B2FLoader().load("warp")
    (app,) = AppearanceEncoderNode().encode(scene["parts"], "weightless")
    labels = scene["parsing"].labels.clone()
    labels[1] = 0
    z, m, report = B2F().generate(warp, Parsing(labels), app, scene["pose"])
    assert m[1].abs().max() == 0 and z[1].abs().max() == 0 and m[0].max() > 0.5
    assert "1 without a person" in report


def test_weightless_b2f_chain_as_a_workflow(scene):
    """Part Cropper -> Appearance Encoder -> B2F Loader/B2F -> Mask Blend, through the test
    executor with ComfyUI's link type checks; the composite shows the person over the
    background and the background elsewhere."""
    from executor import run_workflow

    from dance_reenact.nodes import NODE_CLASS_MAPPINGS

    a = scene["target"]
    background = torch.rand(1, 120, 90, 3)  # a still of another size
    prompt = {
        "1": {"class_type": "DanceReenactPartCropper",
              "inputs": {"image": rgb_uint8_to_image(a.image),
                         "parsing": Parsing(torch.from_numpy(a.labels)[None]),
                         "pose_keypoint": [people_to_frame([a.person], 160, 256)]}},
        "2": {"class_type": "DanceReenactAppearanceEncoder",
              "inputs": {"parts": ["1", 0], "backend": "weightless"}},
        "3": {"class_type": "DanceReenactB2FLoader", "inputs": {"backend": "warp"}},
        "4": {"class_type": "DanceReenactB2F",
              "inputs": {"b2f_model": ["3", 0], "parsing": scene["parsing"],
                         "appearance": ["2", 0], "driver_pose": scene["pose"]}},
        "5": {"class_type": "DanceReenactMaskBlend",
              "inputs": {"image": ["4", 0], "mask": ["4", 1], "background": background,
                         "length_mode": "loop", "fit": "cover", "erode": 0, "feather": 0.0}},
    }
    out = run_workflow(prompt, NODE_CLASS_MAPPINGS)
    comp, rgba, alpha = out["5"]
    assert comp.shape == (3, 240, 200, 3) and rgba.shape == (3, 240, 200, 4)
    from dance_reenact.models.compositing.blend import fit_frame

    bg = fit_frame(background[0], 240, 200, "cover")
    for i, d in enumerate(scene["drivers"]):
        away = ~torch.from_numpy(d.mask) & (alpha[i] == 0)
        assert torch.allclose(comp[i][away], bg[away])
        inside = torch.from_numpy(d.mask) & (alpha[i] > 0.99)
        assert torch.allclose(comp[i][inside], out["4"][0][i][inside], atol=1e-2)
