"""P2B network, registration, loader and node: shapes, positions, backends and bad inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from dance_reenact.models.core.schema import LABEL, LabelSchema, people_to_frame
from dance_reenact.models.io.loading import load_model, read_metadata, save_model
from dance_reenact.models.networks.p2b import (
    DriverFrame,
    P2BGenerator,
    crop_labels,
    labels_box,
    one_hot_labels,
    p2b_input,
    paste_labels,
    predict_parsing,
)
from dance_reenact.nodes.p2b import P2B, P2BLoader
from dance_reenact.nodes.runtime import NodeInputError
from dance_reenact.nodes.sockets import DensePose, P2BModel, Parsing, rgb_uint8_to_image
from dance_reenact.training import synthetic as S

TINY = dict(ngf=4, n_down=2, n_res=1, work_height=32, work_width=20)


def _pair(seed: int = 0, hw: tuple[int, int] = (128, 80)):
    rng = np.random.default_rng(seed)
    return S.random_pair(rng, *hw)


def _densepose(samples) -> DensePose:
    return DensePose(torch.from_numpy(np.stack([s.densepose_i for s in samples])),
                     torch.from_numpy(np.stack([s.densepose_u for s in samples])),
                     torch.from_numpy(np.stack([s.densepose_v for s in samples])))


def _poses(samples) -> list[dict]:
    return [people_to_frame([s.person], s.labels.shape[1], s.labels.shape[0]) for s in samples]


def test_generator_shapes_and_strict_roundtrip(tmp_path) -> None:
    g = P2BGenerator(**TINY).eval()
    src = torch.randint(0, 22, (2, 32, 20))
    x = p2b_input(src, torch.rand(2, 3, 32, 20), torch.rand(2, 3, 32, 20))
    assert x.shape == (2, 28, 32, 20)
    with torch.no_grad():
        y = g(x)
    assert y.shape == (2, 22, 32, 20) and float(y.min()) >= 0 and float(y.max()) <= 1
    path = save_model(g, tmp_path / "g.safetensors")
    assert '"n_res": 1' in read_metadata(path)["config"]
    g2 = load_model(path, expected_arch="P2BGenerator")
    with torch.no_grad():
        torch.testing.assert_close(g2(x), y)
    with pytest.raises(ValueError, match="multiples of 4"):
        g(torch.zeros(1, 28, 30, 20))
    with pytest.raises(ValueError, match="multiple of"):
        P2BGenerator(ngf=4, n_down=3, work_height=36, work_width=20)
    assert one_hot_labels(src).sum(dim=1).eq(1).all()
    with pytest.raises(ValueError, match="labels must lie"):
        one_hot_labels(torch.full((1, 2, 2), 22))


def test_crop_paste_roundtrip_keeps_position() -> None:
    _, a, _ = _pair(1, (200, 300))
    box = labels_box(a.labels, (64, 40))
    work = crop_labels(a.labels, box, (64, 40))
    assert work.shape == (64, 40) and (work > 0).any()
    back = paste_labels(work, box, (200, 300))
    inter = ((back > 0) & a.mask).sum() / ((back > 0) | a.mask).sum()
    assert inter > 0.75  # a 64x40 round trip of a small person


class _DensePoseEcho(nn.Module):
    """A stand-in network that predicts 'upper clothes' exactly where the driver's DensePose
    shows a body: it makes registration and paste-back visible."""

    def __init__(self) -> None:
        super().__init__()
        self.config = {"work_height": 64, "work_width": 40, "out_channels": 22}
        self.w = nn.Parameter(torch.zeros(()))

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        body = (x[:, 25:26] > 0).float()  # I/24 channel
        out = torch.zeros(x.shape[0], 22, *x.shape[2:])
        out[:, 0:1] = 1 - body
        out[:, 5:6] = body
        return out + self.w


def test_predict_parsing_returns_the_driver_frame_size_and_position() -> None:
    # a big target photo and a small driver frame of another aspect ratio
    _, target, _ = _pair(2, (300, 300))
    _, _, driver = _pair(3, (96, 200))
    frame = DriverFrame(96, 200, driver.person, None, driver.densepose_i, driver.densepose_u,
                        driver.densepose_v)
    out = next(predict_parsing(_DensePoseEcho(), target.labels, [frame]))  # type: ignore[arg-type]
    assert out.shape == (96, 200)
    body = driver.densepose_i > 0
    iou = ((out > 0) & body).sum() / ((out > 0) | body).sum()
    assert iou > 0.7, iou


def _node_inputs(n: int = 3, hw=(128, 80)):
    rng = np.random.default_rng(5)
    body = S.random_body(rng)
    target = S.render(body, S.random_pose(rng, body), *hw)
    drivers = [S.render(body, S.random_pose(rng, body), *hw) for _ in range(n)]
    parsing = Parsing(torch.from_numpy(target.labels[None]))
    tpose = _poses([target])
    return target, drivers, parsing, tpose


def test_warp_backend_node_follows_the_driver() -> None:
    target, drivers, parsing, tpose = _node_inputs()
    (model,) = P2BLoader().load("warp")
    out, _ = P2B().run(model, parsing, target_pose=tpose, driver_pose=_poses(drivers))
    assert out.labels.shape == (3, 128, 80) and out.labels.dtype == torch.uint8
    for k, d in enumerate(drivers):
        pred = out.labels[k].numpy() > 0
        iou = (pred & d.mask).sum() / (pred | d.mask).sum()
        copy = (target.mask & d.mask).sum() / (target.mask | d.mask).sum()
        assert iou > 0.55 and iou > copy, (k, iou, copy)


def test_network_backend_from_a_local_file(weights_dir) -> None:
    target, drivers, parsing, tpose = _node_inputs(2)
    save_model(P2BGenerator(**TINY), weights_dir / "my_p2b.safetensors")
    assert "my_p2b.safetensors" in P2BLoader.INPUT_TYPES()["optional"]["local_file"][0]
    (model,) = P2BLoader().load("local", local_file="my_p2b.safetensors")
    assert model.backend == "network" and isinstance(model.module, P2BGenerator)
    sticks = rgb_uint8_to_image([np.zeros((128, 80, 3), np.uint8)] * 2)
    out, _ = P2B().run(model, parsing, driver_pose=_poses(drivers), driver_stick=sticks,
                       driver_densepose=_densepose(drivers))
    assert out.labels.shape == (2, 128, 80)


def test_network_backend_from_the_hub(hub, weights_dir, tmp_path) -> None:
    path = save_model(P2BGenerator(**TINY), tmp_path / "p2b.safetensors")
    hub.add("someone/p2b-test", "p2b.safetensors", path.read_bytes())
    (model,) = P2BLoader().load("hub", repo_id="someone/p2b-test", filename="p2b.safetensors")
    assert isinstance(model.module, P2BGenerator)
    with pytest.raises(NodeInputError, match="repo id"):
        P2BLoader().load("hub", repo_id="")


def test_checkpoint_of_another_architecture_is_refused(weights_dir) -> None:
    from dance_reenact.models.networks.face_refine import FaceRefineNet

    save_model(FaceRefineNet(crop_size=16, ngf=4, n_down=2, max_channels=8, embed_dim=4),
               weights_dir / "face.safetensors")
    with pytest.raises(NodeInputError, match=r"\[P2B Loader\] input 'local_file'.*"
                       "FaceRefineNet checkpoint, but a P2BGenerator is needed"):
        P2BLoader().load("local", local_file="face.safetensors")
    with pytest.raises(NodeInputError, match="no file chosen"):
        P2BLoader().load("local")


def test_bad_inputs_are_clear_errors() -> None:
    target, drivers, parsing, tpose = _node_inputs(3)
    warp = P2BModel("warp")
    poses = _poses(drivers)
    # labels outside the 22-label schema
    wide = LabelSchema(names=tuple(f"l{i}" for i in range(30)))
    bad = Parsing(torch.full((1, 128, 80), 25, dtype=torch.uint8), wide)
    with pytest.raises(NodeInputError, match="22-label schema"):
        P2B().run(warp, bad, target_pose=tpose, driver_pose=poses)
    # driver batches of different lengths
    with pytest.raises(NodeInputError, match="different lengths"):
        P2B().run(warp, parsing, target_pose=tpose, driver_pose=poses,
                  driver_densepose=_densepose(drivers[:2]))
    # warp needs the keypoints
    with pytest.raises(NodeInputError, match="target_pose"):
        P2B().run(warp, parsing, driver_pose=poses)
    # no driver at all
    with pytest.raises(NodeInputError, match="no driver pose"):
        P2B().run(warp, parsing, target_pose=tpose)
    # two target parsings
    two = Parsing(torch.from_numpy(np.stack([target.labels] * 2)))
    with pytest.raises(NodeInputError, match="ONE target"):
        P2B().run(warp, two, target_pose=tpose, driver_pose=poses)
    # the network needs DensePose
    net = P2BModel("network", P2BGenerator(**TINY).eval())
    with pytest.raises(NodeInputError, match="DensePose"):
        P2B().run(net, parsing, driver_pose=poses)


def test_frame_without_a_person() -> None:
    target, drivers, parsing, tpose = _node_inputs(3)
    warp = P2BModel("warp")
    poses = _poses(drivers)
    poses[1] = {"people": [], "canvas_width": 80, "canvas_height": 128}
    with pytest.raises(NodeInputError, match="driver frame 1 shows no person"):
        P2B().run(warp, parsing, target_pose=tpose, driver_pose=poses, missing_person="error")
    default, _ = P2B().run(warp, parsing, target_pose=tpose, driver_pose=poses)  # holds
    assert torch.equal(default.labels[1], default.labels[0])
    nobody = [{"people": [], "canvas_width": 80, "canvas_height": 128}] * 3
    with pytest.raises(NodeInputError, match=r"\[P2B\] input 'driver_pose': no person in any "
                       r"of the 3 driver frames"):
        P2B().run(warp, parsing, target_pose=tpose, driver_pose=nobody)
    empty, _ = P2B().run(warp, parsing, target_pose=tpose, driver_pose=poses,
                         missing_person="empty")
    assert int(empty.labels[1].max()) == 0 and int(empty.labels[2].max()) > 0
    held, report = P2B().run(warp, parsing, target_pose=tpose, driver_pose=poses,
                             missing_person="hold")
    assert torch.equal(held.labels[1], held.labels[0])
    assert report.startswith("weightless warp: 3 driver frame(s)")
    assert "no driver person in 1 frame(s) (1): they hold the previous frame" in report
    assert int(held.labels[0].max()) > 0
    # the network path: an empty DensePose and no keypoints in that frame
    net = P2BModel("network", P2BGenerator(**TINY).eval())
    dp = _densepose(drivers)
    dp.index[1] = 0
    with pytest.raises(NodeInputError, match="driver frame 1 shows no person"):
        P2B().run(net, parsing, driver_pose=poses, driver_densepose=dp, missing_person="error")


def test_normalised_driver_keypoints_are_accepted() -> None:
    target, drivers, parsing, tpose = _node_inputs(1)
    norm = [people_to_frame([d.person], 80, 128, normalized=True) for d in drivers]
    a, _ = P2B().run(P2BModel("warp"), parsing, target_pose=tpose,
                     driver_pose=_poses(drivers))
    b, _ = P2B().run(P2BModel("warp"), parsing, target_pose=tpose, driver_pose=norm)
    assert (a.labels == b.labels).float().mean() > 0.99
    assert int(a.labels.max()) >= LABEL["face"]


def test_stick_image_instead_of_keypoints_gives_the_same_registration() -> None:
    """A driver given as a stick-figure IMAGE (no keypoints) is registered like one given as
    POSE_KEYPOINT: the DensePose-echo network paints the same body."""
    _, _, driver = _pair(4, (160, 240))
    from dance_reenact.models.geometry.render import draw_pose

    stick = draw_pose([driver.person], 160, 240)
    with_kp = DriverFrame(160, 240, driver.person, None, driver.densepose_i,
                          driver.densepose_u, driver.densepose_v)
    with_img = DriverFrame(160, 240, None, stick, driver.densepose_i, driver.densepose_u,
                           driver.densepose_v)
    _, target, _ = _pair(5, (128, 80))
    a, b = predict_parsing(_DensePoseEcho(), target.labels, [with_kp, with_img])  # type: ignore
    assert ((a > 0) == (b > 0)).mean() > 0.97


def test_warp_node_with_a_large_target_and_a_small_driver_of_another_aspect() -> None:
    rng = np.random.default_rng(8)
    body = S.random_body(rng)
    target = S.render(body, S.random_pose(rng, body), 400, 400)
    driver = S.render(body, S.random_pose(rng, body), 120, 200)
    out, _ = P2B().run(P2BModel("warp"),
                       Parsing(torch.from_numpy(target.labels[None])),
                       target_pose=_poses([target]), driver_pose=_poses([driver]))
    assert out.labels.shape == (1, 120, 200)
    pred = out.labels[0].numpy() > 0
    iou = (pred & driver.mask).sum() / (pred | driver.mask).sum()
    assert iou > 0.6, iou
