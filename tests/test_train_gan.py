"""training/gan.py: the one PatchGAN the three trainers build their discriminators from, the
GAN losses, and that each trainer's discriminator is still the network (and the checkpoint
keys) it was before they shared the module; training/common.py's device choice."""

from __future__ import annotations

import logging

import pytest
import torch
from torch import nn

from dance_reenact.training import b2f as B
from dance_reenact.training import common as C
from dance_reenact.training import face as T
from dance_reenact.training.gan import (
    MultiscaleDiscriminator,
    PatchDiscriminator,
    adversarial_loss,
    feature_matching_loss,
)


def test_p2b_discriminators_full_and_half_resolution_and_pix2pixhd_keys() -> None:
    d = MultiscaleDiscriminator(in_channels=28, num_d=2, ndf=4, n_layers=2)
    out = d(torch.rand(1, 28, 64, 40))
    assert len(out) == 2 and len(out[0]) == 2 + 2
    assert out[0][-1].shape[1] == 1
    assert out[0][-1].shape[-2] > out[1][-1].shape[-2]  # the second sees half the resolution
    # the key names p2b_train_state.pt has held since the discriminators lived in the
    # library's P2B module
    keys = [k for k in d.state_dict() if k.startswith("discs.0.")]
    assert keys == [f"discs.0.blocks.{i}.0.{p}" for i in range(4) for p in ("weight", "bias")]


class _OldB2FPatch(nn.Module):
    """training/b2f.py's PatchDiscriminator before training/gan.py (verbatim layers)."""

    def __init__(self, in_channels: int, ndf: int, n_layers: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Sequential(nn.Conv2d(in_channels, ndf, 4, 2, 2),
                                                 nn.LeakyReLU(0.2))]
        c = ndf
        for i in range(1, n_layers):
            c2 = min(c * 2, 512)
            layers.append(nn.Sequential(nn.Conv2d(c, c2, 4, 2 if i < n_layers - 1 else 1, 2),
                                        nn.InstanceNorm2d(c2), nn.LeakyReLU(0.2)))
            c = c2
        layers.append(nn.Conv2d(c, 1, 4, 1, 2))
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for layer in self.layers:
            x = layer(x)
            feats.append(x)
        return feats


class _OldB2FMultiscale(nn.Module):
    def __init__(self, in_channels: int, ndf: int, n_layers: int) -> None:
        super().__init__()
        self.ds = nn.ModuleList(_OldB2FPatch(in_channels, ndf, n_layers) for _ in range(2))

    def forward(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        out = []
        for i, d in enumerate(self.ds):
            if i:
                x = torch.nn.functional.avg_pool2d(x, 3, stride=2, padding=1,
                                                   count_include_pad=False)
            out.append(d(x))
        return out


@pytest.mark.parametrize("d_layers", [1, 2, 3])
def test_b2f_discriminator_is_the_old_one_and_reads_old_states(d_layers: int) -> None:
    """Same seed, same weights (the old RNG order) and the same outputs; an old
    ``train_state.pt`` discriminator loads strictly after the key upgrade."""
    cfg = B.B2FTrainConfig(ndf=8, d_layers=d_layers)
    torch.manual_seed(3)
    old = _OldB2FMultiscale(27, 8, d_layers)
    torch.manual_seed(3)
    new = B.build_discriminator(cfg, 24)
    upgraded = B._upgrade_d_state(old.state_dict())
    assert set(upgraded) == set(new.state_dict())
    for k, v in upgraded.items():
        assert torch.equal(v, new.state_dict()[k]), k
    torch.manual_seed(4)
    new.load_state_dict(B._upgrade_d_state(_OldB2FMultiscale(27, 8, d_layers).state_dict()))
    torch.manual_seed(4)
    old = _OldB2FMultiscale(27, 8, d_layers)
    x = torch.rand(2, 27, 64, 40)
    for a, b in zip(old(x), new(x), strict=True):
        assert len(a) == len(b) == d_layers + 1
        for fa, fb in zip(a, b, strict=True):
            torch.testing.assert_close(fa, fb)


class _OldFaceDisc(nn.Module):
    """training/face.py's PatchDiscriminator before training/gan.py (verbatim)."""

    def __init__(self, ndf: int = 32) -> None:
        super().__init__()
        sn = nn.utils.spectral_norm
        self.net = nn.Sequential(
            sn(nn.Conv2d(3, ndf, 4, 2, 1)), nn.LeakyReLU(0.2, True),
            sn(nn.Conv2d(ndf, ndf * 2, 4, 2, 1)), nn.LeakyReLU(0.2, True),
            sn(nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1)), nn.LeakyReLU(0.2, True),
            sn(nn.Conv2d(ndf * 4, 1, 3, 1, 1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x * 2 - 1)


def test_face_discriminator_is_the_old_one_and_reads_old_states() -> None:
    torch.manual_seed(5)
    old = _OldFaceDisc()
    torch.manual_seed(5)
    new = T.build_discriminator()
    upgraded = T._upgrade_d_state(old.state_dict())  # weight_orig, weight_u, weight_v, bias
    assert set(upgraded) == set(new.state_dict())
    for k, v in upgraded.items():
        assert torch.equal(v, new.state_dict()[k]), k
    new.load_state_dict(upgraded)
    x = torch.rand(2, 3, 32, 32)
    for mode in ("eval", "train"):  # train: one power iteration each, from the same u
        getattr(old, mode)()
        getattr(new, mode)()
        scores = new(x * 2 - 1)
        assert len(scores) == 1 and scores[0][-1].shape == (2, 1, 4, 4)
        torch.testing.assert_close(scores[0][-1], old(x))


def test_patch_discriminator_arguments() -> None:
    d = PatchDiscriminator(in_channels=3, ndf=4, n_layers=1, norm="none")
    assert not any(isinstance(m, nn.InstanceNorm2d) for m in d.modules())
    with pytest.raises(ValueError, match="norm"):
        PatchDiscriminator(in_channels=3, norm="batch")
    with pytest.raises(ValueError, match="d_layers"):
        B.build_discriminator(B.B2FTrainConfig(d_layers=0), 24)


def test_adversarial_losses() -> None:
    s = torch.tensor([[0.5, -2.0]])
    preds = [[torch.zeros(1), s], [torch.zeros(1), s * 0 + 1.0]]
    # LSGAN: mean squared distance to 1 (real) / 0 (fake), summed over the discriminators
    assert adversarial_loss(preds, real=True, mode="lsgan").item() == pytest.approx(
        (0.25 + 9.0) / 2 + 0.0)
    assert adversarial_loss(preds, real=False, mode="lsgan").item() == pytest.approx(
        (0.25 + 4.0) / 2 + 1.0)
    # hinge: relu(1 - D) on real, relu(1 + D) on fake; the generator -D
    assert adversarial_loss(preds, real=True, mode="hinge").item() == pytest.approx(
        (0.5 + 3.0) / 2 + 0.0)
    assert adversarial_loss(preds, real=False, mode="hinge").item() == pytest.approx(
        (1.5 + 0.0) / 2 + 2.0)
    assert adversarial_loss(preds, real=True, mode="hinge",
                            for_discriminator=False).item() == pytest.approx(0.75 - 1.0)
    with pytest.raises(ValueError, match="GAN mode"):
        adversarial_loss(preds, real=True, mode="wgan")


def test_feature_matching_skips_scores_weights_layers_and_averages_discriminators() -> None:
    fake = [[torch.ones(2), torch.zeros(2), torch.full((1,), 9.0)],
            [torch.full((2,), 3.0), torch.zeros(1)]]
    real = [[torch.zeros(2), torch.zeros(2), torch.zeros(1)],
            [torch.zeros(2), torch.zeros(1)]]
    assert feature_matching_loss(fake, real).item() == pytest.approx((1.0 + 3.0) / 2)
    assert feature_matching_loss(fake, real, layer_weight=0.5).item() == pytest.approx(1.0)
    fake[0][0].requires_grad_(True)
    real[0][0].requires_grad_(True)
    feature_matching_loss(fake, real).backward()
    assert fake[0][0].grad is not None and real[0][0].grad is None  # real ones are targets


def test_device_choice_and_one_process_context(monkeypatch) -> None:
    cuda = torch.cuda.is_available()
    assert C.select_device("auto").type == ("cuda" if cuda else "cpu")
    assert C.select_device("") == C.select_device(None) == C.select_device("auto")
    assert C.select_device("cpu") == torch.device("cpu")
    assert C.select_device("cuda", local_rank=1) == torch.device("cuda", 1)
    assert C.select_device("cuda:0", local_rank=1) == torch.device("cuda", 0)
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    ctx = C.setup_distributed("cpu")
    assert (ctx.rank, ctx.world_size, ctx.distributed, ctx.is_main) == (0, 1, False, True)
    net = nn.Linear(2, 2)
    assert C.wrap_ddp(net, ctx) is net
    C.teardown_distributed(ctx)  # nothing to leave
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(ValueError, match="WORLD_SIZE"):
        C.setup_distributed("cpu")


def test_rank_logger_keeps_info_to_rank_zero(caplog) -> None:
    base = logging.getLogger("dance_reenact.training.test")
    one = C.DistContext(rank=1, world_size=2, local_rank=1, device=torch.device("cpu"))
    zero = C.DistContext(rank=0, world_size=2, local_rank=0, device=torch.device("cpu"))
    with caplog.at_level(logging.INFO, logger=base.name):
        C.rank_logger(base, one).info("step 1")
        C.rank_logger(base, one).warning("slow disk")
        C.rank_logger(base, zero).info("step 2")
    assert [r.getMessage() for r in caplog.records] == ["[rank 1] slow disk", "step 2"]


def test_train_state_is_written_atomically_and_read_weights_only(tmp_path) -> None:
    path = C.save_train_state(tmp_path / "run" / "state.pt", {"step": 3, "w": torch.ones(2)})
    assert path.is_file() and not (tmp_path / "run" / "state.pt.tmp").exists()
    state = C.load_train_state(path)
    assert state["step"] == 3 and torch.equal(state["w"], torch.ones(2))
    with pytest.raises(FileNotFoundError, match="nowhere"):
        C.load_train_state(tmp_path / "nowhere.pt")
