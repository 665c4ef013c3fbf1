"""Mask Blend: the formula exactly, backgrounds of any length and size, a still over 300 frames."""

from __future__ import annotations

import pytest
import torch

from dance_reenact.models.compositing import blend as blend_lib
from dance_reenact.models.compositing.blend import blend_frames, fit_frame, prepare_mask
from dance_reenact.nodes.blend import MaskBlend
from dance_reenact.nodes.runtime import NodeInputError


def _random(n: int, h: int = 24, w: int = 16, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, h, w, 3, generator=g), torch.rand(n, h, w, generator=g),
            torch.rand(n, h, w, 3, generator=g))


def test_formula_holds_to_1e6_on_random_tensors():
    z, m, b = _random(5)
    comp, rgba, alpha = MaskBlend().blend(z, m, b)
    expected = z * m[..., None] + b * (1 - m[..., None])
    assert comp.shape == (5, 24, 16, 3)
    assert (comp - expected).abs().max().item() < 1e-6
    assert torch.equal(rgba[..., :3], z) and torch.equal(rgba[..., 3], m)
    assert torch.equal(alpha, m)


@pytest.mark.parametrize("mode,expected_idx", [
    ("loop", [0, 1, 2, 0, 1, 2, 0]),
    ("hold_last", [0, 1, 2, 2, 2, 2, 2]),
    ("trim", [0, 1, 2]),
])
def test_background_video_shorter_than_the_frames(mode, expected_idx):
    z, m, _ = _random(7)
    _, _, b = _random(3, seed=1)
    comp, _, _ = MaskBlend().blend(z, m, b, length_mode=mode)
    assert comp.shape[0] == len(expected_idx)
    for i, bi in enumerate(expected_idx):
        exp = z[i] * m[i, ..., None] + b[bi] * (1 - m[i, ..., None])
        assert (comp[i] - exp).abs().max().item() < 1e-6, (mode, i)


def test_background_video_longer_than_the_frames_is_cut_to_the_frames():
    z, m, _ = _random(4)
    _, _, b = _random(9, seed=2)
    for mode in ("loop", "hold_last", "trim"):
        comp, _, _ = MaskBlend().blend(z, m, b, length_mode=mode)
        assert comp.shape[0] == 4
        exp = z * m[..., None] + b[:4] * (1 - m[..., None])
        assert (comp - exp).abs().max().item() < 1e-6


def test_background_of_another_size_cover_contain_stretch():
    z, m, _ = _random(2, h=40, w=20)
    # a wide background: left half red, right half blue, 30x90
    b = torch.zeros(1, 30, 90, 3)
    b[..., :45, 0] = 1.0
    b[..., 45:, 2] = 1.0
    zero_m = torch.zeros_like(m)
    cover, _, _ = MaskBlend().blend(z, zero_m, b, fit="cover")
    contain, _, _ = MaskBlend().blend(z, zero_m, b, fit="contain")
    stretch, _, _ = MaskBlend().blend(z, zero_m, b, fit="stretch")
    assert cover.shape == contain.shape == stretch.shape == (2, 40, 20, 3)
    # cover: scaled to height 40 (width 120) and centre-cropped -> no black, both colours
    assert cover.sum(-1).min() > 0.99
    assert cover[0, :, 0, 0].mean() > 0.9 and cover[0, :, -1, 2].mean() > 0.9
    # contain: scaled to width 20 (height ~7), black bands above and below
    assert contain[0, :10].abs().max() == 0 and contain[0, -10:].abs().max() == 0
    assert contain[0, 20].sum() > 0.9
    # stretch: the whole background squeezed: left column red, right column blue
    assert stretch[0, :, 0, 0].min() > 0.9 and stretch[0, :, -1, 2].min() > 0.9
    # with a real mask the formula holds against the fitted background
    comp, _, _ = MaskBlend().blend(z, m, b, fit="contain")
    fitted = fit_frame(b[0], 40, 20, "contain")
    exp = z * m[..., None] + fitted * (1 - m[..., None])
    assert (comp - exp).abs().max().item() < 1e-6


def test_a_still_over_300_frames_is_fitted_once_not_copied(monkeypatch):
    z, m, _ = _random(300, h=20, w=12, seed=3)
    still = torch.rand(1, 33, 17, 3)  # another size: must be fitted
    calls = []
    real_fit = blend_lib.fit_frame

    def counting_fit(frame, height, width, mode="cover"):
        calls.append(frame.data_ptr())
        return real_fit(frame, height, width, mode)

    monkeypatch.setattr(blend_lib, "fit_frame", counting_fit)
    comp, _, _ = blend_frames(z, m, still)
    assert len(calls) == 1  # one fit for 300 frames: no 300 copies of the still
    fitted = real_fit(still[0], 20, 12, "cover")
    exp = z * m[..., None] + fitted * (1 - m[..., None])
    assert comp.shape == (300, 20, 12, 3)
    assert (comp - exp).abs().max().item() < 1e-6


def test_single_frame_foreground_broadcasts_over_a_video_mask():
    z, m, b = _random(3)
    comp, _, _ = MaskBlend().blend(z[:1], m, b)
    exp = z[:1] * m[..., None] + b * (1 - m[..., None])
    assert comp.shape[0] == 3 and (comp - exp).abs().max().item() < 1e-6


def test_erode_and_feather():
    m = torch.zeros(1, 21, 21)
    m[:, 5:16, 5:16] = 1.0
    eroded = prepare_mask(m, erode=2)
    assert eroded.sum().item() == 7 * 7
    grown = prepare_mask(m, erode=-1)
    assert grown.sum().item() == 13 * 13
    soft = prepare_mask(m, feather=1.5)
    assert 0.0 < soft[0, 5, 10].item() < 1.0  # the edge is soft
    assert soft[0, 10, 10].item() > 0.99 and soft[0, 0, 0].item() < 1e-3
    assert abs(soft.sum().item() - m.sum().item()) < 1.0  # blur keeps the mass


def test_empty_mask_gives_exactly_the_background():
    z, _, b = _random(2)
    comp, rgba, alpha = MaskBlend().blend(z, torch.zeros(2, 24, 16), b)
    assert torch.equal(comp, b) and alpha.abs().max() == 0


def test_bad_inputs_are_named():
    z, m, b = _random(3)
    with pytest.raises(NodeInputError, match=r"\[Mask Blend\] input 'mask'.*Fix"):
        MaskBlend().blend(z, torch.rand(3, 10, 10), b)
    with pytest.raises(NodeInputError, match="image/mask"):
        MaskBlend().blend(z, torch.rand(2, 24, 16), b)
    with pytest.raises(NodeInputError, match="background"):
        MaskBlend().blend(z, m, torch.zeros(0, 24, 16, 3))


def test_blend_node_has_no_is_changed_so_background_swaps_keep_upstream_cached():
    # ComfyUI re-executes a node only if its inputs (or IS_CHANGED) change: the blend must
    # not define IS_CHANGED, and neither may B2F / the encoder upstream.
    from dance_reenact.nodes import b2f as b2f_nodes

    assert not hasattr(MaskBlend, "IS_CHANGED")
    for cls in b2f_nodes.NODE_CLASS_MAPPINGS.values():
        assert not hasattr(cls, "IS_CHANGED"), cls
