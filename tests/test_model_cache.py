"""The one model cache: LRU bounds, closing, release per device, every loader using it, and
ComfyUI's memory management freeing it (through a fake ``comfy.model_management``)."""

from __future__ import annotations

import gc
import sys
import types
from functools import partial

import pytest
import torch
from torch import nn

from dance_reenact.models.core import cache as cache_mod
from dance_reenact.models.core.cache import ModelCache, model_cache


class _Closable:
    def __init__(self, name: str, log: list[str] | None = None) -> None:
        self.name, self.log, self.closed = name, log, False

    def close(self) -> None:
        self.closed = True
        if self.log is not None:
            self.log.append(self.name)


@pytest.fixture
def shared_cache():
    """The pack's cache, empty before and after the test."""
    model_cache().clear()
    yield model_cache()
    model_cache().clear()


def test_lru_evicts_least_recently_used_and_closes_it():
    c = ModelCache(max_entries=2)
    closed: list[str] = []
    builds = []

    def make(name):
        builds.append(name)
        return _Closable(name, closed)

    a = c.get_or_create("k", "a", lambda: make("a"))
    c.get_or_create("k", "b", lambda: make("b"))
    assert c.get_or_create("k", "a", lambda: make("a2")) is a  # a hit: built once, now newest
    c.get_or_create("k", "c", lambda: make("c"))  # over the bound: b is the least recent
    assert builds == ["a", "b", "c"] and closed == ["b"]
    assert c.keys() == [("k", "a"), ("k", "c")]
    assert c.clear() == 2 and sorted(closed) == ["a", "b", "c"] and len(c) == 0


def test_kind_limit_evicts_before_loading_and_only_that_kind():
    c = ModelCache(max_entries=10)
    order: list[str] = []
    c.get_or_create("other", 1, lambda: _Closable("o", order))
    c.get_or_create("net", "x", lambda: _Closable("x", order), kind_limit=1)

    def build_y():
        order.append("build y")  # x must be gone first: never two big networks at once
        return _Closable("y", order)

    c.get_or_create("net", "y", build_y, kind_limit=1)
    assert order == ["x", "build y"]
    assert c.keys() == [("other", 1), ("net", "y")]
    assert c.clear("net") == 1 and c.keys() == [("other", 1)]


def test_failed_factory_leaves_no_entry():
    c = ModelCache(max_entries=3)
    with pytest.raises(RuntimeError):
        c.get_or_create("k", 1, lambda: (_ for _ in ()).throw(RuntimeError("no weights")))
    assert len(c) == 0
    assert c.get_or_create("k", 1, lambda: "ok") == "ok"


def test_bound_comes_from_env(monkeypatch):
    monkeypatch.setenv(cache_mod.ENV_MAX_ENTRIES, "3")
    assert ModelCache().max_entries == 3
    monkeypatch.setenv(cache_mod.ENV_MAX_ENTRIES, "lots")
    assert ModelCache().max_entries == cache_mod.DEFAULT_MAX_ENTRIES


def test_release_drops_only_that_devices_entries_then_empties_the_driver_cache(monkeypatch):
    emptied = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: emptied.append(1))
    c = ModelCache(max_entries=10)
    gpu0 = c.get_or_create("net", "g0", lambda: _Closable("g0"), device="cuda:0")
    gpu1 = c.get_or_create("net", "g1", lambda: _Closable("g1"), device="cuda:1")
    c.get_or_create("net", "cpu", lambda: nn.Linear(2, 2), device="cpu")
    c.get_or_create("graph", "mp", lambda: _Closable("mp"))  # host memory only
    assert c.release("cuda:0") == 1 and gpu0.closed and not gpu1.closed and emptied == [1]
    assert c.release("cuda:0") == 0 and emptied == [1]  # nothing dropped: no empty_cache
    assert c.release() == 1 and gpu1.closed  # None: every accelerator, host entries stay
    assert c.keys() == [("net", "cpu"), ("graph", "mp")]


# ------------------------------------------------------------------------------------------
# every loader that used to keep its own dict goes through the one cache
# ------------------------------------------------------------------------------------------

def _one_entry_per_key(cache: ModelCache, kind: str, call, n_keys: int = 1) -> list:
    first = call()
    second = call()
    assert first is second
    keys = cache.keys(kind)
    assert len(keys) == n_keys, keys
    return keys


def test_inference_copies_live_in_the_cache_and_die_with_their_module(shared_cache):
    from dance_reenact.models.core.inference import prepare_for_inference

    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)).eval()
    _one_entry_per_key(shared_cache, "inference", partial(prepare_for_inference, net, "cpu"))
    with torch.no_grad():
        net[0].weight.add_(1.0)  # changed weights: rebuilt, still one entry for the module
    prepare_for_inference(net, "cpu")
    assert len(shared_cache.keys("inference")) == 1
    del net
    gc.collect()
    assert shared_cache.keys("inference") == []  # the module is gone: so is its copy
    other = nn.Conv2d(1, 1, 1)
    prepare_for_inference(other, "cpu")
    assert shared_cache.clear() == 1 and shared_cache.keys() == []


def test_shared_mediapipe_graph_is_cached_and_closed_on_clear(shared_cache, monkeypatch):
    from dance_reenact.models.perception import mediapipe_holistic as mph

    made: list[_Closable] = []

    class FakeHolistic(_Closable):
        def __init__(self, **kwargs):
            super().__init__(str(kwargs))
            made.append(self)

        def __call__(self, rgb):
            return []

    monkeypatch.setattr(mph, "HolisticDetector", FakeHolistic)
    rgb = torch.zeros(8, 8, 3, dtype=torch.uint8).numpy()
    _one_entry_per_key(shared_cache, "mediapipe_static",
                       lambda: (mph.detect_people(rgb), mph._shared_detector(True, True))[1])
    assert len(made) == 1
    shared_cache.clear()
    assert made[0].closed


def test_pose_networks_are_cached_per_key(shared_cache, monkeypatch, tmp_path):
    from dance_reenact.models.perception import dwpose
    from dance_reenact.models.perception import pose as pose_mod

    built = []

    class FakeDWPose:
        def __init__(self, det, pose, providers):
            built.append((det, pose))

    monkeypatch.setattr(pose_mod, "resolve", lambda name, **kw: tmp_path / name)
    monkeypatch.setattr(dwpose, "DWPoseOnnx", FakeDWPose)
    _one_entry_per_key(shared_cache, "pose",
                       lambda: pose_mod.PoseEstimator("dwpose", device="cpu")._run)
    assert len(built) == 1
    pose_mod.clear_cache()
    assert shared_cache.keys("pose") == []


def test_node_loaders_use_the_one_cache(shared_cache, monkeypatch, tmp_path):
    from dance_reenact.nodes import b2f as b2f_nodes
    from dance_reenact.nodes import metrics as metric_nodes
    from dance_reenact.nodes import parsing as parsing_nodes
    from dance_reenact.nodes import perception as perc
    from dance_reenact.nodes.sockets import Parts

    loads: dict[str, int] = {}

    def counted(name, value):
        def build(*args, **kwargs):
            loads[name] = loads.get(name, 0) + 1
            return value() if callable(value) else value
        return build

    # DensePose (TorchScript)
    monkeypatch.setattr(perc, "resolve", lambda name, **kw: tmp_path / name)
    monkeypatch.setattr(perc, "load_densepose_torchscript", counted("densepose", object()))
    monkeypatch.setattr(perc, "DensePoseTorchScript", lambda module, device: _Closable("dp"))
    _one_entry_per_key(shared_cache, perc.DENSEPOSE_KIND,
                       lambda: perc._torchscript_runner("DensePose"))

    # the appearance encoder
    class Encoder(nn.Module):
        def forward(self, crops, present):
            return torch.zeros(crops.shape[0], 4)

    monkeypatch.setattr(b2f_nodes, "load_pretrained_encoder", counted("encoder", Encoder))
    parts = Parts(crops=torch.rand(1, 5, 8, 8, 3), present=torch.ones(1, 5, dtype=torch.bool))
    for _ in range(2):
        b2f_nodes.AppearanceEncoderNode().encode(parts, "pretrained")
    assert len(shared_cache.keys(b2f_nodes.ENCODER_KIND)) == 1

    # human parsing networks (the weightless backend loads nothing and is not kept)
    monkeypatch.setattr(parsing_nodes, "HumanParser",
                        counted("parser", lambda: _Closable("schp")))
    _one_entry_per_key(shared_cache, parsing_nodes.PARSER_KIND,
                       lambda: parsing_nodes.get_parser("schp_lip", torch.device("cpu")))

    # metric networks
    _one_entry_per_key(shared_cache, metric_nodes.METRIC_KIND,
                       lambda: metric_nodes._cached(("fid", "cpu"), counted("fid", nn.Identity),
                                                    torch.device("cpu")))

    assert loads == {"densepose": 1, "encoder": 1, "parser": 1, "fid": 1}
    assert shared_cache.clear() == 4 and shared_cache.keys() == []


# ------------------------------------------------------------------------------------------
# inside ComfyUI
# ------------------------------------------------------------------------------------------

@pytest.fixture
def fake_comfy(monkeypatch):
    """A stand-in ``comfy.model_management`` recording what ComfyUI's memory calls do."""
    mm = types.ModuleType("comfy.model_management")
    mm.calls = []
    mm.free_bytes = 0

    def unload_all_models():
        mm.calls.append("unload_all_models")
        mm.free_memory(1e30, torch.device("cpu"))  # as ComfyUI's does

    mm.unload_all_models = unload_all_models
    mm.free_memory = lambda required, device, keep_loaded=(): mm.calls.append("free_memory")
    mm.soft_empty_cache = lambda force=False: mm.calls.append("soft_empty_cache")
    mm.get_free_memory = lambda dev=None, torch_free_too=False: mm.free_bytes
    mm.get_torch_device = lambda: torch.device("cpu")
    comfy = types.ModuleType("comfy")
    comfy.model_management = mm
    monkeypatch.setitem(sys.modules, "comfy", comfy)
    monkeypatch.setitem(sys.modules, "comfy.model_management", mm)
    return mm


def test_comfyui_unload_all_models_clears_the_cache(fake_comfy, shared_cache):
    from dance_reenact.nodes.runtime import register_memory_hooks

    assert register_memory_hooks() and register_memory_hooks()  # twice: wrapped once
    graph = shared_cache.get_or_create("mediapipe_static", 1, lambda: _Closable("mp"))
    shared_cache.get_or_create("net", 1, lambda: nn.Linear(2, 2), device="cpu")
    fake_comfy.unload_all_models()
    assert shared_cache.keys() == [] and graph.closed
    # ours first, the freed blocks handed back, then ComfyUI's own unloading (called once)
    assert fake_comfy.calls == ["soft_empty_cache", "unload_all_models", "free_memory"]


def test_comfyui_free_memory_releases_our_device_models_only_when_short(fake_comfy,
                                                                         shared_cache):
    from dance_reenact.nodes.runtime import register_memory_hooks

    register_memory_hooks()
    shared_cache.get_or_create("net", 1, lambda: nn.Linear(2, 2), device="cpu")
    shared_cache.get_or_create("graph", 1, lambda: _Closable("mp"))  # host only
    fake_comfy.free_bytes = 10 << 30
    fake_comfy.free_memory(1 << 30, torch.device("cpu"))  # ComfyUI freed enough itself
    assert len(shared_cache) == 2 and fake_comfy.calls == ["free_memory"]
    fake_comfy.free_bytes = 0
    fake_comfy.free_memory(1 << 30, torch.device("cpu"))
    assert shared_cache.keys() == [("graph", 1)]
    assert fake_comfy.calls == ["free_memory", "free_memory", "soft_empty_cache"]


def test_no_hooks_outside_comfyui(monkeypatch):
    from dance_reenact.nodes import runtime

    monkeypatch.setattr(runtime, "_comfy_mm", lambda: None)
    assert runtime.register_memory_hooks() is False
