"""Parsing / Image / DensePose Metrics nodes: values, tables, and every bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from executor import run_workflow
from metrics_fixtures import fid_inception_bytes, serve_fid_inception, serve_lpips_head

from dance_reenact.models.core.cache import model_cache
from dance_reenact.models.core.schema import LABEL
from dance_reenact.nodes import NODE_CLASS_MAPPINGS
from dance_reenact.nodes import metrics as metric_nodes
from dance_reenact.nodes.metrics import DensePoseMetrics, ImageMetrics, ParsingMetrics
from dance_reenact.nodes.runtime import NodeInputError
from dance_reenact.nodes.sockets import DensePose, Parsing


@pytest.fixture(autouse=True)
def _fresh_model_cache():
    model_cache().clear(metric_nodes.METRIC_KIND)
    yield
    model_cache().clear(metric_nodes.METRIC_KIND)


def _parsing(frames: list[np.ndarray]) -> Parsing:
    return Parsing(torch.from_numpy(np.stack(frames)))


def _block(shift=0, h=40, w=60):
    m = np.zeros((h, w), np.uint8)
    m[5:25, 10 + shift:30 + shift] = LABEL["face"]
    return m


def test_parsing_metrics_node_averages_frames_and_tabulates():
    gt = _parsing([_block(), _block()])
    pred = _parsing([_block(), _block(shift=4)])
    ssbs, ssis, table = ParsingMetrics().evaluate(pred, gt)
    expected = (1.0 + 16 / 24) / 2  # frame 1: (20-4)/(20+4)
    assert ssbs == pytest.approx(expected) and ssis == pytest.approx(expected)
    lines = table.splitlines()
    assert lines[0].split() == ["frame", "ssbs", "ssis"]
    assert lines[1].split() == ["0", "1", "1"]
    assert lines[-1].split()[0] == "mean"


def test_parsing_metrics_node_bad_inputs():
    node = ParsingMetrics()
    a = _parsing([_block()] * 3)
    with pytest.raises(NodeInputError, match=r"\[Parsing Metrics\].*sizes differ.*Fix"):
        node.evaluate(a, _parsing([_block(h=41)] * 3))
    with pytest.raises(NodeInputError, match="different lengths"):
        node.evaluate(a, _parsing([_block()] * 4))
    with pytest.raises(NodeInputError, match="expected PARSING"):
        node.evaluate(a, torch.zeros(3, 40, 60))
    # a single ground-truth frame is used for every predicted frame
    assert node.evaluate(a, _parsing([_block()]))[:2] == (1.0, 1.0)


def _dp(index: np.ndarray) -> DensePose:
    t = torch.from_numpy(index)
    return DensePose(t, torch.zeros(t.shape), torch.zeros(t.shape))


def test_densepose_metrics_node_and_out_of_range_indices():
    gt = np.zeros((2, 32, 32), np.uint8)
    gt[:, 8:24, 8:24] = 2
    pred = gt.copy()
    pred[1, 8:24, 8:16] = 3
    dpbs, dpis, table = DensePoseMetrics().evaluate(_dp(pred), _dp(gt))
    assert dpbs == 1.0 and dpis == pytest.approx((1.0 + 0.25) / 2)
    assert table.splitlines()[0].split() == ["frame", "dpbs", "dpis"]
    bad = gt.copy()
    bad[0, 0, 0] = 30
    with pytest.raises(NodeInputError, match="outside 0..24"):
        DensePoseMetrics().evaluate(_dp(bad), _dp(gt))
    with pytest.raises(NodeInputError, match="expected DENSEPOSE"):
        DensePoseMetrics().evaluate(_parsing([_block()]), _dp(gt))


def _video(n=3, h=48, w=64, seed=0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(1, h // 8, w // 8, 3, generator=g)
    img = torch.nn.functional.interpolate(base.permute(0, 3, 1, 2), size=(h, w),
                                          mode="bilinear", align_corners=False)
    return img.permute(0, 2, 3, 1).repeat(n, 1, 1, 1).contiguous()


def test_image_metrics_identical_and_noisy():
    gt = _video()
    ssim, psnr, lp, fid, table = ImageMetrics().evaluate(gt, gt.clone())
    assert ssim == pytest.approx(1.0) and psnr == 100.0 and lp == -1.0 and fid == -1.0
    gray = gt[..., :1]  # a 1-channel IMAGE is compared as gray RGB
    assert ImageMetrics().evaluate(gray, gray.clone())[:2] == (pytest.approx(1.0), 100.0)
    g = torch.Generator().manual_seed(1)
    noisy = (gt * 0.5 + 0.25 + 0.02 * torch.randn(gt.shape, generator=g))
    ref = gt * 0.5 + 0.25
    ssim, psnr, *_ , table = ImageMetrics().evaluate(noisy, ref)
    assert psnr == pytest.approx(20 * np.log10(1 / 0.02), abs=0.3)
    assert 0 < ssim < 1
    assert table.splitlines()[0].split() == ["frame", "ssim", "psnr"]


def test_image_metrics_mask_restricts_psnr():
    gt = _video(2)
    pred = gt.clone()
    pred[:, 24:] = 1 - pred[:, 24:]  # bottom half wrong
    mask = torch.zeros(1, 48, 64)
    mask[:, :24] = 1
    _, psnr, *_ = ImageMetrics().evaluate(pred, gt, mask=mask)
    assert psnr == 100.0
    _, psnr_bottom, *_ = ImageMetrics().evaluate(pred, gt, mask=1 - mask)
    assert psnr_bottom < 20


def test_image_metrics_bad_inputs():
    node = ImageMetrics()
    a = _video(3)
    with pytest.raises(NodeInputError, match="image sizes differ"):
        node.evaluate(a, _video(3, h=40))
    with pytest.raises(NodeInputError, match="different lengths"):
        node.evaluate(a, _video(2))
    m = torch.ones(3, 48, 64)
    m[1] = 0
    with pytest.raises(NodeInputError, match=r"'mask': the mask is empty in frame\(s\) \[1\]"):
        node.evaluate(a, a, mask=m)
    rim = torch.zeros(1, 48, 64)
    rim[:, :3] = 1  # only the top 3 rows: outside SSIM's valid region
    with pytest.raises(NodeInputError, match="'mask'.*no pixel inside the SSIM valid region"):
        node.evaluate(a, a, mask=rim)
    with pytest.raises(NodeInputError, match="mask is 10x10"):
        node.evaluate(a, a, mask=torch.ones(1, 10, 10))
    with pytest.raises(NodeInputError, match="FID .* at least 2 frames"):
        node.evaluate(a[:1], a[:1], fid=True)
    with pytest.raises(NodeInputError, match="too small for SSIM"):
        node.evaluate(a[:, :8, :8], a[:, :8, :8])
    with pytest.raises(NodeInputError, match="too small for LPIPS"):
        node.evaluate(a[:, :20, :20], a[:, :20, :20], lpips="vgg")


def test_image_metrics_lpips_squeeze_without_backbone_names_the_fix(hub):
    serve_lpips_head(hub, "squeeze")
    with pytest.raises(NodeInputError, match="input 'lpips'.*does not pin.*Fix"):
        ImageMetrics().evaluate(_video(2), _video(2), lpips="squeeze")


@pytest.mark.slow
def test_image_metrics_lpips_and_fid_in_a_workflow(hub, weights_dir, monkeypatch):
    """LPIPS (SqueezeNet from a user file + the real head through the Hub) and FID (Inception
    through the registry), wired through the executor like a ComfyUI graph."""
    import torchvision

    serve_lpips_head(hub, "squeeze")
    serve_fid_inception(hub, fid_inception_bytes(), monkeypatch)
    torch.manual_seed(0)
    torch.save(torchvision.models.squeezenet1_1().state_dict(), weights_dir / "my_squeeze.pth")
    gt = torch.cat([_video(1, seed=s) for s in range(4)])
    noisy = (gt + 0.1 * torch.randn(gt.shape, generator=torch.Generator().manual_seed(0)))
    noisy = noisy.clamp(0, 1)

    class Source:
        @classmethod
        def INPUT_TYPES(cls):
            return {"required": {}}

        RETURN_TYPES = ("IMAGE", "IMAGE")
        FUNCTION = "run"

        def run(self):
            return gt, noisy

    mappings = dict(NODE_CLASS_MAPPINGS, Source=Source)
    prompt = {
        "1": {"class_type": "Source", "inputs": {}},
        "2": {"class_type": "DanceReenactImageMetrics", "inputs": {
            "prediction": ["1", 1], "ground_truth": ["1", 0], "lpips": "squeeze", "fid": True,
            "psnr_cap_db": 100.0, "lpips_backbone_file": "my_squeeze.pth"}},
        "3": {"class_type": "DanceReenactImageMetrics", "inputs": {
            "prediction": ["1", 0], "ground_truth": ["1", 0], "lpips": "squeeze", "fid": True,
            "psnr_cap_db": 100.0, "lpips_backbone_file": "my_squeeze.pth"}},
    }
    out = run_workflow(prompt, mappings)
    ssim, psnr, lp, fid, table = out["2"]
    same = out["3"]
    assert lp > 0 and fid > 0 and psnr < 30
    assert same[2] == pytest.approx(0, abs=1e-7) and abs(same[3]) < 1e-6 * fid
    assert table.splitlines()[0].split() == ["frame", "ssim", "psnr", "lpips"]
    assert "FID (4 frames)" in table
