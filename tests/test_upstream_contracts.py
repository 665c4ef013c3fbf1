"""Pre/post-processing of the learned backends against their upstream code, with stand-ins
that react to their input (tests/weight_fakes.py): a swapped colour order, a wrong
normalisation, padding or mask convention changes the numbers asserted here. docs/upstream.md
lists the upstream files each check follows."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from dance_reenact.models.compositing import face as F

# --------------------------------------------------------------------------------------------
# big-LaMa: IOPaint's padding (symmetric), 0..1 RGB, mask 1 = fill, truncating conversion
# --------------------------------------------------------------------------------------------


def _lama_frame() -> tuple[np.ndarray, np.ndarray]:
    img = np.zeros((20, 13, 3), np.uint8)
    img[..., 1] = 200
    img[..., 2] = 40
    img[:, -1, 0] = 255  # the last column: symmetric padding repeats it, reflect does not
    mask = np.zeros((20, 13), bool)
    mask[5:11, 3:8] = True
    img[mask] = 255  # the hole is white: averaging it instead of the known pixels shows
    return img, mask


def _upstream_lama_fill(img: np.ndarray, mask: np.ndarray, mode: str) -> np.ndarray:
    """What IOPaint feeds big-LaMa (np.pad to /8 with ``mode``), run through the stand-in's
    formula, converted like IOPaint (clip * 255, astype uint8)."""
    from weight_fakes import LAMA_CHANNEL_GAIN

    h, w = mask.shape
    pad = ((0, (-h) % 8), (0, (-w) % 8))
    p = np.pad(img, pad + ((0, 0),), mode=mode).astype(np.float32) / 255
    known = 1.0 - np.pad(mask, pad, mode=mode).astype(np.float32)
    mean = (p * known[..., None]).sum((0, 1)) / known.sum()
    return np.clip(mean * np.array(LAMA_CHANNEL_GAIN, np.float32) * 255, 0, 255).astype(np.uint8)


def test_lama_pads_symmetric_feeds_rgb01_and_truncates_like_iopaint(tmp_path):
    from weight_fakes import channel_lama_torchscript

    from dance_reenact.models.compositing.inpaint import LamaInpainter

    (tmp_path / "lama.pt").write_bytes(channel_lama_torchscript())
    img, mask = _lama_frame()
    out = LamaInpainter(tmp_path / "lama.pt")(img, mask)
    want = _upstream_lama_fill(img, mask, "symmetric")
    assert (out[mask] == want).all(), (out[mask][0], want)
    assert (out[~mask] == img[~mask]).all()
    # the check discriminates: reflect padding gives another fill
    assert (want != _upstream_lama_fill(img, mask, "reflect")).any()


def test_lama_any_mask_value_above_zero_is_a_hole(tmp_path):
    """IOPaint: ``mask = (norm_img(mask) > 0) * 1``: a 0/255 mask and a 0/1 mask agree."""
    from weight_fakes import channel_lama_torchscript

    from dance_reenact.models.compositing.inpaint import LamaInpainter

    (tmp_path / "lama.pt").write_bytes(channel_lama_torchscript())
    img, mask = _lama_frame()
    run = LamaInpainter(tmp_path / "lama.pt")
    assert (run(img, mask.astype(np.uint8) * 255) == run(img, mask)).all()


# --------------------------------------------------------------------------------------------
# DensePose R50 TorchScript: comfyui_controlnet_aux feeds it uint8 RGB (3, H, W)
# --------------------------------------------------------------------------------------------

def test_densepose_torchscript_gets_uint8_rgb():
    from weight_fakes import channel_densepose_torchscript

    from dance_reenact.models.core.schema import DENSEPOSE_PART
    from dance_reenact.models.perception.densepose import DensePoseTorchScript

    module = torch.jit.load(io.BytesIO(channel_densepose_torchscript()))
    img = np.zeros((256, 192, 3), np.uint8)
    img[40:220, 50:150] = (200, 60, 30)
    dp = DensePoseTorchScript(module, resolution=256)(img)
    # red channel first -> torso front; U, V = channel 0 and channel 2 means / 255
    assert dp.index[130, 100] == DENSEPOSE_PART["torso_front"]
    assert dp.u[130, 100] == pytest.approx(200 / 255, abs=0.02)
    assert dp.v[130, 100] == pytest.approx(30 / 255, abs=0.02)
    fg = dp.index > 0
    assert 0.9 < fg[40:220, 50:150].mean() and fg.sum() < 1.1 * 180 * 100


# --------------------------------------------------------------------------------------------
# FAN-68: face-alignment's crop (0.12 h up, side 200 (w + h) / 195) and get_preds_fromhm
# --------------------------------------------------------------------------------------------

BOX = (150, 170, 100, 100)  # (x, y, w, h): crop centre (200, 208), side 200 * 200 / 195
FAN_RGB = (200, 50, 100)


def _fan_standin() -> bytes:
    """FAN's ONNX signature ([1,3,256,256] -> heatmaps [1,68,64,64]). Point 0 peaks in cell
    (31, 31), point 1 in cell (x 7, y 31) with a higher right neighbour, point 2 in row 10 at
    column ``60 * mean(channel 0)`` of the input (RGB / 255 expected); the others at (31, 31)."""

    class Fan(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            hm = torch.zeros(1, 68, 64, 64)
            hm[0, :, 31, 31] = 1.0
            hm[0, 1] = 0.0
            hm[0, 1, 31, 7] = 1.0
            hm[0, 1, 31, 8] = 0.5
            self.register_buffer("fixed", hm)
            self.register_buffer("gx", torch.arange(64.0).view(1, 1, 64))
            self.register_buffer("gy", torch.arange(64.0).view(1, 64, 1))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            m0 = x[:, 0].mean()
            hm2 = 1.0 - ((self.gx - 60.0 * m0).abs() + (self.gy - 10.0).abs()) / 200.0
            return torch.cat([self.fixed[:, :2], hm2[:, None], self.fixed[:, 3:]], 1)

    buf = io.BytesIO()
    torch.onnx.export(Fan(), torch.zeros(1, 3, 256, 256), buf, input_names=["input"],
                      output_names=["heatmaps"], dynamo=False)
    return buf.getvalue()


def _upstream_point(hm_xy, box=BOX) -> np.ndarray:
    """face-alignment's ``transform_np(..., invert=True)`` of a heatmap point (no rounding)."""
    x, y, w, h = box
    c = np.array([x + w / 2, y + h / 2 - 0.12 * h])
    side = 200.0 * (w + h) / 195.0
    return (np.asarray(hm_xy, np.float64) / 64 - 0.5) * side + c


def test_fan_heatmap_decode_is_get_preds_fromhm():
    hm = np.zeros((2, 64, 64), np.float32)
    hm[0, 20, 10], hm[0, 20, 11] = 1.0, 0.3  # right neighbour higher: +0.25 in x
    hm[1, 0, 5] = 1.0  # on the border: no quarter-pixel shift
    pts, peak = F.fan_heatmap_peaks(hm)
    assert np.allclose(pts, [[10.75, 20.5], [5.5, 0.5]]) and np.allclose(peak, 1.0)


def test_fan68_crop_and_decode_follow_face_alignment(tmp_path, monkeypatch):
    (tmp_path / "fan.onnx").write_bytes(_fan_standin())
    frame = np.empty((400, 400, 3), np.uint8)
    frame[:] = FAN_RGB
    monkeypatch.setattr(F, "haar_face_boxes", lambda rgb: [BOX])
    lm = F.Fan68Landmarks(tmp_path / "fan.onnx")(frame)
    assert lm.shape == (68, 2)
    assert np.allclose(lm[0], _upstream_point((31.5, 31.5)), atol=0.05), lm[0]
    assert np.allclose(lm[1], _upstream_point((7.75, 31.5)), atol=0.05), lm[1]
    # point 2's column is 60 * mean(channel 0) of the crop: RGB / 255 -> 47.06 (BGR: 23.5)
    col = (lm[2, 0] - _upstream_point((0, 0))[0]) / (200 * 200 / 195) * 64 - 0.5
    assert abs(col - 60 * FAN_RGB[0] / 255) < 0.8, col


# --------------------------------------------------------------------------------------------
# FaceNet: our InceptionResnetV1 has the pinned file's tensors, values and byte size
# --------------------------------------------------------------------------------------------

FACENET_REAL_SIZE = 111898327  # facenet_20180402_114759_vggface2.pth (WEIGHTS.md row 16)


def test_facenet_architecture_matches_the_published_file(tmp_path):
    from weight_fakes import facenet_state_bytes

    from dance_reenact.models.networks.facenet import load_facenet

    data = facenet_state_bytes(drop_batch_counters=False, legacy=True)
    state = torch.load(io.BytesIO(data), weights_only=True)
    # 716 tensors (112 BN counters included), 27,940,039 values, 8631 identities.
    assert len(state) == 716
    assert sum(v.numel() for v in state.values()) == 27_940_039
    assert tuple(state["logits.weight"].shape) == (8631, 512)
    assert tuple(state["last_linear.weight"].shape) == (512, 1792)
    # Serialised like the 2018 file (torch's legacy format) the size matches it to within the
    # storage keys' digits (pointer strings, 2 bytes per tensor at most); one float more or
    # less would be 4 bytes, dropping the BN counters 43 kB.
    assert abs(len(data) - FACENET_REAL_SIZE) <= 2 * len(state), len(data) - FACENET_REAL_SIZE
    (tmp_path / "facenet.pth").write_bytes(data)
    net = load_facenet(tmp_path / "facenet.pth")  # strict load of the legacy file
    assert torch.equal(net.logits.weight, state["logits.weight"])
