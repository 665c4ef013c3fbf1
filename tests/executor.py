"""A small test-only executor for API-format workflows (ComfyUI stays the engine for users).

``run_workflow(prompt, mappings)`` runs ``{"id": {"class_type": ..., "inputs": {name: value |
["id", slot]}}}`` in dependency order through node classes, the way ComfyUI calls them:
``getattr(cls(), cls.FUNCTION)(**inputs)`` (hidden ``PROMPT`` / ``UNIQUE_ID`` inputs get the
prompt and the node id) returning a tuple (or a ``{"result": tuple}`` dict
for output nodes). Returns every node's outputs by id.

``order="comfy"`` runs the nodes in the order ComfyUI's executor picks them (see
:func:`comfy_order`), ``trace`` (a list) receives the ids of the nodes as they run.

With ``cache`` (a dict kept between runs) a node is re-run only when its input signature
changes, as ComfyUI's cache does: the class, its widget values, ``IS_CHANGED`` when the class
defines it, and the signatures of the nodes its links come from.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
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


def _is_output(cls: type) -> bool:
    return getattr(cls, "OUTPUT_NODE", False) is True


@dataclass
class _ExecutionList:
    """ComfyUI's ``ExecutionList`` without the cache: the nodes still to run
    (``pending``, in the order ``add_node`` met them), how many unfinished inputs each waits
    for (``block_count``) and which nodes each one blocks (``blocking``, in insertion order)."""

    pending: dict[str, bool] = field(default_factory=dict)
    block_count: dict[str, int] = field(default_factory=dict)
    blocking: dict[str, dict[str, bool]] = field(default_factory=dict)

    def add_node(self, prompt: Mapping[str, Mapping[str, Any]], start: str) -> None:
        """``ExecutionList.add_node``: walk ``start``'s inputs depth-first into ``pending``,
        then record who blocks whom (each source added before its link is counted)."""
        stack, links = [start], []
        while stack:
            uid = stack.pop()
            if uid in self.pending:
                continue
            self.pending[uid] = True
            self.block_count[uid] = 0
            self.blocking[uid] = {}
            for value in prompt[uid].get("inputs", {}).values():
                if _is_link(value):
                    stack.append(value[0])
                    links.append((value[0], uid))
        for src, dst in links:
            self.add_node(prompt, src)
            if dst not in self.blocking[src]:
                self.blocking[src][dst] = True
                self.block_count[dst] += 1

    def ready(self) -> list[str]:
        """The pending nodes whose inputs have all run, in ``pending``'s order."""
        return [uid for uid in self.pending if self.block_count[uid] == 0]

    def done(self, uid: str) -> None:
        """``uid`` ran: it leaves ``pending`` and stops blocking the nodes it feeds."""
        del self.pending[uid]
        for b in self.blocking.pop(uid):
            self.block_count[b] -= 1


def _ux_friendly_pick(ready: list[str], blocking: Mapping[str, Mapping[str, bool]],
                      is_out: Callable[[str], bool]) -> str:
    """``ux_friendly_pick_node``: among ``ready``, an output node first, else one that directly
    blocks an output, else one two links from an output, else the first."""
    for uid in ready:
        if is_out(uid):
            return uid
    for uid in ready:
        if any(is_out(b) for b in blocking[uid]):
            return uid
    for uid in ready:
        if any(is_out(b1) for b in blocking[uid] for b1 in blocking[b]):
            return uid
    return ready[0]


def comfy_order(prompt: Mapping[str, Mapping[str, Any]], mappings: Mapping[str, type],
                outputs: list[str] | None = None) -> list[str]:
    """The order ComfyUI executes ``prompt`` in (no cache), as Comfy-Org/ComfyUI does it:
    ``execution.py`` adds each output node (a *set* of ids from ``validate_prompt``: any order,
    pass ``outputs`` to choose one) with ``ExecutionList.add_node``, which walks its inputs
    depth-first into ``pendingNodes``; then ``stage_node_execution`` repeatedly picks among the
    ready nodes with ``ux_friendly_pick_node``: an output node first, else a node that directly
    blocks an output node, else one two links from an output, else the first ready node."""

    def is_out(uid: str) -> bool:
        return _is_output(mappings[prompt[uid]["class_type"]])

    if outputs is None:
        outputs = [n for n in prompt if is_out(n)]
    todo = _ExecutionList()
    for out in outputs:
        todo.add_node(prompt, out)
    order = []
    while todo.pending:
        ready = todo.ready()
        if not ready:
            raise WorkflowError("cycle in the graph")
        uid = _ux_friendly_pick(ready, todo.blocking, is_out)
        order.append(uid)
        todo.done(uid)
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


def _node_kwargs(prompt: Mapping[str, Mapping[str, Any]], node_id: str, cls: type,
                 mappings: Mapping[str, type], outputs: Mapping[str, tuple]) -> dict[str, Any]:
    """The keyword arguments ComfyUI calls ``node_id``'s function with: its widget values, its
    links' values (type-checked like ComfyUI) and the hidden ``PROMPT``/``UNIQUE_ID`` inputs.

    Raises:
        WorkflowError: an undeclared input, a link of the wrong type, a required input missing.
    """
    class_type = prompt[node_id]["class_type"]
    declared = cls.INPUT_TYPES()
    known = {**declared.get("required", {}), **declared.get("optional", {})}
    kwargs: dict[str, Any] = {}
    for name, value in prompt[node_id].get("inputs", {}).items():
        if name not in known:
            raise WorkflowError(f"node {node_id} ({class_type}): unknown input {name!r}")
        if _is_link(value):
            src_id, slot = value
            src_type = mappings[prompt[src_id]["class_type"]].RETURN_TYPES[slot]
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
    return kwargs


def _output_tuple(result: Any, node_id: str, class_type: str, cls: type) -> tuple:
    """A node's return value as its output tuple (an output node's ``{"result": ...}``
    unwrapped), checked against ``RETURN_TYPES``.

    Raises:
        WorkflowError: not a tuple, or not one value per declared output.
    """
    if isinstance(result, dict):
        result = tuple(result.get("result", ()))
    if not isinstance(result, tuple):
        raise WorkflowError(f"node {node_id} ({class_type}) returned "
                            f"{type(result).__name__}, not a tuple")
    if len(result) != len(cls.RETURN_TYPES):
        raise WorkflowError(f"node {node_id} ({class_type}) returned {len(result)} values "
                            f"for {len(cls.RETURN_TYPES)} outputs")
    return result


def run_workflow(prompt: Mapping[str, Mapping[str, Any]], mappings: Mapping[str, type],
                 cache: dict | None = None, *, order: str = "topological",
                 trace: list | None = None) -> dict[str, tuple]:
    """Execute ``prompt``; returns {node id: output tuple}. Checks link types like ComfyUI.
    ``cache``, ``order``, ``trace``: see the module docstring."""
    outputs: dict[str, tuple] = {}
    memo: dict[str, Any] = {}
    sequence = comfy_order(prompt, mappings) if order == "comfy" else topological_order(prompt)
    for node_id in sequence:
        if trace is not None:
            trace.append(node_id)
        if cache is not None:
            key = _signature(prompt, node_id, mappings, memo)
            if key in cache:
                outputs[node_id] = cache[key]
                continue
        class_type = prompt[node_id]["class_type"]
        if class_type not in mappings:
            raise WorkflowError(f"node {node_id}: unknown class_type {class_type!r}")
        cls = mappings[class_type]
        kwargs = _node_kwargs(prompt, node_id, cls, mappings, outputs)
        result = getattr(cls(), cls.FUNCTION)(**kwargs)
        outputs[node_id] = _output_tuple(result, node_id, class_type, cls)
        if cache is not None:
            cache[key] = outputs[node_id]
    return outputs
