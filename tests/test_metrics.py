"""The paper's metrics: ideal values on identical inputs, analytic responses to perturbations,
agreement with reference implementations, LPIPS/FID weights through the real registry."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from metrics_fixtures import (
    fid_inception_bytes,
    fid_inception_state,
    install_vgg16,
    serve_fid_inception,
    serve_lpips_head,
    write_timm_vgg16,
)

from dance_reenact.models.core.schema import LABEL
from dance_reenact.models.io.weights import WeightError
from dance_reenact.models.metrics import scores as metrics

# ---------------------------------------------------------------------------- SSBS/SSIS/DP*


def _blocks(h=64, w=96, shift=0):
    """Upper clothes 20x30 at x=10 (shifted by `shift`), pants 20x20 at x=60, on background."""
    m = np.zeros((h, w), np.uint8)
    m[10:30, 10 + shift:40 + shift] = LABEL["upper_clothes"]
    m[40:60, 60:80] = LABEL["pants"]
    return m


def test_parsing_identical_maps_score_one_and_empty_frames_have_no_score():
    a = np.stack([_blocks(), np.zeros((64, 96), np.uint8)])
    ssbs, ssis = metrics.parsing_similarity(a, a.copy())
    # both maps empty: no IoU (NaN, left out of means), not a free 1.0
    assert ssbs[0] == ssis[0] == 1.0 and np.isnan(ssbs[1]) and np.isnan(ssis[1])
    conf = metrics.confusion_matrices(a, a.copy(), 22)
    assert metrics.both_empty(conf).tolist() == [False, True]
    # one map empty, the other not: the person was missed, IoU 0
    b = np.stack([np.zeros((64, 96), np.uint8), np.zeros((64, 96), np.uint8)])
    ssbs, ssis = metrics.parsing_similarity(b, a)
    assert ssbs[0] == ssis[0] == 0.0
    dpbs, dpis = metrics.densepose_similarity(np.zeros((1, 8, 8), np.uint8),
                                              np.zeros((1, 8, 8), np.uint8))
    assert np.isnan(dpbs[0]) and np.isnan(dpis[0])


@pytest.mark.parametrize("k", [1, 3, 10])
def test_shifting_a_part_by_k_pixels_lowers_iou_analytically(k):
    gt, pred = _blocks(), _blocks(shift=k)
    ssbs, ssis = metrics.parsing_similarity(pred[None], gt[None])
    part = (30 - k) / (30 + k)  # the shifted 20x30 block against itself
    assert ssis[0] == pytest.approx((part + 1.0) / 2)  # pants untouched
    inter = 20 * (30 - k) + 400
    union = 20 * (30 + k) + 400
    assert ssbs[0] == pytest.approx(inter / union)


def test_relabelled_part_keeps_ssbs_but_drops_ssis():
    gt = _blocks()
    pred = gt.copy()
    pred[pred == LABEL["pants"]] = LABEL["skirt"]
    ssbs, ssis = metrics.parsing_similarity(pred[None], gt[None])
    assert ssbs[0] == 1.0
    # present labels: upper (1.0), pants (0), skirt (0)
    assert ssis[0] == pytest.approx(1 / 3)


def test_densepose_similarity_uses_all_25_indices():
    gt = np.zeros((1, 32, 32), np.uint8)
    gt[0, 4:20, 4:20] = 24
    pred = gt.copy()
    pred[0, 4:20, 4:12] = 23
    dpbs, dpis = metrics.densepose_similarity(pred, gt)
    assert dpbs[0] == 1.0 and dpis[0] == pytest.approx(0.5 * (128 / 256) + 0.5 * 0)
    with pytest.raises(ValueError, match="outside 0..24"):
        metrics.densepose_similarity(pred + 2, gt)


def test_confusion_is_streamed_in_chunks_with_same_result():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 22, (7, 20, 24), dtype=np.uint8)
    b = rng.integers(0, 22, (7, 20, 24), dtype=np.uint8)
    c1 = metrics.confusion_matrices(torch.from_numpy(a), torch.from_numpy(b), 22, chunk=2)
    c2 = metrics.confusion_matrices(torch.from_numpy(a), torch.from_numpy(b), 22, chunk=100)
    assert torch.equal(c1, c2) and int(c1.sum()) == a.size
    assert int(c1[3, 5, 7]) == int(((a[3] == 5) & (b[3] == 7)).sum())


# ---------------------------------------------------------------------------- SSIM / PSNR


def _smooth_image(h=48, w=64, seed=0) -> np.ndarray:
    import cv2

    rng = np.random.default_rng(seed)
    x = rng.random((h, w, 3)).astype(np.float32)
    return np.clip(cv2.GaussianBlur(x, (0, 0), 3) * 2 - 0.5, 0, 1)


def test_ssim_matches_skimage_and_is_one_on_identical_images():
    from skimage.metrics import structural_similarity

    a = _smooth_image()
    b = np.clip(a + np.random.default_rng(1).normal(0, 0.05, a.shape), 0, 1).astype(np.float32)
    ta = torch.from_numpy(a).permute(2, 0, 1)[None]
    tb = torch.from_numpy(b).permute(2, 0, 1)[None]
    ours = metrics.ssim(ta, tb)[0]
    ref = structural_similarity(a, b, gaussian_weights=True, sigma=1.5,
                                use_sample_covariance=False, data_range=1.0, channel_axis=-1)
    assert ours == pytest.approx(ref, abs=1e-6)
    assert ours < 0.95
    assert metrics.ssim(ta, ta.clone())[0] == pytest.approx(1.0, abs=1e-12)
    with pytest.raises(ValueError, match="at least 11x11"):
        metrics.ssim(ta[..., :8, :8], ta[..., :8, :8])


def test_ssim_torch_path_for_accelerators_equals_the_cpu_path(monkeypatch):
    a = torch.from_numpy(_smooth_image()).permute(2, 0, 1)[None]
    b = (a + 0.05 * torch.randn(a.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    cpu = metrics.ssim_map(a, b)
    monkeypatch.setattr(metrics, "_numpy_filter", lambda device: False)
    torch_path = metrics.ssim_map(a, b)
    assert torch_path.shape == cpu.shape == (1, 3, 38, 54)
    assert torch.allclose(torch_path, cpu, atol=1e-12)


def test_ssim_falls_with_noise_and_mask_restricts_it():
    a = torch.from_numpy(_smooth_image()).permute(2, 0, 1)[None]
    g = torch.Generator().manual_seed(0)
    vals = [metrics.ssim(a, (a + s * torch.randn(a.shape, generator=g)).clamp(0, 1))[0]
            for s in (0.01, 0.05, 0.2)]
    assert vals[0] > vals[1] > vals[2]
    b = a.clone()
    b[..., :, 40:] = torch.rand(b[..., :, 40:].shape, generator=g)  # damage the right part only
    mask = torch.zeros(1, 48, 64)
    mask[:, :, :25] = 1
    assert metrics.ssim(a, b, mask=mask)[0] == pytest.approx(1.0, abs=1e-9)
    assert metrics.ssim(a, b)[0] < 0.9


@pytest.mark.parametrize("sigma", [0.01, 0.03, 0.1])
def test_psnr_of_gaussian_noise_is_20_log10_one_over_sigma(sigma):
    g = torch.Generator().manual_seed(0)
    a = torch.full((2, 3, 128, 128), 0.5)
    b = a + sigma * torch.randn(a.shape, generator=g)
    psnr = metrics.masked_psnr(b, a)
    assert psnr == pytest.approx([20 * np.log10(1 / sigma)] * 2, abs=0.1)


def test_masked_psnr_only_sees_the_mask_and_caps_identical():
    a = torch.full((1, 3, 32, 32), 0.5)
    b = a.clone()
    b[:, :, 16:, :] += 0.1  # bottom half wrong
    top = torch.zeros(1, 32, 32)
    top[:, :16] = 1
    assert metrics.masked_psnr(b, a, mask=top)[0] == np.inf
    assert metrics.masked_psnr(b, a, mask=top, max_db=100.0)[0] == 100.0
    assert metrics.masked_psnr(b, a, mask=1 - top)[0] == pytest.approx(20.0, abs=1e-4)
    assert metrics.masked_psnr(b, a)[0] == pytest.approx(20 + 10 * np.log10(2), abs=1e-4)
    with pytest.raises(ValueError, match="mask is empty in frame"):
        metrics.masked_psnr(b, a, mask=torch.zeros(1, 32, 32))


# ---------------------------------------------------------------------------- architectures


def test_backbones_and_inception_have_the_torchvision_key_layout():
    """The real files (torchvision SqueezeNet/AlexNet, timm/torchvision VGG16 features,
    pytorch-fid's Inception = torchvision Inception3 with 1008 classes) load into ours."""
    import torchvision

    def shapes(m):
        return {k: tuple(v.shape) for k, v in m.state_dict().items()}

    with torch.device("meta"):
        tv = {"vgg16": torchvision.models.vgg16(), "squeezenet1_1":
              torchvision.models.squeezenet1_1(), "alexnet": torchvision.models.alexnet()}
        inc = torchvision.models.Inception3(num_classes=1008, aux_logits=False,
                                            init_weights=False)
        for name, ref in tv.items():
            assert shapes(metrics.LPIPS(backbone=name).features) == shapes(ref.features), name
        ours = shapes(metrics.FIDInceptionV3())
    assert ours == shapes(inc)


# ---------------------------------------------------------------------------- LPIPS


@pytest.fixture(scope="session")
def vgg16_file(tmp_path_factory):
    """Built once per session: a full-size random timm vgg16.tv_in1k safetensors."""
    return write_timm_vgg16(tmp_path_factory.mktemp("vgg16") / "vgg16.safetensors")


def _reference_lpips(net: str, ours: metrics.LPIPS):
    import lpips

    ref = lpips.LPIPS(net=net, pnet_rand=True, verbose=False)  # real v0.1 heads from the package
    feats = ours.features.state_dict()
    for s in range(1, ref.net.N_slices + 1):
        sl = getattr(ref.net, f"slice{s}")
        sl.load_state_dict({k: feats[k] for k in sl.state_dict()})
    return ref.eval()


def _pair(h=64, w=64, sigma=0.1, seed=0):
    a = torch.from_numpy(_smooth_image(h, w, seed)).permute(2, 0, 1)[None].repeat(2, 1, 1, 1)
    g = torch.Generator().manual_seed(seed)
    b = (a + sigma * torch.randn(a.shape, generator=g)).clamp(0, 1)
    return a, b


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:.*(pretrained|weight enum).*:UserWarning")
def test_lpips_vgg_through_the_registry_matches_the_reference(hub, weights_dir, monkeypatch,
                                                              vgg16_file):
    serve_lpips_head(hub, "vgg")  # the real 7 kB head file, real sha256
    install_vgg16(vgg16_file, weights_dir, monkeypatch)
    model = metrics.load_lpips("vgg", device="cpu")
    assert (weights_dir / "LPIPS_v0.1_vgg-a78928a0.pth").is_file()  # downloaded + verified
    a, b = _pair()
    ours = metrics.lpips_distance(model, b, a)
    with torch.no_grad():
        ref = _reference_lpips("vgg", model)(b, a, normalize=True).flatten().numpy()
    assert ours == pytest.approx(ref, rel=1e-4)
    assert metrics.lpips_distance(model, a, a.clone()) == pytest.approx([0, 0], abs=1e-7)
    _, c = _pair(sigma=0.3)
    assert metrics.lpips_distance(model, c, a).mean() > ours.mean() > 0


@pytest.mark.filterwarnings("ignore:.*(pretrained|weight enum).*:UserWarning")
def test_lpips_squeeze_needs_a_user_file_and_then_matches_the_reference(hub, weights_dir):
    import torchvision

    serve_lpips_head(hub, "squeeze")
    with pytest.raises(WeightError, match="does not pin"):
        metrics.load_lpips("squeeze")
    # a torchvision SqueezeNet 1.1 state dict (random values) dropped into the models folder
    torch.manual_seed(0)
    torch.save(torchvision.models.squeezenet1_1().state_dict(),
               weights_dir / "squeezenet1_1-b8a52dc0.pth")
    model = metrics.load_lpips("squeezenet1_1")
    a, b = _pair(48, 80)
    ours = metrics.lpips_distance(model, b, a)
    with torch.no_grad():
        ref = _reference_lpips("squeeze", model)(b, a, normalize=True).flatten().numpy()
    assert ours == pytest.approx(ref, rel=1e-4) and (ours > 0).all()
    assert metrics.lpips_distance(model, a, a) == pytest.approx([0, 0], abs=1e-7)


def test_lpips_backbone_of_the_wrong_architecture_is_a_clear_error(hub, weights_dir, tmp_path):
    import torchvision

    serve_lpips_head(hub, "alex")
    bad = tmp_path / "not_alexnet.pth"
    torch.save(torchvision.models.squeezenet1_1().state_dict(), bad)
    with pytest.raises(WeightError, match="does not fit Sequential"):
        metrics.load_lpips("alex", backbone_weights=bad)
    with pytest.raises(WeightError, match="does not exist"):
        metrics.load_lpips("alex", backbone_weights=tmp_path / "missing" / "x.pth")


# ---------------------------------------------------------------------------- FID


@pytest.fixture(scope="session")
def fid_bytes():
    return fid_inception_bytes()


def test_fid_inception_through_the_registry_matches_pytorch_fid(hub, fid_bytes, monkeypatch):
    import pytorch_fid.inception as pfi

    serve_fid_inception(hub, fid_bytes, monkeypatch)
    model = metrics.load_fid_inception()
    frames = [(_smooth_image(96, 64, s) * 255).astype(np.uint8) for s in range(3)]
    ours = metrics.inception_features(model, frames, batch_size=2)
    assert ours.shape == (3, 2048) and np.abs(ours).sum() > 0
    # the reference, fed the same weights instead of its GitHub download
    monkeypatch.setattr(pfi, "load_state_dict_from_url", lambda *a, **k: fid_inception_state())
    ref_model = pfi.InceptionV3([3]).eval()
    x = metrics.to_nchw(frames)
    with torch.no_grad():
        ref = ref_model(x)[0].flatten(1).double().numpy()
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-6 * np.abs(ref).max())


def test_fid_is_zero_for_identical_sets_and_grows_with_noise(hub, fid_bytes, monkeypatch):
    serve_fid_inception(hub, fid_bytes, monkeypatch)
    model = metrics.load_fid_inception()
    frames = [(_smooth_image(64, 64, s) * 255).astype(np.uint8) for s in range(6)]
    rng = np.random.default_rng(0)

    def noisy(s):
        return [np.clip(f + rng.normal(0, s, f.shape), 0, 255).astype(np.uint8) for f in frames]

    f0 = metrics.inception_features(model, frames)
    scale = np.trace(np.cov(f0, rowvar=False))
    # Identical sets: exactly 0 in exact arithmetic. In float64 the centred Gram product has a
    # null eigenvalue computed as ~n*eps*||m||^2 (|m| <= scale); its square root enters the
    # trace term as up to sqrt(n*eps)*scale. Bound: n*sqrt(eps)*scale (6 frames: 9e-8 of the
    # feature scale; a fresh clone measured 6e-9 of it), far below d1 below (a few % of it).
    n, eps = len(frames), np.finfo(np.float64).eps
    bound = n * np.sqrt(eps) * scale
    assert abs(metrics.fid_from_features(f0, f0.copy())) < bound
    d1 = metrics.fid_from_features(metrics.inception_features(model, noisy(10)), f0)
    d2 = metrics.fid_from_features(metrics.inception_features(model, noisy(60)), f0)
    assert 100 * bound < d1 < d2
    with pytest.raises(ValueError, match="at least 2 samples"):
        metrics.fid_from_features(f0[:1], f0)


def test_low_rank_fid_equals_the_sqrtm_formula():
    rng = np.random.default_rng(0)
    f1 = rng.normal(size=(10, 64))
    f2 = rng.normal(0.3, 1.5, size=(12, 64))
    fast = metrics.fid_from_features(f1, f2)
    full = metrics.frechet_distance(f1.mean(0), np.cov(f1, rowvar=False), f2.mean(0),
                                    np.cov(f2, rowvar=False))
    assert fast == pytest.approx(full, rel=1e-5)
    # many samples: the sqrtm path itself, against the closed form for diagonal Gaussians
    mu, s1, s2 = np.zeros(3), np.diag([1.0, 4.0, 9.0]), np.diag([4.0, 4.0, 1.0])
    expected = sum((np.sqrt(a) - np.sqrt(b)) ** 2 for a, b in ((1, 4), (4, 4), (9, 1)))
    assert metrics.frechet_distance(mu, s1, mu + 1, s2) == pytest.approx(3 + expected)


def test_truncated_fid_weights_are_refused(hub, fid_bytes, monkeypatch):
    serve_fid_inception(hub, fid_bytes[: len(fid_bytes) // 2], monkeypatch)
    with pytest.raises(WeightError, match="could not be loaded|truncated"):
        metrics.load_fid_inception()
