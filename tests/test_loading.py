"""Our safetensors format (config in metadata, strict loading) and safe third-party loading."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from dance_reenact.models.io import loading
from dance_reenact.models.io.weights import WeightError


@loading.register_architecture
class TinyNet(nn.Module):
    def __init__(self, *, channels: int = 4, depth: int = 2) -> None:
        super().__init__()
        self.config = dict(channels=channels, depth=depth)
        self.body = nn.Sequential(*[nn.Conv2d(channels, channels, 3, padding=1)
                                    for _ in range(depth)])

    def forward(self, x):
        return self.body(x)


@loading.register_architecture
class OtherNet(nn.Module):
    def __init__(self, *, width: int = 3) -> None:
        super().__init__()
        self.config = dict(width=width)
        self.fc = nn.Linear(width, width)


def test_round_trip_rebuilds_config_and_values(tmp_path):
    net = TinyNet(channels=6, depth=3)
    path = loading.save_model(net, tmp_path / "tiny.safetensors")
    meta = loading.read_metadata(path)
    assert meta["arch"] == "TinyNet" and json.loads(meta["config"]) == {"channels": 6, "depth": 3}
    back = loading.load_model(path, expected_arch="TinyNet")
    assert back.config == net.config and not back.training
    x = torch.randn(1, 6, 8, 8)
    torch.testing.assert_close(back(x), net(x))


def test_wrong_architecture_is_named(tmp_path):
    path = loading.save_model(OtherNet(), tmp_path / "other.safetensors")
    with pytest.raises(WeightError, match="holds a OtherNet checkpoint, but a TinyNet"):
        loading.load_model(path, expected_arch="TinyNet")


def test_shape_mismatch_names_parameter_and_both_shapes(tmp_path):
    path = loading.save_model(TinyNet(channels=4), tmp_path / "t.safetensors")
    with pytest.raises(WeightError) as err:
        loading.load_model(path, factory=lambda **cfg: TinyNet(channels=5, depth=2))
    msg = str(err.value)
    assert "body.0.weight: expected (5, 5, 3, 3), got (4, 4, 3, 3)" in msg


def test_missing_and_unexpected_keys_are_listed(tmp_path):
    path = loading.save_model(TinyNet(depth=2), tmp_path / "t.safetensors")
    with pytest.raises(WeightError) as err:
        loading.load_model(path, factory=lambda **cfg: TinyNet(channels=4, depth=3))
    assert "missing 2: body.2.weight, body.2.bias" in str(err.value)


def test_truncated_empty_and_lfs_pointer_files(tmp_path):
    path = loading.save_model(TinyNet(), tmp_path / "t.safetensors")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightError, match="truncated"):
        loading.load_model(path)
    empty = tmp_path / "e.safetensors"
    empty.write_bytes(b"")
    with pytest.raises(WeightError, match="empty"):
        loading.load_model(empty)
    ptr = tmp_path / "p.safetensors"
    ptr.write_text("version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 12\n")
    with pytest.raises(WeightError, match="git-lfs pointer"):
        loading.load_model(ptr)
    with pytest.raises(WeightError, match="does not exist"):
        loading.load_model(tmp_path / "nope.safetensors")


def test_foreign_safetensors_without_metadata(tmp_path):
    from safetensors.torch import save_file

    p = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(p))
    with pytest.raises(WeightError, match="not saved by this pack"):
        loading.load_model(p)


def test_pth_is_loaded_weights_only(tmp_path):
    good = tmp_path / "sd.pth"
    torch.save({"state_dict": {"w": torch.ones(3)}}, good)
    assert torch.equal(loading.load_state_dict_file(good)["w"], torch.ones(3))

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    bad = tmp_path / "evil.pth"
    torch.save({"x": Evil()}, bad)
    with pytest.raises(WeightError, match="weights-only"):
        loading.load_torch_file(bad)


def _with_config(src, dst, **changes):
    """Copy a checkpoint, editing its config metadata (the tensors stay as they are)."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(src), framework="pt") as f:
        meta = dict(f.metadata())
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    meta["config"] = json.dumps({**json.loads(meta["config"]), **changes})
    save_file(tensors, str(dst), metadata=meta)
    return dst


def test_config_metadata_is_checked_against_the_tensors_before_building(tmp_path):
    """A config that lies about its tensors is refused before a real network is built (a
    file claiming ngf=1e6 would otherwise try to allocate ~196 TB)."""
    good = loading.save_model(TinyNet(channels=4), tmp_path / "tiny.safetensors")
    huge = _with_config(good, tmp_path / "huge.safetensors", channels=1_000_000)
    with pytest.raises(WeightError, match=r"huge\.safetensors: its config metadata has "
                       r"channels=1000000, outside 0\.\.16384"):
        loading.load_model(huge)
    built_on = []

    def factory(**config):
        built_on.append(torch.empty(0).device.type)
        return TinyNet(**config)

    wrong = _with_config(good, tmp_path / "wrong.safetensors", channels=64)
    with pytest.raises(WeightError, match=r"wrong\.safetensors \(config metadata .*"
                       r"expected \(64, 64, 3, 3\), got \(4, 4, 3, 3\)"):
        loading.load_model(wrong, factory=factory)
    assert built_on == ["meta"]  # only the shape-only skeleton, never a real network
    built_on.clear()
    assert loading.load_model(good, factory=factory).config["channels"] == 4
    assert built_on == ["meta", "cpu"]


def test_pickle_error_does_not_advise_weights_only_false(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"a": _Payload()}, path)
    with pytest.raises(WeightError) as err:
        loading.load_torch_file(path)
    msg = str(err.value)
    assert "Unsupported global" in msg and "evil.pth" in msg
    for unsafe in ("weights_only` set to `False", "weights_only=False", "safe_globals",
                   "can still be loaded", "\x1b["):
        assert unsafe not in msg


class _Payload:
    pass
