"""tests/executor.py itself: the order it runs nodes in (ComfyUI's, with ``order="comfy"``), the
inputs it passes, its cache and its errors, pinned on a graph of a few stand-in nodes."""

from __future__ import annotations

import pytest
from executor import WorkflowError, comfy_order, run_workflow, topological_order


class Num:
    RETURN_TYPES = ("INT",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"value": ("INT", {})}}

    def run(self, value):
        return (value,)


class Add:
    RETURN_TYPES = ("INT",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"a": ("INT", {}), "b": ("INT", {})},
                "optional": {"c": ("INT", {})}}

    def run(self, a, b, c=0):
        return (a + b + c,)


class Show:
    RETURN_TYPES = ()
    FUNCTION = "run"
    OUTPUT_NODE = True
    calls: list = []

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"x": ("INT", {})},
                "hidden": {"prompt": "PROMPT", "uid": "UNIQUE_ID"}}

    def run(self, x, prompt, uid):
        Show.calls.append((uid, x, len(prompt)))
        return {"ui": {}, "result": ()}


class Text:
    RETURN_TYPES = ("STRING",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {}}

    def run(self):
        return ("text",)


class Listed(Text):
    def run(self):
        return ["not a tuple"]


class Pair:
    RETURN_TYPES = ("INT",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {}}

    def run(self):
        return (1, 2)


MAPPINGS = {"Num": Num, "Add": Add, "Show": Show, "Text": Text, "Listed": Listed,
            "Pair": Pair}


def graph():
    """1, 2 -> 3 -> show 4; 5 -> 6 (+3) -> show 7; 8 -> show 9."""
    return {
        "1": {"class_type": "Num", "inputs": {"value": 1}},
        "2": {"class_type": "Num", "inputs": {"value": 2}},
        "3": {"class_type": "Add", "inputs": {"a": ["1", 0], "b": ["2", 0]}},
        "4": {"class_type": "Show", "inputs": {"x": ["3", 0]}},
        "5": {"class_type": "Num", "inputs": {"value": 10}},
        "6": {"class_type": "Add", "inputs": {"a": ["5", 0], "b": ["3", 0], "c": 100}},
        "7": {"class_type": "Show", "inputs": {"x": ["6", 0]}},
        "8": {"class_type": "Num", "inputs": {"value": 7}},
        "9": {"class_type": "Show", "inputs": {"x": ["8", 0]}},
    }


def test_comfy_order_and_topological_order_are_pinned():
    g = graph()
    assert topological_order(g) == ["1", "2", "3", "4", "5", "6", "7", "8", "9"]
    assert comfy_order(g, MAPPINGS) == ["8", "9", "2", "1", "3", "4", "5", "6", "7"]
    assert comfy_order(g, MAPPINGS, ["7", "9", "4"]) == ["8", "9", "2", "1", "3", "4", "5",
                                                         "6", "7"]
    assert comfy_order(g, MAPPINGS, ["7"]) == ["5", "2", "1", "3", "6", "7"]
    g["1"]["inputs"]["value"] = ["6", 0]
    with pytest.raises(WorkflowError, match="cycle in the graph"):
        comfy_order(g, MAPPINGS)


def test_run_workflow_values_hidden_inputs_trace_and_cache():
    Show.calls.clear()
    trace: list[str] = []
    out = run_workflow(graph(), MAPPINGS, order="comfy", trace=trace)
    assert trace == ["8", "9", "2", "1", "3", "4", "5", "6", "7"]
    assert out == {"1": (1,), "2": (2,), "3": (3,), "4": (), "5": (10,), "6": (113,),
                   "7": (), "8": (7,), "9": ()}
    assert Show.calls == [("9", 7, 9), ("4", 3, 9), ("7", 113, 9)]
    cache: dict = {}
    run_workflow(graph(), MAPPINGS, cache)
    changed = graph()
    changed["5"]["inputs"]["value"] = 20
    Show.calls.clear()
    trace.clear()
    out = run_workflow(changed, MAPPINGS, cache, trace=trace)
    assert trace == ["1", "2", "3", "4", "5", "6", "7", "8", "9"]
    assert Show.calls == [("7", 123, 9)]  # only what the new value reaches runs again
    assert out["6"] == (123,) and out["3"] == (3,)


@pytest.mark.parametrize("change, message", [
    (lambda g: g["3"].update(class_type="Nope"), "node 3: unknown class_type 'Nope'"),
    (lambda g: g["3"]["inputs"].update(d=1), r"node 3 \(Add\): unknown input 'd'"),
    (lambda g: g["3"]["inputs"].update(a=["10", 0]),
     r"node 3 \(Add\) input 'a' wants INT, but 10 slot 0 gives STRING"),
    (lambda g: g["3"]["inputs"].pop("b"), r"node 3 \(Add\): missing inputs \['b'\]"),
    (lambda g: g.update({"11": {"class_type": "Listed", "inputs": {}}}),
     r"node 11 \(Listed\) returned list, not a tuple"),
    (lambda g: g["2"].update(class_type="Pair", inputs={}),
     r"node 2 \(Pair\) returned 2 values for 1 outputs"),
])
def test_run_workflow_errors(change, message):
    g = graph()
    g["10"] = {"class_type": "Text", "inputs": {}}
    change(g)
    with pytest.raises(WorkflowError, match=message):
        run_workflow(g, MAPPINGS)
