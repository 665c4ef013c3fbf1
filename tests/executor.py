"""A small test-only executor for API-format workflows (ComfyUI stays the engine for users).

``run_workflow(prompt, mappings)`` runs ``{"id": {"class_type": ..., "inputs": {name: value |
["id", slot]}}}`` in dependency order through node classes, the way ComfyUI calls them:
``getattr(cls(), cls.FUNCTION)(**inputs)`` (hidden ``PROMPT`` / ``UNIQUE_ID`` inputs get the
prompt and the node id) returning a tuple (or a ``{"result": tuple}`` dict
for output nodes). Returns every node's outputs by id.

With ``cache`` (a dict kept between runs) a node is re-run only when its input signature
changes, as ComfyUI's cache does: the class, its widget values, ``IS_CHANGED`` when the class
defines it, and the signatures of the nodes its links come from.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class WorkflowError(RuntimeError):
    pass


def _is_link(value: Any) -> bool:
    return (isinstance(value, (list, tuple)) and len(value) == 2 and isinstance(value[0], str)
            and isinstance(value[1], int))


def topological_order(prompt: Mapping[str, Mapping[str, Any]]) -> list[str]:
    order: list[str] = []
    state: dict[str, int] = {}

    def visit(node_id: str, stack: tuple[str, ...]) -> None:
        if state.get(node_id) == 2:
            return
        if state.get(node_id) == 1:
            raise WorkflowError(f"cycle through nodes {' -> '.join(stack + (node_id,))}")
        if node_id not in prompt:
            raise WorkflowError(f"link to missing node {node_id!r} from {stack[-1]!r}")
        state[node_id] = 1
        for value in prompt[node_id].get("inputs", {}).values():
            if _is_link(value):
                visit(value[0], stack + (node_id,))
        state[node_id] = 2
        order.append(node_id)

    for node_id in prompt:
        visit(node_id, ())
    return order


def _signature(prompt: Mapping[str, Mapping[str, Any]], node_id: str,
               mappings: Mapping[str, type], memo: dict[str, Any]) -> Any:
    if node_id in memo:
        return memo[node_id]
    spec = prompt[node_id]
    cls = mappings[spec["class_type"]]
    items = []
    widgets = {}
    for name, value in sorted(spec.get("inputs", {}).items()):
        if _is_link(value):
            items.append((name, "link", _signature(prompt, value[0], mappings, memo), value[1]))
        else:
            widgets[name] = value
            items.append((name, repr(value) if not isinstance(value, (str, int, float, bool,
                                                                      type(None)))
                          else value))
    changed = None
    if hasattr(cls, "IS_CHANGED"):
        changed = cls.IS_CHANGED(**widgets)
    memo[node_id] = (spec["class_type"], changed, tuple(items))
    return memo[node_id]


def run_workflow(prompt: Mapping[str, Mapping[str, Any]], mappings: Mapping[str, type],
                 cache: dict | None = None) -> dict[str, tuple]:
    """Execute ``prompt``; returns {node id: output tuple}. Checks link types like ComfyUI.
    ``cache``: see the module docstring."""
    outputs: dict[str, tuple] = {}
    memo: dict[str, Any] = {}
    for node_id in topological_order(prompt):
        if cache is not None:
            key = _signature(prompt, node_id, mappings, memo)
            if key in cache:
                outputs[node_id] = cache[key]
                continue
        spec = prompt[node_id]
        class_type = spec["class_type"]
        if class_type not in mappings:
            raise WorkflowError(f"node {node_id}: unknown class_type {class_type!r}")
        cls = mappings[class_type]
        declared = cls.INPUT_TYPES()
        known = {**declared.get("required", {}), **declared.get("optional", {})}
        kwargs: dict[str, Any] = {}
        for name, value in spec.get("inputs", {}).items():
            if name not in known:
                raise WorkflowError(f"node {node_id} ({class_type}): unknown input {name!r}")
            if _is_link(value):
                src_id, slot = value
                src_cls = mappings[prompt[src_id]["class_type"]]
                src_type = src_cls.RETURN_TYPES[slot]
                want = known[name][0]
                if isinstance(want, str) and want != "*" and src_type != "*" and src_type != want:
                    raise WorkflowError(f"node {node_id} ({class_type}) input {name!r} wants "
                                        f"{want}, but {src_id} slot {slot} gives {src_type}")
                value = outputs[src_id][slot]
            kwargs[name] = value
        for name, kind in declared.get("hidden", {}).items():  # as ComfyUI fills them
            if kind == "PROMPT":
                kwargs[name] = prompt
            elif kind == "UNIQUE_ID":
                kwargs[name] = node_id
        missing = [n for n in declared.get("required", {}) if n not in kwargs]
        if missing:
            raise WorkflowError(f"node {node_id} ({class_type}): missing inputs {missing}")
        result = getattr(cls(), cls.FUNCTION)(**kwargs)
        if isinstance(result, dict):
            result = tuple(result.get("result", ()))
        if not isinstance(result, tuple):
            raise WorkflowError(f"node {node_id} ({class_type}) returned "
                                f"{type(result).__name__}, not a tuple")
        if len(result) != len(cls.RETURN_TYPES):
            raise WorkflowError(f"node {node_id} ({class_type}) returned {len(result)} values "
                                f"for {len(cls.RETURN_TYPES)} outputs")
        outputs[node_id] = result
        if cache is not None:
            cache[key] = result
    return outputs
