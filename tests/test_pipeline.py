"""The whole method streamed end to end (pipeline.py) and the `reenact` CLI."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from dance_reenact.cli import main
from dance_reenact.models.core.schema import BODY, people_to_frame
from dance_reenact.models.io.video import read_video
from dance_reenact.pipeline import PipelineConfig, PipelineError, reenact
from dance_reenact.training import synthetic

FAST = PipelineConfig(face="none", smooth=False)


def _moving_driver(n: int = 5, h: int = 256, w: int = 192, step: float = 0.1):
    """POSE_KEYPOINT frames of a synthetic upper-body driver walking to the right."""
    rng = np.random.default_rng(3)
    body = synthetic.random_body(rng)
    frames = []
    for i in range(n):
        pose = dataclasses.replace(synthetic.SyntheticPose(), cx=0.3 + step * i, cy=0.3,
                                   scale=1.1)
        frames.append(people_to_frame([synthetic.render(body, pose, h, w).person], w, h))
    return frames


def _person_mask(frame: np.ndarray, background: np.ndarray) -> np.ndarray:
    diff = np.abs(frame.astype(int) - background.astype(int)).sum(axis=2)
    return cv2.morphologyEx((diff > 40).astype(np.uint8), cv2.MORPH_OPEN,
                            np.ones((3, 3), np.uint8)) > 0


def test_person_follows_the_driver_and_keeps_the_driver_size(astronaut):
    frames = _moving_driver()
    plain_bg = np.full((64, 64, 3), 40, np.uint8)
    out, info = reenact(astronaut, driver_pose=frames, background=plain_bg, cfg=FAST)
    out = list(out)
    assert info["count"] == len(out) == 5
    assert all(f.shape == (256, 192, 3) and f.dtype == np.uint8 for f in out)
    bg = np.full((256, 192, 3), 40, np.uint8)
    xs = []
    for f, fr in zip(out, frames):
        m = _person_mask(f, bg)
        assert m.sum() > 500, "the target must be drawn"
        xs.append(np.nonzero(m)[1].mean())
        neck_x = fr["people"][0]["pose_keypoints_2d"][3 * BODY["neck"]]
        assert abs(xs[-1] - neck_x) < 30, "the person sits at the driver's position"
    assert np.all(np.diff(xs) > 5), f"the person must move right with the driver: {xs}"


def test_big_target_small_other_aspect_driver_no_distortion(astronaut):
    from dance_reenact.models.core.schema import LABEL, frame_to_people
    from dance_reenact.models.geometry.warp import warp_parsing
    from dance_reenact.pipeline import prepare_target

    big = cv2.resize(astronaut, (1536, 1536), interpolation=cv2.INTER_CUBIC)
    frames = _moving_driver(n=2, h=192, w=128, step=0.0)
    out, info = reenact(big, driver_pose=frames, background=np.zeros((8, 8, 3), np.uint8),
                        cfg=FAST)
    f0, _ = list(out)
    assert f0.shape == (192, 128, 3) and _person_mask(f0, np.zeros_like(f0)).sum() > 300

    def aspect(labels):
        ys, xs = np.nonzero(labels == LABEL["face"])
        return (xs.ptp() + 1) / (ys.ptp() + 1)

    # the same library calls the pipeline makes: the face keeps the photo's aspect ratio in
    # the narrow 128x192 frame (per-part similarity transforms, no stretching)
    from dance_reenact.models.geometry.warp import limit_source

    state = prepare_target(big, FAST, out_hw=(192, 128))
    labels, person, _ = limit_source(state.labels, state.person, (192, 128))
    assert max(labels.shape) < 1536  # a huge photo is reduced for the warp
    (driver,) = frame_to_people(frames[0])
    warped = warp_parsing(labels, person, driver, (192, 128))
    assert abs(aspect(warped) / aspect(labels) - 1) < 0.2


def test_driver_video_path_and_driver_background(astronaut):
    # a real person that MediaPipe finds: the astronaut photo sliding left to right
    h, w = 192, 192
    small = cv2.resize(astronaut, (160, 160), interpolation=cv2.INTER_AREA)
    plate = np.zeros((h, w, 3), np.uint8)
    plate[:] = (30, 90, 160)
    video = []
    for i in range(4):
        f = plate.copy()
        x = 4 + 8 * i
        f[32:192, x:x + 160] = small
        video.append(f)
    out, info = reenact(astronaut, driver_frames=lambda: iter(video), background="driver",
                        cfg=FAST)
    out = list(out)
    assert len(out) == 4 and out[0].shape == (h, w, 3)
    # the top strip is never covered by the driver: the clean plate keeps its colour there
    np.testing.assert_allclose(out[0][:20].reshape(-1, 3).mean(0), (30, 90, 160), atol=6)


@pytest.mark.parametrize("bad, match", [
    (np.zeros((256, 256, 3), np.uint8), "no person found in the target photo"),
    (np.zeros((16, 16, 3), np.uint8), "too small"),
])
def test_bad_targets_give_clear_errors(bad, match):
    with pytest.raises(PipelineError, match=match):
        out, _ = reenact(bad, driver_pose=_moving_driver(n=1), cfg=FAST)


def test_driver_without_anyone_is_an_error(astronaut):
    empty = [{"people": [], "canvas_width": 64, "canvas_height": 64}] * 3
    with pytest.raises(PipelineError, match="no person found in any driver frame"):
        reenact(astronaut, driver_pose=empty, cfg=FAST)
    with pytest.raises(PipelineError, match="exactly one driver"):
        reenact(astronaut, cfg=FAST)


def test_demo_writes_a_playable_mp4_and_contact_sheet(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--max-frames", "12"]) == 0
    out = capsys.readouterr().out
    assert str(tmp_path / "demo.mp4") in out and "contact sheet" in out
    frames = list(read_video(tmp_path / "demo.mp4"))
    assert len(frames) == 12 and frames[0].shape == (320, 512, 3)
    assert (tmp_path / "demo_contact_sheet.png").stat().st_size > 10_000
    # the astronaut's face is there: skin-coloured pixels near the top centre
    top = frames[6][:160, 160:352].reshape(-1, 3).astype(int)
    skin = (top[:, 0] > 150) & (top[:, 0] > top[:, 2] + 30)
    assert skin.mean() > 0.05


def test_cli_run_without_subcommand_and_missing_files(tmp_path, astronaut):
    from PIL import Image

    photo = tmp_path / "me.png"
    Image.fromarray(astronaut).save(photo)
    assert main(["--target", str(photo), "--driver", str(tmp_path / "nope.mp4"),
                 "--out", str(tmp_path / "o.mp4")]) == 1
    assert main(["--target", str(tmp_path / "missing.png"), "--out",
                 str(tmp_path / "o.mp4")]) == 1
    assert main(["--target", str(photo), "--max-frames", "3", "--face", "none",
                 "--out", str(tmp_path / "o.mp4")]) == 0
    assert len(list(read_video(tmp_path / "o.mp4"))) == 3


def test_learned_p2b_checkpoint_plugs_into_the_pipeline(astronaut, tmp_path):
    """--p2b FILE: our safetensors is loaded strictly and runs per frame (a random tiny
    network: we check the plumbing, frame size and count, not the quality)."""
    from dance_reenact.models.io.loading import save_model
    from dance_reenact.models.io.weights import WeightError
    from dance_reenact.models.networks.p2b import P2BGenerator

    path = save_model(P2BGenerator(ngf=4, n_down=2, n_res=1, work_height=64, work_width=40),
                      tmp_path / "p2b.safetensors")
    cfg = dataclasses.replace(FAST, p2b=str(path))
    out, info = reenact(astronaut, driver_pose=_moving_driver(n=2), cfg=cfg,
                        background=np.zeros((8, 8, 3), np.uint8))
    frames = list(out)
    assert len(frames) == 2 and frames[0].shape == (256, 192, 3)
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(path.read_bytes()[:100])
    with pytest.raises(WeightError, match="safetensors"):
        reenact(astronaut, driver_pose=_moving_driver(n=1),
                cfg=dataclasses.replace(FAST, p2b=str(bad)))


def test_driver_frames_without_a_person_get_an_interpolated_person(astronaut, caplog):
    # frame 2 of 5 lost its person (and frame 4, the last): the target keeps dancing there,
    # between its neighbours, instead of the frame showing the background alone.
    frames = _moving_driver()
    frames[2] = {"people": [], "canvas_width": 192, "canvas_height": 256}
    frames[4] = {"people": [], "canvas_width": 192, "canvas_height": 256}
    plain_bg = np.full((64, 64, 3), 40, np.uint8)
    with caplog.at_level("WARNING"):
        out, info = reenact(astronaut, driver_pose=frames, background=plain_bg, cfg=FAST)
        out = list(out)
    assert info["missing_frames"] == [2, 4]
    assert "no person found in 2" in caplog.text
    bg = np.full((256, 192, 3), 40, np.uint8)
    xs = [np.nonzero(_person_mask(f, bg))[1].mean() for f in out]
    assert all(_person_mask(f, bg).sum() > 500 for f in out)
    assert xs[1] + 5 < xs[2] < xs[3] - 5  # frame 2 halfway between its neighbours
    assert abs(xs[4] - xs[3]) < 3  # the last frame holds frame 3's pose


def test_learned_p2b_reads_densepose_r50_and_face_network_runs(astronaut, tmp_path, weights_dir,
                                                               monkeypatch):
    """A learned P2B on a driver VIDEO reads the DensePose network's output per frame (as the
    full_method graph), or keypoint DensePose with densepose=weightless; --face FILE runs a
    FaceRefineNet on every frame (stand-ins: the plumbing, not the quality)."""
    import hashlib

    import torch
    from test_one_path import _sliding_astronaut
    from weight_fakes import box_densepose_torchscript

    from dance_reenact.models.io import weights
    from dance_reenact.models.io.loading import save_model
    from dance_reenact.models.networks import p2b as p2b_mod
    from dance_reenact.models.networks.face_refine import FaceRefineNet
    from dance_reenact.models.networks.p2b import P2BGenerator

    data = box_densepose_torchscript()
    spec = weights.REGISTRY["densepose_r50"]
    (weights_dir / spec.disk_name).write_bytes(data)
    monkeypatch.setitem(weights.REGISTRY, "densepose_r50", dataclasses.replace(
        spec, sha256=hashlib.sha256(data).hexdigest()))
    torch.manual_seed(0)
    p2b = save_model(P2BGenerator(ngf=4, n_down=2, n_res=1, work_height=64, work_width=40),
                     tmp_path / "p2b.safetensors")
    face = save_model(FaceRefineNet(crop_size=64, ngf=8, n_down=2, max_channels=16, embed_dim=8),
                      tmp_path / "face.safetensors")
    seen = []
    real = p2b_mod.predict_parsing

    def spy(net, labels, frames, **kw):  # what the network is fed per driver frame
        seen.extend(np.unique(f.index).tolist() for f in frames)
        return real(net, labels, frames, **kw)
    monkeypatch.setattr(p2b_mod, "predict_parsing", spy)
    from dance_reenact.models.networks import face_refine as fr_mod

    refined = []
    real_refine = fr_mod.refine_face_network
    monkeypatch.setattr(fr_mod, "refine_face_network",
                        lambda *a, **kw: refined.append(1) or real_refine(*a, **kw))
    frames = _sliding_astronaut(astronaut, n=3)
    out, info = reenact(astronaut[::2, ::2].copy(), driver_frames=lambda: iter(frames),
                        cfg=PipelineConfig(p2b=str(p2b), face=str(face)))
    out = list(out)
    assert len(out) == 3 and out[0].shape == (192, 192, 3)
    # the stand-in's parts (torso front 2, head right 23), not keypoint DensePose's many
    assert len(seen) == 3 and all(set(s) <= {0, 2, 23} for s in seen), seen
    seen.clear()
    out, _ = reenact(astronaut[::2, ::2].copy(), driver_frames=lambda: iter(frames),
                     cfg=PipelineConfig(p2b=str(p2b), densepose="weightless", face="none"))
    list(out)
    assert len(seen) == 3 and any(len(set(s) - {0, 2, 23}) > 0 for s in seen)
    # the FaceRefineNet on the weightless render (a random P2B draws no face to refine)
    out, _ = reenact(astronaut[::2, ::2].copy(), driver_frames=lambda: iter(frames),
                     cfg=PipelineConfig(face=str(face)))
    assert len(list(out)) == 3 and len(refined) == 3
