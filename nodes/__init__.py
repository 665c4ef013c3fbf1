"""ComfyUI node adapters. Each module exports NODE_CLASS_MAPPINGS / NODE_DISPLAY_NAME_MAPPINGS;
this package merges them. Add a stage by adding its module to _MODULES."""

from __future__ import annotations

import importlib

from .preflight import add_graph_checks

_MODULES = (
    "utility",
    "temporal",
    "perception",
    "metrics",
    "parsing",
    "p2b",
    "face",
    "inpaint",
    "b2f",
    "blend",
    "reenact",
)

NODE_CLASS_MAPPINGS: dict[str, type] = {}
NODE_DISPLAY_NAME_MAPPINGS: dict[str, str] = {}

for _name in _MODULES:
    _mod = importlib.import_module(f".{_name}", __name__)
    for _key, _cls in _mod.NODE_CLASS_MAPPINGS.items():
        if _key in NODE_CLASS_MAPPINGS:
            raise RuntimeError(f"node {_key} is defined twice (in {_name})")
        NODE_CLASS_MAPPINGS[_key] = _cls
    NODE_DISPLAY_NAME_MAPPINGS.update(_mod.NODE_DISPLAY_NAME_MAPPINGS)

# every node checks the whole queued graph's weight files once, before its own work: the
# first node to run answers for all of them (preflight.py)
for _key, _cls in NODE_CLASS_MAPPINGS.items():
    add_graph_checks(_cls, NODE_DISPLAY_NAME_MAPPINGS.get(_key, _key))
