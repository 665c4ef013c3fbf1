"""The weight registry against a loopback Hub, driving the real huggingface_hub client."""

from __future__ import annotations

import hashlib
import os

import pytest

from dance_reenact.models import weights
from dance_reenact.models.weights import WeightError, WeightSpec


def _spec(sha: str | None, filename: str = "tiny.safetensors") -> WeightSpec:
    return WeightSpec("acme/tiny", filename, "main", sha, "mit")


def test_good_download_lands_verified_and_then_works_offline(hub, weights_dir, monkeypatch):
    data = os.urandom(4096)
    sha = hub.add("acme/tiny", "tiny.safetensors", data)
    path = weights.resolve(_spec(sha))
    assert path == weights_dir / "tiny.safetensors"
    assert path.read_bytes() == data
    assert [m for m, _ in hub.requests].count("GET") == 1
    # nothing but the file (and its stamp) is left in the folder: no temp dirs
    assert sorted(p.name for p in weights_dir.iterdir() if not p.name.startswith(".hf")) == [
        ".tiny.safetensors.verified.json", "tiny.safetensors"]
    # offline with the file present: no request at all, same path
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    hub.requests.clear()
    assert weights.resolve(_spec(sha)) == path
    assert hub.requests == []


def test_corrupt_download_is_discarded_with_clear_error(hub, weights_dir):
    good = os.urandom(2048)
    hub.add("acme/tiny", "tiny.safetensors", good[:-100] + b"x" * 100)
    with pytest.raises(WeightError) as err:
        weights.resolve(_spec(hashlib.sha256(good).hexdigest()))
    msg = str(err.value)
    assert "acme/tiny/tiny.safetensors" in msg and "corrupt" in msg
    assert str(weights_dir / "tiny.safetensors") in msg
    assert not (weights_dir / "tiny.safetensors").exists()
    assert not any(p.name.startswith(".incoming") for p in weights_dir.iterdir())


def test_offline_with_nothing_cached_names_repo_file_and_path(hub, weights_dir, monkeypatch):
    hub.add("acme/tiny", "tiny.safetensors", b"abc")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightError) as err:
        weights.resolve(_spec(hashlib.sha256(b"abc").hexdigest()))
    msg = str(err.value)
    assert "acme/tiny/tiny.safetensors" in msg and "offline" in msg
    assert str(weights_dir / "tiny.safetensors") in msg and "place it" in msg
    assert hub.requests == []


def test_unreachable_hub_gives_actionable_error(weights_dir):
    # conftest points HF_ENDPOINT at a closed port
    with pytest.raises(WeightError) as err:
        weights.resolve(_spec("0" * 64))
    assert "download failed" in str(err.value)
    assert "https://huggingface.co/acme/tiny/blob/main/tiny.safetensors" in str(err.value)


def test_missing_file_on_hub_is_a_weight_error(hub):
    with pytest.raises(WeightError, match="download failed"):
        weights.resolve(_spec("0" * 64, "nope.safetensors"))


def test_user_spec_without_sha_uses_hub_lfs_sha256(hub, weights_dir):
    data = os.urandom(1000)
    hub.add("me/my-p2b", "p2b.safetensors", data)
    path = weights.resolve(weights.user_spec("me/my-p2b", "p2b.safetensors"))
    assert path.read_bytes() == data


def test_user_spec_small_non_lfs_file_checked_by_git_sha1(hub, weights_dir):
    data = b'{"tiny": true}'
    hub.add("me/cfg", "config.json", data, lfs=False)
    path = weights.resolve(weights.user_spec("me/cfg", "config.json"))
    assert path.read_bytes() == data


def test_hand_placed_file_is_found_and_a_wrong_one_is_refused(weights_dir, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    (weights_dir / "tiny.safetensors").write_bytes(b"hello")
    good = _spec(hashlib.sha256(b"hello").hexdigest())
    assert weights.resolve(good) == weights_dir / "tiny.safetensors"
    (weights_dir / "tiny.safetensors").write_bytes(b"hellO")  # truncated / other version
    with pytest.raises(WeightError) as err:
        weights.resolve(good)
    assert "sha256" in str(err.value) and "Delete it" in str(err.value)
    assert (weights_dir / "tiny.safetensors").read_bytes() == b"hellO"  # user data kept


def test_user_spec_rejects_malformed_repo_ids():
    with pytest.raises(WeightError, match="owner/name"):
        weights.user_spec("no-slash", "a.safetensors")
    with pytest.raises(WeightError, match="inside the repo"):
        weights.user_spec("a/b", "../../etc/passwd")


def test_registry_entries_are_pinned():
    for name, spec in weights.REGISTRY.items():
        assert spec.sha256 and len(spec.sha256) == 64, name
        assert spec.license, name
        assert spec.repo_id.count("/") == 1, name
    names = [s.disk_name for s in weights.REGISTRY.values()]
    assert len(names) == len(set(names)), "two registry files would share a name on disk"


def test_search_roots_order(weights_dir, tmp_path):
    extra = tmp_path / "comfy_models"
    weights.add_search_root(extra)
    try:
        roots = weights.search_roots()
        assert roots[0] == weights_dir and extra in roots
        assert roots[-1] == weights.default_cache_dir()
    finally:
        weights._extra_roots.remove(extra)
