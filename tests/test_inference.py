"""Inference copies (models/core/inference.py): the optimised path gives the plain eval path's
outputs, is cached and rebuilt when weights change, never touches the caller's module; and the
appearance is encoded exactly once per target through the nodes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from dance_reenact.models.core.cache import model_cache
from dance_reenact.models.core.inference import (
    fold_batchnorm,
    inference_input,
    options_for,
    prepare_for_inference,
)
from dance_reenact.models.networks.b2f import SPADE, B2FGenerator, run_b2f_frame
from dance_reenact.models.networks.p2b import DriverFrame, P2BGenerator, predict_parsing
from dance_reenact.training.synthetic import random_body, random_pose, render

P2B_TINY = dict(ngf=8, n_down=2, n_res=2, max_ch=32, work_height=64, work_width=40)
B2F_TINY = dict(embed_dim=40, fc_channels=32, ngf=8, n_up=3, spade_hidden=8)


def _random_bn_stats(module: nn.Module) -> None:
    """Non-trivial running statistics and affine values (fresh BN would fold to identity)."""
    g = torch.Generator().manual_seed(1)
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.rand(m.num_features, generator=g) - 0.5)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            if m.affine:
                m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.data.copy_(torch.rand(m.num_features, generator=g) - 0.5)


def test_fold_batchnorm_is_one_conv_with_the_same_output():
    torch.manual_seed(0)
    seq = nn.Sequential(nn.Conv2d(3, 6, 3, stride=2, padding=1), nn.BatchNorm2d(6), nn.ReLU(),
                        nn.Conv2d(6, 4, 1, bias=False), nn.BatchNorm2d(4, affine=False),
                        nn.ConvTranspose2d(4, 4, 3), nn.BatchNorm2d(4))
    _random_bn_stats(seq)
    seq.eval()
    x = torch.randn(2, 3, 16, 12)
    with torch.no_grad():
        ref = seq(x)
        assert fold_batchnorm(seq) == 2  # ConvTranspose + BN is left alone
        out = seq(x)
    assert isinstance(seq[1], nn.Identity) and isinstance(seq[4], nn.Identity)
    assert isinstance(seq[6], nn.BatchNorm2d)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)


def test_options_follow_the_device():
    cpu = options_for("cpu")
    assert cpu.channels_last and cpu.fold_bn and not cpu.half  # never half/bf16 on CPU
    assert options_for("cuda").half and not options_for("cuda", half=False).half
    assert not options_for(torch.device("cpu"), half=True).half


def test_p2b_copy_matches_eval_is_cached_and_leaves_the_model_alone():
    torch.manual_seed(0)
    net = P2BGenerator(**P2B_TINY)
    _random_bn_stats(net)
    net.train()
    x = torch.rand(2, 28, 64, 40)
    fast = prepare_for_inference(net, "cpu")
    assert net.training  # the caller's module keeps its mode and its BatchNorms
    assert sum(isinstance(m, nn.BatchNorm2d) for m in net.modules()) == 1 + 2 + 2 * 2
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fast.modules())  # all folded
    assert fast.net[1].weight.is_contiguous(memory_format=torch.channels_last)
    xi = inference_input(x, fast)
    assert xi.is_contiguous(memory_format=torch.channels_last)
    net.eval()
    with torch.inference_mode():
        torch.testing.assert_close(fast.logits(xi), net.logits(x), atol=1e-4, rtol=1e-4)
    assert prepare_for_inference(net, "cpu") is fast  # cached while the weights stay
    with torch.no_grad():
        net.net[1].weight.add_(0.1)  # e.g. an optimiser step
    fresh = prepare_for_inference(net, "cpu")
    assert fresh is not fast
    with torch.inference_mode():
        torch.testing.assert_close(fresh.logits(inference_input(x, fresh)), net.logits(x),
                                   atol=1e-4, rtol=1e-4)


def _frames(n: int, h: int = 96, w: int = 72):
    rng = np.random.default_rng(4)
    target = render(random_body(rng), random_pose(rng), h, w)
    body = random_body(rng)
    frames = []
    for _ in range(n):
        s = render(body, random_pose(rng, body), h, w)
        frames.append(s)
    return target, frames


def test_predict_parsing_optimised_equals_plain_eval():
    torch.manual_seed(0)
    net = P2BGenerator(**P2B_TINY)
    _random_bn_stats(net)
    net.eval()
    target, samples = _frames(3)
    frames = [DriverFrame(96, 72, s.person, None, s.densepose_i, s.densepose_u, s.densepose_v)
              for s in samples]
    fast = list(predict_parsing(net, target.labels, frames, batch_size=2))
    plain = list(predict_parsing(net, target.labels, frames, batch_size=2, optimize=False))
    assert len(fast) == 3 and fast[0].shape == (96, 72)
    agree = np.mean([np.mean(a == b) for a, b in zip(fast, plain)])
    assert agree > 0.999, agree  # argmax of logits equal to ~1e-6
    assert len(np.unique(np.concatenate([f.ravel() for f in fast]))) > 1


def test_b2f_frame_optimised_equals_plain_eval():
    torch.manual_seed(0)
    net = B2FGenerator(**B2F_TINY)
    _random_bn_stats(net)
    net.eval()
    _, samples = _frames(2)
    with torch.inference_mode():
        x0 = net.project(torch.randn(1, 40))
        for s in samples:
            zf, mf = run_b2f_frame(net, x0, s.labels, s.person.face)
            zp, mp = run_b2f_frame(net, x0, s.labels, s.person.face, optimize=False)
            torch.testing.assert_close(zf, zp, atol=1e-4, rtol=1e-4)
            torch.testing.assert_close(mf, mp, atol=1e-4, rtol=1e-4)
            assert mf.max() > 0
    fast = prepare_for_inference(net, "cpu")
    spades = [m for m in fast.modules() if isinstance(m, SPADE)]
    assert spades and all(m.gamma_beta is not None for m in spades)  # gamma/beta fused
    assert all(m.gamma_beta is None for m in net.modules() if isinstance(m, SPADE))


class _CountingEncoder(nn.Module):
    """The AppearanceEncoder's interface with tiny networks; counts its calls."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.calls = 0
        self.proj = nn.Linear(3 * 5, dim)

    def forward(self, crops: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.proj(crops.mean(dim=(3, 4)).flatten(1))


@pytest.mark.parametrize("n_frames", [5])
def test_appearance_encoded_once_for_a_whole_video(request, n_frames):
    from dance_reenact.nodes import b2f as node_mod
    from dance_reenact.nodes.runtime import get_device
    from dance_reenact.nodes.sockets import B2FModel, Parsing, Parts

    torch.manual_seed(0)
    encoder = _CountingEncoder(40)
    cache = model_cache()
    cache.clear(node_mod.ENCODER_KIND)
    request.addfinalizer(lambda: cache.clear(node_mod.ENCODER_KIND))  # no fake left behind
    cache.get_or_create(node_mod.ENCODER_KIND, str(get_device()), lambda: encoder)
    net = B2FGenerator(**B2F_TINY).eval()
    projections = []
    net.fc.register_forward_hook(lambda *_: projections.append(1))
    parts = Parts(crops=torch.rand(1, 5, 224, 224, 3), present=torch.ones(1, 5, dtype=bool))
    (app,) = node_mod.AppearanceEncoderNode().encode(parts, "pretrained")
    assert encoder.calls == 1 and app.embedding.shape == (1, 40)
    _, samples = _frames(n_frames)
    parsing = Parsing(torch.from_numpy(np.stack([s.labels for s in samples])))
    handle = B2FModel("network", module=net)
    z, m, report = node_mod.B2F().generate(handle, parsing, app)
    assert z.shape == (n_frames, 96, 72, 3) and m.shape == (n_frames, 96, 72)
    assert encoder.calls == 1  # B2F never re-encodes: once per target, not per frame
    assert projections == [1]  # and e_z -> FC once for the whole video
    assert f"{n_frames} frames" in report


def test_b2f_batch_equals_frame_by_frame_and_skips_empty_frames():
    from dance_reenact.models.core.inference import batch_size_for
    from dance_reenact.models.networks.b2f import run_b2f_frames

    assert batch_size_for("cpu") == 1 and batch_size_for("cuda") > 1
    torch.manual_seed(0)
    net = B2FGenerator(**B2F_TINY).eval()
    _, samples = _frames(2)
    frames = [(samples[0].labels, samples[0].person.face),
              (np.zeros((50, 40), np.uint8), None),  # nobody: None, other size
              (samples[1].labels, None)]
    with torch.inference_mode():
        x0 = net.project(torch.randn(1, 40))
        batch = run_b2f_frames(net, x0, frames)
        assert batch[1] is None
        for (labels, face), got in zip([frames[0], frames[2]], [batch[0], batch[2]]):
            z, m = run_b2f_frame(net, x0, labels, face)
            torch.testing.assert_close(got[0], z, atol=1e-4, rtol=1e-4)
            torch.testing.assert_close(got[1], m, atol=1e-4, rtol=1e-4)
