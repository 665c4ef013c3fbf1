"""Opt-in golden checks on the REAL weight files: ``pytest -m real_weights``.

They run only where the files are already on disk (the models folders or the cache, looked
up like the registry does; nothing is downloaded) and otherwise skip with one line naming
what is missing. Without ``-m real_weights`` they are collected and skipped at once
(tests/conftest.py). The last section runs the same check code on the generated stand-ins in
every test run, so none of it is dead code."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from real_weights_checks import (
    check_densepose,
    check_dwpose,
    check_facenet,
    check_fan68,
    check_fid,
    check_lama,
    check_lpips,
    check_schp,
    check_vgg19,
    dev_photo,
    find_real,
    mediapipe_face_68,
    mediapipe_person,
)

real = pytest.mark.real_weights


def need(*names: str):
    paths = []
    for name in names:
        path, why = find_real(name)
        if path is None:
            pytest.skip(f"real weights missing: {why}")
        paths.append(path)
    return paths if len(paths) > 1 else paths[0]


def _skimage(name: str) -> np.ndarray:
    from skimage import data

    img = getattr(data, name)()
    return np.repeat(img[..., None], 3, 2) if img.ndim == 2 else img[..., :3]


def _face_box(lm68: np.ndarray) -> tuple[int, int, int, int]:
    x0, y0 = lm68.min(0)
    x1, y1 = lm68.max(0)
    return int(x0), int(y0), int(x1) + 1, int(y1) + 1


def _face_crop(rgb: np.ndarray, lm68: np.ndarray, size: int = 168) -> np.ndarray:
    import cv2

    x0, y0, x1, y1 = _face_box(lm68)
    cx, cy, half = (x0 + x1) / 2, (y0 + y1) / 2, 0.65 * max(x1 - x0, y1 - y0)
    k = size / (2 * half)
    mat = np.array([[k, 0, size / 2 - k * cx], [0, k, size / 2 - k * cy]])
    return cv2.warpAffine(rgb, mat, (size, size), flags=cv2.INTER_AREA)


def _lama_mask(shape) -> np.ndarray:
    m = np.zeros(shape[:2], bool)
    m[300:360, 40:110] = True  # a patch of the astronaut's suit and background edge
    return m


# --------------------------------------------------------------------------------------------
# the real files (opt-in)
# --------------------------------------------------------------------------------------------

@real
def test_real_schp_labels_face_and_hair_in_mediapipes_face_box(astronaut):
    from dance_reenact.models.perception.schp import load_schp

    path = need("schp_lip")
    lm = mediapipe_face_68(astronaut)
    assert lm is not None
    got = check_schp(load_schp(path), astronaut, _face_box(lm))
    assert got["face"] > 0.5 and got["face_hair"] > 0.8, got


@real
def test_real_dwpose_nose_and_wrists_near_mediapipes(astronaut):
    det, pose = need("dwpose_detector", "dwpose_wholebody")
    for rgb in [astronaut] + ([p] if (p := dev_photo()) is not None else []):
        ref = mediapipe_person(rgb)
        got = check_dwpose(det, pose, rgb, ref.person if ref else None)
        assert got["people"] >= 1, got
        tol = 0.03 * max(rgb.shape[:2])  # a few px: 15 px on the 512 px astronaut
        assert got["nose"] < tol, got
        assert all(not (got[k] >= tol) for k in ("right_wrist", "left_wrist")), got


@real
def test_real_densepose_one_box_over_the_person(astronaut):
    path = need("densepose_r50")
    for rgb in [astronaut] + ([p] if (p := dev_photo()) is not None else []):
        ref = mediapipe_person(rgb)
        assert ref is not None and ref.mask is not None
        got = check_densepose(path, rgb, ref.mask)
        assert got["blobs"] == 1 and got["box_covers_mask"] > 0.95, got
        assert got["fg_on_person"] > 0.8, got


@real
def test_real_facenet_knows_the_astronaut_from_the_cameraman(astronaut):
    path = need("facenet_vggface2")
    lm = mediapipe_face_68(astronaut)
    cam = _skimage("camera")
    lm_cam = mediapipe_face_68(cam)
    assert lm is not None and lm_cam is not None
    got = check_facenet(path, _face_crop(astronaut, lm), _face_crop(cam, lm_cam)[4:164, 4:164])
    assert got["shifted"] > got["other"] + 0.2, got


@real
def test_real_vgg19_sees_a_cat_in_chelsea():
    path = need("vgg19")
    top5 = check_vgg19(path, _skimage("chelsea"))
    assert any(281 <= i <= 285 for i in top5), top5  # ImageNet 281-285: domestic cats


@real
def test_real_lpips_equals_the_lpips_package():
    backbone, head = need("vgg16", "lpips_vgg")
    a = torch.from_numpy(_skimage("astronaut")[::4, ::4].copy()).permute(2, 0, 1)[None] / 255
    b = (a + 0.1 * torch.randn(a.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    got = check_lpips(backbone, head, a, b)
    assert got["ours"] == pytest.approx(got["reference"], rel=1e-4)


@real
def test_real_fid_inception_equals_pytorch_fid():
    path = need("fid_inception")
    frames = [_skimage("astronaut"), _skimage("chelsea"), _skimage("coffee")]
    got = check_fid(path, frames)
    ref = got["reference"]
    np.testing.assert_allclose(got["ours"], ref, rtol=1e-4, atol=1e-6 * np.abs(ref).max())


@real
def test_real_lama_beats_telea_on_a_real_photo(astronaut):
    path = need("big_lama")
    got = check_lama(path, astronaut, _lama_mask(astronaut.shape))
    assert got["lama"] > got["telea"], got


@real
def test_real_fan68_near_mediapipes_68_points(astronaut):
    path = need("fan68")
    got = check_fan68(path, astronaut, mediapipe_face_68(astronaut))
    assert got["found"], got
    assert got["median_inner"] < 0.1 * got["eye_width"], got  # ~4 px on the astronaut


# --------------------------------------------------------------------------------------------
# the same code on the generated stand-ins (every run): the thresholds above are not asserted
# --------------------------------------------------------------------------------------------

def test_real_weight_lookup_skips_with_one_line(tmp_path):
    from dance_reenact.models.io import weights

    path, why = find_real("big_lama", roots=[tmp_path])
    assert path is None and why.count("\n") == 0
    assert "fofr/comfyui/inpaint/big-lama.pt" in why and str(tmp_path) in why
    spec = weights.REGISTRY["big_lama"]
    (tmp_path / spec.disk_name).write_bytes(b"not the pinned file")
    with pytest.raises(weights.WeightError):  # a wrong file fails loudly, it is not skipped
        find_real("big_lama", roots=[tmp_path])


def test_golden_checks_run_on_the_stand_ins(tmp_path, astronaut):
    from weight_fakes import (
        box_densepose_torchscript,
        channel_lama_torchscript,
        dwpose_following_files,
        facenet_state_bytes,
    )

    det, pose = dwpose_following_files()
    (tmp_path / "det.onnx").write_bytes(det)
    (tmp_path / "pose.onnx").write_bytes(pose)
    dark = astronaut.copy()
    dark[:, :100] = 0  # the following detector boxes the non-black pixels
    got = check_dwpose(tmp_path / "det.onnx", tmp_path / "pose.onnx", dark,
                       mediapipe_person(astronaut).person)
    assert got["people"] == 1 and np.isfinite(got["nose"])

    (tmp_path / "dp.pt").write_bytes(box_densepose_torchscript())
    mask = np.zeros(astronaut.shape[:2], np.float32)
    mask[:, 100:] = 1
    got = check_densepose(tmp_path / "dp.pt", dark, mask)
    assert got["blobs"] == 1 and got["box_covers_mask"] > 0.95

    (tmp_path / "lama.pt").write_bytes(channel_lama_torchscript())
    got = check_lama(tmp_path / "lama.pt", astronaut, _lama_mask(astronaut.shape))
    assert np.isfinite(got["lama"]) and np.isfinite(got["telea"])

    (tmp_path / "facenet.pth").write_bytes(facenet_state_bytes())
    lm = mediapipe_face_68(astronaut)
    assert lm is not None
    got = check_facenet(tmp_path / "facenet.pth", _face_crop(astronaut, lm),
                        _face_crop(astronaut, lm)[4:164, 4:164])
    assert abs(got["other"]) <= 1 + 1e-5 and abs(got["shifted"]) <= 1 + 1e-5

    def face_everywhere(x: np.ndarray) -> np.ndarray:  # SCHP's ONNX-callable contract
        logits = np.zeros((1, 20, x.shape[2] // 4, x.shape[3] // 4), np.float32)
        logits[:, 13] = 1.0  # LIP "face"
        return logits

    got = check_schp(face_everywhere, astronaut, _face_box(lm))
    assert got == {"face": 1.0, "face_hair": 1.0}

    from test_upstream_contracts import _fan_standin

    (tmp_path / "fan.onnx").write_bytes(_fan_standin())
    got = check_fan68(tmp_path / "fan.onnx", astronaut, lm)
    assert got["found"] and np.isfinite(got["median_inner"]) and got["eye_width"] > 10


def test_golden_vgg19_check_runs_on_the_stand_in(tmp_path):
    from skimage import data
    from weight_fakes import write_sparse_vgg19

    write_sparse_vgg19(tmp_path / "vgg19.safetensors", digest=False)
    top5 = check_vgg19(tmp_path / "vgg19.safetensors", data.chelsea())
    assert len(set(top5)) == 5 and all(0 <= i < 1000 for i in top5)


def test_golden_lpips_check_runs_on_the_stand_in(tmp_path):
    from pathlib import Path

    import lpips
    from metrics_fixtures import write_timm_vgg16

    head = Path(lpips.__file__).parent / "weights" / "v0.1" / "vgg.pth"  # the real heads
    backbone = write_timm_vgg16(tmp_path / "vgg16.safetensors")
    a = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    got = check_lpips(backbone, head, a, (a + 0.1).clamp(0, 1))
    assert got["ours"] == pytest.approx(got["reference"], rel=1e-4)


def test_golden_fid_check_runs_on_the_stand_in(tmp_path):
    from metrics_fixtures import fid_inception_bytes

    (tmp_path / "fid.pth").write_bytes(fid_inception_bytes())
    frames = [np.full((75, 75, 3), v, np.uint8) for v in (40, 200)]
    got = check_fid(tmp_path / "fid.pth", frames)
    np.testing.assert_allclose(got["ours"], got["reference"], rtol=1e-4,
                               atol=1e-6 * np.abs(got["reference"]).max())
