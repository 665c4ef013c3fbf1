"""Inpaint: PatchMatch and OpenCV on a still, the median plate on a video, LaMa via the registry."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
import torch

from dance_reenact.models.compositing import inpaint as inpaint_lib
from dance_reenact.models.compositing.inpaint import (
    LamaInpainter,
    inpaint_opencv,
    inpaint_patchmatch,
    median_plate,
)
from dance_reenact.models.io import weights
from dance_reenact.nodes.inpaint import Inpaint
from dance_reenact.nodes.runtime import NodeInputError
from dance_reenact.nodes.sockets import Parsing, rgb_uint8_to_image


def psnr(a: np.ndarray, b: np.ndarray, m: np.ndarray) -> float:
    err = ((a.astype(np.float64) - b.astype(np.float64)) ** 2)[m].mean()
    return float(10 * np.log10(255.0 ** 2 / max(err, 1e-12)))


def moving_figure_video(n: int = 24, h: int = 96, w: int = 128, noise: float = 2.0, seed: int = 0):
    """A textured background, a figure (torso + head) walking left to right over it, sensor
    noise per frame. Returns (frames uint8 (n,h,w,3), masks bool (n,h,w), background)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    bg = np.stack([80 + 60 * np.sin(xx / 9.0), 120 + 50 * np.cos(yy / 7.0),
                   100 + 40 * np.sin((xx + yy) / 13.0)], -1)
    bg = np.clip(bg + rng.normal(0, 10, bg.shape), 0, 255).astype(np.uint8)
    frames, masks = [], []
    for t in range(n):
        cx = int(20 + (w - 40) * t / max(1, n - 1))
        m = np.zeros((h, w), np.uint8)
        cv2.ellipse(m, (cx, int(h * 0.62)), (12, int(h * 0.3)), 0, 0, 360, 1, -1)
        cv2.circle(m, (cx, int(h * 0.22)), 9, 1, -1)
        f = bg.astype(np.float64) + rng.normal(0, noise, bg.shape)
        f[m > 0] = (200, 40, 40)
        frames.append(np.clip(f + 0.5, 0, 255).astype(np.uint8))
        masks.append(m > 0)
    return np.stack(frames), np.stack(masks), bg


def test_video_median_recovers_the_background():
    frames, masks, bg = moving_figure_video()
    video = rgb_uint8_to_image(frames)
    plate, _ = Inpaint().inpaint(video, "video_median", dilate=2, output="plate",
                                 mask=torch.from_numpy(masks.astype(np.float32)))
    assert plate.shape == (1, 96, 128, 3)
    got = (plate[0].numpy() * 255 + 0.5).astype(np.uint8)
    ever_uncovered = ~np.logical_and.reduce(masks, 0)
    assert ever_uncovered.mean() > 0.95
    assert psnr(got, bg, ever_uncovered) > 40
    # the video output: each frame's person replaced by the plate, the rest untouched
    out, _ = Inpaint().inpaint(video, "video_median", dilate=2, output="video",
                               mask=torch.from_numpy(masks.astype(np.float32)))
    assert out.shape == video.shape
    grown = np.stack([cv2.dilate(m.astype(np.uint8), cv2.getStructuringElement(
        cv2.MORPH_ELLIPSE, (5, 5))) > 0 for m in masks])
    assert torch.equal(out[torch.from_numpy(~grown)], video[torch.from_numpy(~grown)])
    person_px = (out.numpy() * 255 + 0.5).astype(np.uint8)[masks]
    assert np.abs(person_px.astype(int) - np.broadcast_to(bg, frames.shape)[masks]).mean() < 6


def test_median_plate_streams_in_row_blocks_with_the_same_result():
    frames, masks, _ = moving_figure_video(n=9, h=40, w=50)
    read = lambda t, a, b: frames[t, a:b]  # noqa: E731
    read_m = lambda t, a, b: masks[t, a:b]  # noqa: E731
    whole, never_a = median_plate(read, read_m, 9, 40, 50)
    rows, never_b = median_plate(read, read_m, 9, 40, 50, block_bytes=9 * 50 * 3 * 2 * 3)
    assert np.array_equal(whole, rows) and np.array_equal(never_a, never_b)
    # pixels covered in every frame are inpainted, reported, and plausible
    always = np.zeros_like(masks)
    always[:, 10:20, 10:20] = True
    plate, never = median_plate(read, lambda t, a, b: (masks | always)[t, a:b], 9, 40, 50)
    assert never[10:20, 10:20].all() and never.sum() >= 100
    assert plate[10:20, 10:20].std() > 0  # filled, not left black


def test_parsing_input_is_dilated_person_mask():
    frames, masks, bg = moving_figure_video(n=12)
    labels = torch.from_numpy(masks.astype(np.uint8) * 5)  # upper-clothes = the person
    plate, _ = Inpaint().inpaint(rgb_uint8_to_image(frames), "video_median", dilate=3,
                                 output="plate", parsing=Parsing(labels))
    got = (plate[0].numpy() * 255 + 0.5).astype(np.uint8)
    ever = ~np.logical_and.reduce(masks, 0)
    assert psnr(got, bg, ever) > 38


def gradient_ratio(img: np.ndarray, m: np.ndarray, ring: int = 8) -> float:
    """Mean gradient magnitude inside the hole / in a ring around it (a smear: low)."""
    g = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float32)
    mag = np.hypot(cv2.Sobel(g, cv2.CV_32F, 1, 0), cv2.Sobel(g, cv2.CV_32F, 0, 1))
    around = cv2.dilate(m.astype(np.uint8), np.ones((2 * ring + 1,) * 2, np.uint8)) > 0
    return float(mag[m].mean() / mag[around & ~m].mean())


def woven(h: int = 120, w: int = 160, seed: int = 0) -> np.ndarray:
    """A fine woven texture (stripes of period 6 and 8 px) with noise: uint8 (h, w, 3)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    v = 128 + 60 * np.sign(np.sin(2 * np.pi * xx / 6)) * np.sign(np.sin(2 * np.pi * yy / 8))
    img = np.stack([v, 0.8 * v + 20, 0.6 * v + 40], -1) + rng.normal(0, 6, (h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def test_patchmatch_continues_texture_where_telea_smears():
    img = woven()
    hole = np.zeros(img.shape[:2], bool)
    hole[30:90, 55:100] = True  # 60x45
    pm = inpaint_patchmatch(img, hole)
    telea = inpaint_opencv(img, hole, method="telea")
    assert np.array_equal(pm[~hole], img[~hole])  # only the hole changes
    assert gradient_ratio(img, hole) > 0.9  # the texture itself
    assert gradient_ratio(pm, hole) >= 0.7
    assert gradient_ratio(telea, hole) < 0.5
    # PatchMatch copies the texture: its colours stay those of the two weave levels
    assert abs(pm[hole].astype(float).mean() - img.astype(float).mean()) < 12
    # deterministic (seeded search)
    assert np.array_equal(pm, inpaint_patchmatch(img, hole))


def red_blue(h: int = 80, w: int = 120) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Left half red, right half blue (noisy); a hole across the border; a source mask on the
    red side only. Returns (image, hole, source)."""
    rng = np.random.default_rng(1)
    img = np.zeros((h, w, 3), np.float64)
    img[:, : w // 2] = (200, 40, 40)
    img[:, w // 2:] = (40, 40, 200)
    img = np.clip(img + rng.normal(0, 12, img.shape), 0, 255).astype(np.uint8)
    hole = np.zeros((h, w), bool)
    hole[25:55, 40:80] = True
    source = np.zeros((h, w), bool)
    source[:, :30] = True
    return img, hole, source


def _bluish(px: np.ndarray) -> float:
    return float((px[:, 2].astype(int) > px[:, 0].astype(int) + 60).mean())


def test_patchmatch_source_mask_restricts_where_patches_come_from():
    img, hole, source = red_blue()
    free = inpaint_patchmatch(img, hole)
    assert _bluish(free[hole]) > 0.2  # unrestricted: the right half of the hole turns blue
    only_red = inpaint_patchmatch(img, hole, source_mask=source)
    filled = only_red[hole].astype(int)
    assert _bluish(only_red[hole]) == 0
    assert (filled[:, 0] > filled[:, 2] + 80).mean() > 0.95  # red-ish everywhere
    assert np.array_equal(only_red[~hole], img[~hole])  # non-source pixels are not changed
    with pytest.raises(ValueError, match="no source pixel"):
        inpaint_patchmatch(img, hole, source_mask=hole)


def test_patchmatch_without_the_wheel_falls_back_to_telea(monkeypatch, caplog):
    monkeypatch.setattr(inpaint_lib, "_patchmatch_lib", lambda: None)
    img, hole, source = red_blue()
    with caplog.at_level("WARNING"):
        out = inpaint_patchmatch(img, hole, source_mask=source)
    assert "Telea" in caplog.text
    assert np.array_equal(out[~hole], img[~hole])
    assert _bluish(out[hole]) == 0  # the source restriction still holds


def test_node_patchmatch_is_the_default_and_fills_texture():
    spec = Inpaint.INPUT_TYPES()["required"]["backend"]
    assert "patchmatch" in spec[0] and spec[1]["default"] == "patchmatch"
    img = woven()
    mask = np.zeros(img.shape[:2], np.float32)
    mask[30:90, 55:100] = 1
    out, _ = Inpaint().inpaint(rgb_uint8_to_image(img), mask=torch.from_numpy(mask)[None],
                               dilate=0)
    got = (out[0].numpy() * 255 + 0.5).astype(np.uint8)
    assert gradient_ratio(got, mask > 0) >= 0.7
    assert np.array_equal(got[mask == 0], img[mask == 0])


@pytest.mark.parametrize("backend", ["patchmatch", "opencv_telea", "opencv_ns"])
def test_opencv_inpaint_changes_only_masked_pixels(astronaut, backend):
    img = rgb_uint8_to_image(astronaut[::4, ::4])  # 128x128
    img = img + torch.rand_like(img) * 1e-3  # not multiples of 1/255: must survive exactly
    mask = torch.zeros(1, 128, 128)
    mask[0, 40:80, 50:70] = 1.0
    out, _ = Inpaint().inpaint(img, backend, dilate=0, mask=mask)
    changed = (out != img).any(-1)[0]
    assert changed[40:80, 50:70].float().mean() > 0.9
    assert not changed[mask[0] == 0].any()
    # dilate grows the region that may change, and nothing beyond it
    out2, _ = Inpaint().inpaint(img, backend, dilate=4, mask=mask)
    changed2 = (out2 != img).any(-1)[0]
    assert changed2[36:84, 46:74].any() and not changed2[:30].any()


def test_bad_inputs(astronaut):
    node = Inpaint()
    img = rgb_uint8_to_image(astronaut[::4, ::4])
    # empty mask: documented to return the image unchanged
    out, report = node.inpaint(img, "opencv_telea", mask=torch.zeros(1, 128, 128))
    assert torch.equal(out, img)
    assert "the mask is empty in 1 of 1 frame(s): returned unchanged" in report
    # full mask: nothing to inpaint from
    with pytest.raises(NodeInputError, match=r"\[Inpaint\] input 'mask': the mask covers all"):
        node.inpaint(img, "opencv_telea", mask=torch.ones(1, 128, 128))
    with pytest.raises(NodeInputError, match="every pixel is masked in every frame"):
        node.inpaint(torch.cat([img, img]), "video_median", mask=torch.ones(2, 128, 128))
    # mask of another size
    with pytest.raises(NodeInputError, match=r"mask is \(64, 64\).*image is \(128, 128\)"):
        node.inpaint(img, "opencv_telea", mask=torch.zeros(1, 64, 64))
    with pytest.raises(NodeInputError, match="parsing"):
        node.inpaint(img, "opencv_telea", parsing=Parsing(torch.zeros(1, 5, 5, dtype=torch.uint8)))
    # a 1-frame video for the temporal median
    with pytest.raises(NodeInputError, match="video_median needs a video.*1 frame"):
        node.inpaint(img, "video_median", mask=torch.zeros(1, 128, 128))
    # no mask at all, batches of different lengths
    with pytest.raises(NodeInputError, match="nothing says what to remove"):
        node.inpaint(img, "opencv_telea")
    with pytest.raises(NodeInputError, match="different lengths"):
        node.inpaint(torch.cat([img] * 3), "opencv_telea", mask=torch.zeros(2, 128, 128))
    # grayscale and RGBA in, RGB out, unmasked pixels are the RGB conversion
    mask = torch.zeros(1, 128, 128)
    mask[0, 10:20, 10:20] = 1
    out, _ = node.inpaint(img.mean(-1, keepdim=True), "opencv_telea", mask=mask)
    assert out.shape == (1, 128, 128, 3)
    assert torch.allclose(out[0, 50, 50], img.mean(-1)[0, 50, 50].expand(3), atol=1 / 255)
    rgba = torch.cat([img, torch.ones(1, 128, 128, 1)], -1)
    out, _ = node.inpaint(rgba, "opencv_ns", mask=mask)
    assert out.shape == (1, 128, 128, 3)
    # 16x16 works for every local backend
    tiny = torch.rand(2, 16, 16, 3)
    m = torch.zeros(2, 16, 16)
    m[:, 4:8, 4:8] = 1
    m[1] = m[1].roll(4, 1)
    for backend in ("patchmatch", "opencv_telea", "opencv_ns", "video_median"):
        out, _ = node.inpaint(tiny, backend, dilate=1, mask=m)
        assert out.shape == (2, 16, 16, 3) and torch.isfinite(out).all()


class _MeanFill(torch.nn.Module):
    """A TorchScript stand-in with big-LaMa's contract: fill the hole with the mean colour of
    the known pixels."""

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        known = 1.0 - mask
        mean = (image * known).sum((2, 3), keepdim=True) / known.sum((2, 3), keepdim=True)
        return image * known + mean * mask


def _scripted_lama() -> bytes:
    buf = io.BytesIO()
    torch.jit.save(torch.jit.script(_MeanFill()), buf)
    return buf.getvalue()


def test_lama_through_the_registry(astronaut, hub, weights_dir, monkeypatch):
    data = _scripted_lama()
    real = weights.REGISTRY["big_lama"]
    sha = hub.add(real.repo_id, real.filename, data, revision=real.revision)
    monkeypatch.setitem(weights.REGISTRY, "big_lama", weights.WeightSpec(
        real.repo_id, real.filename, real.revision, sha, real.license))
    img = rgb_uint8_to_image(astronaut[:100, :75])  # odd sizes: padded to /8 and cropped
    mask = torch.zeros(1, 100, 75)
    mask[0, 30:60, 20:40] = 1
    out, _ = Inpaint().inpaint(img, "lama", dilate=0, mask=mask)
    assert out.shape == (1, 100, 75, 3)
    assert (weights_dir / "big-lama.pt").is_file()
    known = mask[0] == 0
    assert torch.equal(out[0][known], img[0][known])
    hole = out[0][~known]
    assert hole.std(0).max() < 1e-2  # one flat colour, as the stand-in does
    # the filled colour is the mean of the known pixels of the 8-padded frame (reflect pad)
    assert torch.allclose(hole[0], img[0][known].mean(0), atol=0.05)


def test_lama_refuses_a_file_that_is_not_the_pinned_one(astronaut, weights_dir, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    (weights_dir / "big-lama.pt").write_bytes(_scripted_lama())  # right name, wrong bytes
    mask = torch.zeros(1, 32, 32)
    mask[0, 8:16, 8:16] = 1
    with pytest.raises(NodeInputError, match=r"backend.*sha256.*Delete it"):
        Inpaint().inpaint(torch.rand(1, 32, 32, 3), "lama", mask=mask)
    (weights_dir / "big-lama.pt").unlink()
    with pytest.raises(NodeInputError, match=r"big-LaMa is not available.*offline"):
        Inpaint().inpaint(torch.rand(1, 32, 32, 3), "lama", mask=mask)


def test_lama_wrong_contract_is_a_clear_error(tmp_path):
    class Bad(torch.nn.Module):
        def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            return image[:, :1]

    path = tmp_path / "bad.pt"
    torch.jit.save(torch.jit.script(Bad()), str(path))
    with pytest.raises(RuntimeError, match="expected an image of shape"):
        LamaInpainter(path)(np.zeros((16, 16, 3), np.uint8), np.ones((16, 16), bool))


def test_median_plate_memory_is_bounded_by_the_block_not_the_video():
    """300 frames: the working set stays near ``block_bytes`` although stacking the video
    (as uint16 for the median) would take 5.5 MB."""
    import tracemalloc

    n, h, w = 300, 64, 48
    bg = np.random.default_rng(0).integers(0, 255, (h, w, 3), dtype=np.uint8)

    def read(t, a, b):
        return bg[a:b]

    def read_m(t, a, b):
        m = np.zeros((b - a, w), bool)
        m[:, (t % w): (t % w) + 8] = True
        return m

    assert n * h * w * 3 * 2 > 5_000_000
    tracemalloc.start()
    try:
        plate, never = median_plate(read, read_m, n, h, w, block_bytes=512 * 1024)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert np.array_equal(plate, bg) and not never.any()
    assert peak < 2_000_000, peak
