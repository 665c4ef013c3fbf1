"""`reenact train face`: FaceRefineNet learns on synthetic faces; the CLI saves and resumes."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from dance_reenact import cli
from dance_reenact.models.io.loading import load_model, read_metadata
from dance_reenact.models.networks.face_refine import FaceRefineNet
from dance_reenact.training import face as T


def test_synthetic_faces_vary_by_identity_and_view():
    rng = np.random.default_rng(0)
    a, b = T.Identity.random(rng), T.Identity.random(rng)
    a1, a2, b1 = T.draw_face(a, 64, rng), T.draw_face(a, 64, rng), T.draw_face(b, 64, rng)
    assert a1.shape == (64, 64, 3) and a1.dtype == np.uint8
    centre = (slice(20, 44), slice(20, 44))  # the face, not the random background
    same = np.abs(a1[centre].astype(int) - a2[centre]).mean()
    other = np.abs(a1[centre].astype(int) - b1[centre]).mean()
    assert 0 < same < other
    f0 = T.degrade(a1, rng, b1)
    assert f0.shape == a1.shape and 3 < np.abs(f0.astype(int) - a1).mean() < 60


@pytest.mark.slow
def test_training_improves_held_out_crops(tmp_path):
    """Blur/noise/JPEG-degraded synthetic faces: after 150 steps (all four losses on) the
    composite beats the untrained network on crops of identities it never saw."""
    torch.manual_seed(0)
    kw = dict(drift=0.0, cast=0.0)
    held = [next(T.synthetic_batches(8, 32, 10_000 + i, **kw)) for i in range(2)]
    cfg = T.TrainConfig(out=tmp_path / "run", steps=150, batch=8, size=32, ngf=8, n_down=2,
                        embed_dim=16, lr=1e-3, log_every=50, save_every=10_000,
                        perceptual="random", **kw)
    torch.manual_seed(0)
    untrained = FaceRefineNet(crop_size=32, ngf=8, n_down=2, max_channels=64, embed_dim=16)
    before = T.evaluate(untrained, held)
    net = T.train(cfg)
    after = T.evaluate(net, held)
    assert abs(before["psnr"] - before["psnr_input"]) < 0.05  # untrained = identity
    assert after["psnr"] > before["psnr"] + 0.5, (before, after)
    assert after["l1"] < 0.95 * before["l1"], (before, after)
    rows = list(csv.reader((tmp_path / "run" / "losses.csv").open()))
    assert [int(r[0]) for r in rows] == [50, 100, 150]
    saved = load_model(tmp_path / "run" / "face_refine.safetensors", expected_arch="FaceRefineNet")
    x = torch.rand(1, 3, 32, 32)
    e = saved.embed(x)
    torch.testing.assert_close(saved(x, e)[0], net(x, net.embed(x))[0])


def test_cli_train_face_and_resume(tmp_path, capsys):
    out = tmp_path / "cli"
    args = ["train", "face", "--out", str(out), "--steps", "4", "--batch", "2", "--size", "32",
            "--ngf", "4", "--n-down", "2", "--embed-dim", "8", "--log-every", "2",
            "--device", "cpu", "--perceptual", "random"]
    assert cli.main(args) == 0
    assert str(out / "face_refine.safetensors") in capsys.readouterr().out
    assert read_metadata(out / "face_refine.safetensors")["step"] == "4"
    assert cli.main(args[:5] + ["6"] + args[6:] + ["--resume"]) == 0
    assert read_metadata(out / "face_refine.safetensors")["step"] == "6"
    steps = [int(r[0]) for r in csv.reader((out / "losses.csv").open())]
    assert steps == [2, 4, 6]


def test_facenet_perceptual_loss_through_the_registry(tmp_path, weights_dir, monkeypatch):
    """The default perceptual network is the paper's face embedding (FaceNet, VGGFace2),
    resolved through the registry: here a randomly initialised InceptionResnetV1 placed by
    hand under the registry's file name, offline."""
    from dance_reenact.models.io import weights
    from dance_reenact.models.networks.facenet import InceptionResnetV1

    torch.manual_seed(0)
    spec = weights.REGISTRY["facenet_vggface2"]
    path = weights_dir / spec.disk_name
    torch.save(InceptionResnetV1(num_classes=0).state_dict(), path)
    monkeypatch.setitem(weights.REGISTRY, "facenet_vggface2", weights.WeightSpec(
        spec.repo_id, spec.filename, spec.revision, weights.sha256_file(path), spec.license))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    feats = T.perceptual_net("facenet")
    x = torch.rand(2, 3, 32, 32)
    out = feats(x)
    assert [f.shape[1] for f in out] == [64, 256, 256, 896]
    assert all(not p.requires_grad for p in feats.parameters())
    cfg = T.TrainConfig(out=tmp_path / "fn", steps=2, batch=2, size=32, ngf=4, n_down=2,
                        embed_dim=8, log_every=1, drift=0.0, cast=0.0)
    assert cfg.perceptual == "facenet"
    T.train(cfg)
    rows = list(csv.reader((tmp_path / "fn" / "losses.csv").open()))
    assert len(rows) == 2 and all(np.isfinite(float(r[3])) and float(r[3]) > 0 for r in rows)
