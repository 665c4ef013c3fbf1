"""P2B training: it learns on synthetic people, checkpoints/resumes, runs under torchrun, reads
the VIP layout, and its augmentations do what they say."""

from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from dance_reenact.cli import main as cli_main
from dance_reenact.models.core.schema import BODY, LABEL, people_to_frame
from dance_reenact.models.io.loading import load_model, read_metadata
from dance_reenact.training import augment as A
from dance_reenact.training import synthetic as S
from dance_reenact.training.data import SyntheticPairs, VIPPairs, synthetic_eval_pairs
from dance_reenact.training.p2b import P2BTrainConfig, P2BTrainer, evaluate

SMALL = dict(work_height=64, work_width=40, ngf=8, n_down=2, n_res=2, ndf=8, d_layers=2)


@pytest.mark.slow
def test_short_training_beats_copy_and_untrained(tmp_path) -> None:
    """A small P2B trained with the paper's objective (LSGAN + feature matching λ_D = 40 +
    cross-entropy) for 320 steps (~45 s of one CPU core) on synthetic pairs scores higher SSIS
    and SSBS on held-out pairs than copying p* and than the untrained network."""
    torch.manual_seed(0)
    cfg = P2BTrainConfig(out=str(tmp_path / "run"), steps=10**6, batch_size=8, lr=1e-3,
                         log_every=20, save_every=0, seed=0, **SMALL)
    train = SyntheticPairs(384, work_hw=(64, 40), render_hw=(128, 80), seed=0, cache=True,
                           parsing_aug=A.ParsingAugment(5, 0.05, 0.1, 0.1))
    trainer = P2BTrainer(cfg, dataset=train)
    held_out = synthetic_eval_pairs(24, render_hw=(128, 80), seed=99_999)
    copy = evaluate(None, held_out)
    untrained = evaluate(trainer.G, held_out)
    trainer.fit(steps=320)
    trained = evaluate(trainer.G, held_out)
    msg = f"copy {copy}, untrained {untrained}, trained {trained} after {trainer.step} steps"
    for key in ("ssis", "ssbs"):
        assert trained[key] > copy[key] + 0.02, msg
        assert trained[key] > untrained[key] + 0.02, msg
    rows = list(csv.DictReader(open(tmp_path / "run" / "losses.csv")))
    assert rows and float(rows[-1]["ce"]) < float(rows[0]["ce"])
    assert all(np.isfinite(float(r[k])) for r in rows for k in ("d", "g_gan", "fm", "ce"))


def _cli_args(out: Path, steps: int, *extra: str) -> list[str]:
    return ["train", "p2b", "--data", "synthetic", "--out", str(out), "--steps", str(steps),
            "--batch-size", "2", "--work-size", "32x20", "--ngf", "4", "--n-down", "2",
            "--n-res", "1", "--ndf", "4", "--d-layers", "1", "--log-every", "1",
            "--synthetic-pairs", "16", *extra]


def test_cli_checkpoint_and_resume(tmp_path, capsys) -> None:
    out = tmp_path / "run"
    assert cli_main(_cli_args(out, 2, "--eval-pairs", "2")) == 0
    printed = capsys.readouterr().out
    assert "held-out copy p*" in printed and "held-out trained" in printed and "SSIS=" in printed
    g = out / "p2b_generator.safetensors"
    assert read_metadata(g)["step"] == "2"
    assert cli_main(_cli_args(out, 4, "--resume")) == 0
    assert read_metadata(g)["step"] == "4"
    rows = list(csv.DictReader(open(out / "losses.csv")))
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4]
    assert json.loads(read_metadata(g)["train_config"])["lambda_fm"] == 40.0
    load_model(g, expected_arch="P2BGenerator")
    # resuming into a different network is refused
    assert cli_main(_cli_args(out, 6, "--resume", "--ngf", "8")) == 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_torchrun_two_processes_and_the_checkpoint_loads_into_the_node(tmp_path,
                                                                       weights_dir) -> None:
    out = tmp_path / "ddp"
    env = dict(os.environ, OMP_NUM_THREADS="1", GLOO_SOCKET_IFNAME="lo",
               PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--nnodes=1",
           "--master_addr=127.0.0.1", f"--master_port={_free_port()}",
           "-m", "dance_reenact.cli", *_cli_args(out, 2)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    ckpt = out / "p2b_generator.safetensors"
    assert read_metadata(ckpt)["step"] == "2"
    # into the P2B node through the loader, from the models folder
    from dance_reenact.nodes.p2b import P2B, P2BLoader
    from dance_reenact.nodes.sockets import DensePose, Parsing

    (weights_dir / "ddp_p2b.safetensors").write_bytes(ckpt.read_bytes())
    (model,) = P2BLoader().load("local", local_file="ddp_p2b.safetensors")
    _, a, b = S.random_pair(np.random.default_rng(0), 96, 60)
    dp = DensePose(torch.from_numpy(b.densepose_i[None]), torch.from_numpy(b.densepose_u[None]),
                   torch.from_numpy(b.densepose_v[None]))
    parsing, _ = P2B().run(model, Parsing(torch.from_numpy(a.labels[None])),
                           driver_pose=[people_to_frame([b.person], 60, 96)],
                           driver_densepose=dp)
    assert parsing.labels.shape == (1, 96, 60)


def _write_vip(root: Path, videos: int = 2, frames: int = 3) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    for v in range(videos):
        body = S.random_body(rng)
        for f in range(frames):
            smp = S.render(body, S.random_pose(rng, body), 96, 60)
            lab = smp.labels.copy()  # VIP has no hand labels: hands are arms there
            lab[lab == LABEL["left_hand"]] = LABEL["left_arm"]
            lab[lab == LABEL["right_hand"]] = LABEL["right_arm"]
            stem = f"{f * 10:012d}"
            for sub, arr in (("Images", smp.image), ("Category_ids", lab)):
                d = root / sub / f"video{v}"
                d.mkdir(parents=True, exist_ok=True)
                Image.fromarray(arr).save(d / (stem + (".jpg" if sub == "Images" else ".png")))
            kd, dd = root.parent / "kp" / f"video{v}", root.parent / "dp" / f"video{v}"
            kd.mkdir(parents=True, exist_ok=True)
            dd.mkdir(parents=True, exist_ok=True)
            (kd / f"{stem}.json").write_text(json.dumps([people_to_frame([smp.person], 60, 96)]))
            np.savez(dd / f"{stem}.npz", i=smp.densepose_i, u=smp.densepose_u,
                     v=smp.densepose_v)


def test_vip_layout_prepare_and_train(tmp_path) -> None:
    root = tmp_path / "VIP"
    _write_vip(root)
    assert cli_main(["prepare", str(root), "--keypoints-dir", str(tmp_path / "kp"),
                     "--densepose-dir", str(tmp_path / "dp")]) == 0
    assert (root / "prepared" / "video1" / "000000000020.dp.npz").is_file()
    ds = VIPPairs(root, work_hw=(32, 20), max_gap=10)
    assert len(ds) == 6
    video, a, b = ds.pair_names(0)
    assert a != b and abs(int(a) - int(b)) <= 10
    ex = ds[0]
    assert ex["source"].shape == (32, 20) and ex["stick"].shape == (3, 32, 20)
    assert int(ex["target"].max()) < 22
    # hands are painted from the hand keypoints onto VIP's arm labels
    assert bool(((ex["source"] == LABEL["left_hand"]) | (ex["source"] == LABEL["right_hand"]))
                .any()) or bool(((ex["target"] >= 20)).any())
    out = tmp_path / "run"
    assert cli_main(["train", "p2b", "--data", str(root), "--out", str(out), "--steps", "1",
                     "--batch-size", "2", "--work-size", "32x20", "--ngf", "4", "--n-down", "2",
                     "--n-res", "1", "--ndf", "4", "--d-layers", "1"]) == 0
    assert (out / "p2b_generator.safetensors").is_file()


def test_prepare_runs_the_perception_backends_by_name(tmp_path) -> None:
    """``reenact prepare`` with the offline backends (MediaPipe + weightless DensePose) on a
    tiny VIP-layout folder: every annotated frame gets a POSE_KEYPOINT file and DensePose."""
    from dance_reenact.training.prepare import prepare_dataset

    root = tmp_path / "VIP"
    _write_vip(root, 1, 2)
    assert prepare_dataset(root, pose_backend="mediapipe", densepose_backend="weightless") == 2
    for stem in ("000000000000", "000000000010"):
        frame = json.loads((root / "prepared" / "video0" / f"{stem}.json").read_text())
        assert frame["canvas_width"] == 60 and frame["canvas_height"] == 96
        with np.load(root / "prepared" / "video0" / f"{stem}.dp.npz") as z:
            assert z["i"].shape == (96, 60) and z["i"].dtype == np.uint8
    # already prepared frames are skipped unless asked
    assert prepare_dataset(root, keypoints_dir=str(tmp_path / "kp"),
                           densepose_dir=str(tmp_path / "dp")) == 0
    with pytest.raises(ValueError, match="DensePose backend"):
        prepare_dataset(root, densepose_backend="nope", overwrite=True)
    with pytest.raises(FileNotFoundError, match="Category_ids"):
        VIPPairs(tmp_path / "nowhere")


# -- augmentation -----------------------------------------------------------------------------


def _person():
    rng = np.random.default_rng(1)
    body = S.random_body(rng)
    return S.render(body, S.SyntheticPose(), 256, 160)  # arms down: inside the frame


def test_limb_scaling_moves_children_and_keeps_directions() -> None:
    smp = _person()
    p = smp.person
    q = A.scale_limbs(p, np.random.default_rng(0), 1.3, 1.3)
    b0, b1 = p.body, q.body
    e, w = BODY["right_elbow"], BODY["right_wrist"]
    s = BODY["right_shoulder"]
    assert np.allclose(np.linalg.norm(b1[w, :2] - b1[e, :2]),
                       1.3 * np.linalg.norm(b0[w, :2] - b0[e, :2]), rtol=1e-4)
    d0 = (b0[e, :2] - b0[s, :2]) / np.linalg.norm(b0[e, :2] - b0[s, :2])
    d1 = (b1[e, :2] - b1[s, :2]) / np.linalg.norm(b1[e, :2] - b1[s, :2])
    assert np.allclose(d0, d1, atol=1e-5)
    # the hand moves with the wrist
    shift = b1[w, :2] - b0[w, :2]
    assert np.allclose(q.right_hand[:, :2] - p.right_hand[:, :2], shift, atol=1e-3)
    np.testing.assert_allclose(b1[BODY["neck"]], b0[BODY["neck"]])


def test_jitter_and_dropout() -> None:
    p = _person().person
    j = A.jitter_joints(p, np.random.default_rng(0), 0.01)
    diag = np.hypot(*(np.subtract(p.bbox()[2:], p.bbox()[:2])))
    moved = np.linalg.norm(j.body[:, :2] - p.body[:, :2], axis=1)
    assert 0.002 * diag < moved.mean() < 0.03 * diag
    d = A.drop_parts(p, np.random.default_rng(0), 1.0)
    assert d.body[BODY["left_wrist"], 2] == 0 and d.face[:, 2].max() == 0
    assert d.body[BODY["neck"], 2] > 0
    same = A.PoseAugment()(p, np.random.default_rng(0))
    np.testing.assert_array_equal(same.body, p.body)


def test_squeeze_stretch_changes_width_not_height() -> None:
    lab = _person().labels
    wide = A.squeeze_stretch(lab, 1.3, axis=1)
    ys, xs = np.nonzero(lab)
    ys2, xs2 = np.nonzero(wide)
    assert 1.2 < (xs2.max() - xs2.min()) / (xs.max() - xs.min()) < 1.4
    assert abs((ys2.max() - ys2.min()) - (ys.max() - ys.min())) <= 1
    rot = A.rotate_scale(lab, 0.0, 1.0)
    np.testing.assert_array_equal(rot, lab)


def test_hand_label_augment() -> None:
    lab = _person().labels
    merged = A.hand_label_augment(lab, np.random.default_rng(0), p_merge=1.0, p_grow=0.0)
    assert not np.isin(merged, [LABEL["left_hand"], LABEL["right_hand"]]).any()
    grown = A.hand_label_augment(lab, np.random.default_rng(0), p_merge=0.0, p_grow=1.0)
    assert (grown == LABEL["left_hand"]).sum() > (lab == LABEL["left_hand"]).sum()
