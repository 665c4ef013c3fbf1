"""The weight registry against a loopback Hub, driving the real huggingface_hub client."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from dance_reenact.models.io import weights
from dance_reenact.models.io.weights import WeightError, WeightSpec


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


def test_unreachable_hub_gives_actionable_error_within_2_s(weights_dir, monkeypatch):
    # conftest points HF_ENDPOINT at a closed port; nothing is cached
    import time

    weights._probes.clear()
    t0 = time.perf_counter()
    with pytest.raises(WeightError) as err:
        weights.resolve(_spec("0" * 64))
    assert time.perf_counter() - t0 < 2.0
    assert "download failed" in str(err.value) and "did not answer" in str(err.value)
    # the direct download URL, not the file's web page
    assert "https://huggingface.co/acme/tiny/resolve/main/tiny.safetensors" in str(err.value)
    # a port that accepts but never answers (a black-holed proxy): still under 2 s
    import socket

    sink = socket.socket()
    sink.bind(("127.0.0.1", 0))
    sink.listen(1)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{sink.getsockname()[1]}")
    t0 = time.perf_counter()
    try:
        with pytest.raises(WeightError, match="did not answer within 1.5 s"):
            weights.resolve(_spec("1" * 64))
    finally:
        sink.close()
    assert time.perf_counter() - t0 < 2.0
    # offline mode: no probe at all, at once
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    t0 = time.perf_counter()
    with pytest.raises(WeightError, match="offline"):
        weights.resolve(_spec("2" * 64))
    assert time.perf_counter() - t0 < 0.5


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
        assert spec.used_by, f"{name}: say what loads it (docs/weights.md shows it)"
    names = [s.disk_name for s in weights.REGISTRY.values()]
    assert len(names) == len(set(names)), "two registry files would share a name on disk"


def test_every_registry_entry_is_loaded_by_pack_code():
    """A pinned, documented file that nothing loads only misleads users (five such entries
    were dropped): each name must appear as a string literal in the pack's own code, outside
    the registry, the tests and the benchmarks."""
    root = Path(weights.__file__).resolve().parents[1]
    code = "\n".join(
        p.read_text() for p in root.rglob("*.py")
        if p.relative_to(root).parts[0] not in {"tests", "benchmarks", ".venv", "build"}
        and p.resolve() != Path(weights.__file__).resolve())
    unused = [n for n in weights.REGISTRY if f'"{n}"' not in code and f"'{n}'" not in code]
    assert not unused, f"registry entries no code loads: {unused}"


def test_search_roots_order(weights_dir, tmp_path):
    extra = tmp_path / "comfy_models"
    weights.add_search_root(extra)
    try:
        roots = weights.search_roots()
        assert roots[0] == weights_dir and extra in roots
        assert roots[-1] == weights.default_cache_dir()
    finally:
        weights._extra_roots.remove(extra)


def test_same_filename_in_two_repos_never_stands_in(hub, weights_dir):
    """bob/p2b after alice/p2b (same file name, no sha): bob gets bob's bytes."""
    hub.add("alice/p2b", "p2b_generator.safetensors", b"alice" * 300)
    hub.add("bob/p2b", "p2b_generator.safetensors", b"bob" * 500)
    alice = weights.resolve(weights.user_spec("alice/p2b", "p2b_generator.safetensors"))
    bob = weights.resolve(weights.user_spec("bob/p2b", "p2b_generator.safetensors"))
    assert alice.read_bytes() == b"alice" * 300 and bob.read_bytes() == b"bob" * 500
    assert bob == weights_dir / "hub" / "bob" / "p2b" / "main" / "p2b_generator.safetensors"
    other_rev = weights.user_spec("bob/p2b", "p2b_generator.safetensors", revision="v2")
    assert weights.cache_path(other_rev) != bob


def test_hand_placed_file_serves_a_user_spec_only_when_its_pinned_sha_matches(
        hub, weights_dir, monkeypatch):
    (weights_dir / "p2b.safetensors").write_bytes(b"mine")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    pinned = weights.user_spec("carol/p2b", "p2b.safetensors", sha256=_sha(b"mine"))
    assert weights.resolve(pinned) == weights_dir / "p2b.safetensors"
    with pytest.raises(WeightError, match="offline"):  # unpinned: could be anyone's file
        weights.resolve(weights.user_spec("carol/p2b", "p2b.safetensors"))


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_pinned_file_edited_in_place_with_size_and_mtime_kept_is_caught(weights_dir,
                                                                          monkeypatch):
    import time

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    path = weights_dir / "tiny.safetensors"
    path.write_bytes(b"hello")
    spec = _spec(_sha(b"hello"))
    assert weights.resolve(spec) == path  # verified and stamped
    st = path.stat()
    time.sleep(0.05)
    with open(path, "r+b") as f:  # same size, then the old mtime put back
        f.write(b"J")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    with pytest.raises(WeightError, match="sha256"):
        weights.resolve(spec)


def test_torchscript_files_are_hashed_on_every_load(weights_dir, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    (weights_dir / "net.torchscript").write_bytes(b"code")
    (weights_dir / "w.safetensors").write_bytes(b"data")
    hashed = []
    real = weights.sha256_file
    monkeypatch.setattr(weights, "sha256_file", lambda p, *a: hashed.append(p) or real(p, *a))
    for _ in range(3):
        weights.resolve(_spec(_sha(b"code"), "net.torchscript"))
        weights.resolve(_spec(_sha(b"data"), "w.safetensors"))
    names = [os.path.basename(p) for p in hashed]
    assert names.count("net.torchscript") == 3 and names.count("w.safetensors") == 1


def test_stale_incoming_folders_of_killed_downloads_are_removed(hub, weights_dir):
    import subprocess
    import sys
    import time

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    killed = weights_dir / ".incoming-killed"
    killed.mkdir()
    (killed / ".owner-pid").write_text(str(dead.pid))
    (killed / "half.safetensors.incomplete").write_bytes(b"x" * 100)
    old = weights_dir / ".incoming-old"  # from a version that recorded no owner
    old.mkdir()
    os.utime(old, (time.time() - 7200,) * 2)
    running = weights_dir / ".incoming-running"  # a download in progress elsewhere
    running.mkdir()
    (running / ".owner-pid").write_text(str(os.getppid()))
    data = os.urandom(512)
    weights.resolve(_spec(hub.add("acme/tiny", "tiny.safetensors", data)))
    left = sorted(p.name for p in weights_dir.iterdir() if p.name.startswith(".incoming"))
    assert left == [".incoming-running"]


def test_local_file_outside_the_models_folders_is_refused(weights_dir, tmp_path):
    from dance_reenact.nodes.p2b import P2BLoader
    from dance_reenact.nodes.runtime import NodeInputError

    secret = tmp_path / "secret.safetensors"
    secret.write_bytes(b"x")
    rel = os.path.relpath(secret, weights_dir)
    assert rel.startswith("..")
    for name in (rel, str(secret)):
        with pytest.raises(NodeInputError, match=r"\[P2B Loader\] input 'local_file'.*outside "
                           r"the models folders"):
            P2BLoader().load("local", local_file=name)
    (weights_dir / "mine.safetensors").write_bytes(b"x")
    assert weights.find_file("mine.safetensors") == (weights_dir / "mine.safetensors").resolve()
    assert weights.find_file(str(weights_dir / "mine.safetensors")) is not None
