"""Convert between ComfyUI's API prompt format and the UI graph format its editor saves.

The shipped workflows (``workflows/*.json``) are UI graphs, made by ``build_workflows.py`` from
API-format definitions; tests turn them back into API prompts with :func:`ui_to_api` and run
them. Widget order follows each node's INPUT_TYPES (required, then optional), as the editor does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}
NOTE_TYPES = {"Note", "MarkdownNote"}

# The core nodes our workflows use (checked against ComfyUI's comfy_extras/nodes_video.py,
# comfy_extras/nodes_mask.py and nodes.py). "upload" marks the editor's extra upload widget.
CORE_NODE_DEFS: dict[str, dict[str, Any]] = {
    "LoadImage": {"input": {"required": {"image": (["example.png"], {"image_upload": True})}},
                  "output": ("IMAGE", "MASK"), "output_name": ("IMAGE", "MASK")},
    "LoadVideo": {"input": {"required": {"file": (["example.mp4"], {"video_upload": True})}},
                  "output": ("VIDEO",), "output_name": ("VIDEO",)},
    "GetVideoComponents": {"input": {"required": {"video": ("VIDEO", {})}},
                           "output": ("IMAGE", "AUDIO", "FLOAT"),
                           "output_name": ("images", "audio", "fps")},
    "CreateVideo": {"input": {"required": {"images": ("IMAGE", {}),
                                           "fps": ("FLOAT", {"default": 30.0})},
                              "optional": {"audio": ("AUDIO", {})}},
                    "output": ("VIDEO",), "output_name": ("VIDEO",)},
    "SaveVideo": {"input": {"required": {"video": ("VIDEO", {}),
                                         "filename_prefix": ("STRING", {}),
                                         "format": (["auto", "mp4"], {}),
                                         "codec": (["auto", "h264"], {})}},
                  "output": (), "output_name": ()},
    "SaveImage": {"input": {"required": {"images": ("IMAGE", {}),
                                         "filename_prefix": ("STRING", {})}},
                  "output": (), "output_name": ()},
    "MaskToImage": {"input": {"required": {"mask": ("MASK", {})}},
                    "output": ("IMAGE",), "output_name": ("IMAGE",)},
    "PreviewImage": {"input": {"required": {"images": ("IMAGE", {})}},
                     "output": (), "output_name": ()},
    # comfy_extras/nodes_preview_any.py: shows any value (our report STRINGs) as text
    "PreviewAny": {"input": {"required": {"source": ("*", {})}},
                   "output": (), "output_name": ()},
}


def node_defs_from_classes(mappings: Mapping[str, type]) -> dict[str, dict[str, Any]]:
    """Node definitions (input types, outputs) of node classes, plus the core nodes."""
    defs = dict(CORE_NODE_DEFS)
    for key, cls in mappings.items():
        defs[key] = {"input": cls.INPUT_TYPES(), "output": tuple(cls.RETURN_TYPES),
                     "output_name": tuple(getattr(cls, "RETURN_NAMES", cls.RETURN_TYPES))}
    return defs


def _inputs(defn: Mapping[str, Any]) -> list[tuple[str, Any, dict]]:
    out = []
    for section in ("required", "optional"):
        for name, spec in defn["input"].get(section, {}).items():
            kind = spec[0]
            opts = spec[1] if len(spec) > 1 else {}
            out.append((name, kind, opts))
    return out


def _is_widget(kind: Any) -> bool:
    return isinstance(kind, list) or kind in WIDGET_TYPES


def widget_slots(defn: Mapping[str, Any]) -> list[str | None]:
    """Widget names in editor order; None marks the editor-only upload widget."""
    slots: list[str | None] = []
    for name, kind, opts in _inputs(defn):
        if _is_widget(kind):
            slots.append(name)
            if opts.get("image_upload") or opts.get("video_upload"):
                slots.append(None)
    return slots


def api_to_ui(api: Mapping[str, Mapping[str, Any]], defs: Mapping[str, Mapping[str, Any]], *,
              positions: Mapping[str, tuple[float, float]] | None = None,
              titles: Mapping[str, str] | None = None,
              notes: list[tuple[str, tuple[float, float]]] = ()) -> dict[str, Any]:
    """Build a UI graph from an API prompt (node ids must be integers as strings)."""
    positions = positions or {}
    titles = titles or {}
    links: list[list[Any]] = []
    nodes: list[dict[str, Any]] = []
    out_links: dict[tuple[int, int], list[int]] = {}
    for order, (nid, spec) in enumerate(api.items()):
        defn = defs[spec["class_type"]]
        ui_inputs = []
        for name, kind, _ in _inputs(defn):
            value = spec["inputs"].get(name)
            linked = isinstance(value, list) and len(value) == 2 and isinstance(value[0], str)
            if _is_widget(kind) and not linked:
                continue
            entry: dict[str, Any] = {"name": name, "type": kind if isinstance(kind, str)
                                     else "COMBO", "link": None}
            if _is_widget(kind):
                entry["widget"] = {"name": name}
            if linked:
                link_id = len(links) + 1
                src, slot = int(value[0]), int(value[1])
                src_type = defs[api[value[0]]["class_type"]]["output"][slot]
                links.append([link_id, src, slot, int(nid), len(ui_inputs), src_type])
                out_links.setdefault((src, slot), []).append(link_id)
                entry["link"] = link_id
            ui_inputs.append(entry)
        widgets = []
        for slot in widget_slots(defn):
            if slot is None:
                widgets.append("image")
                continue
            value = spec["inputs"].get(slot)
            if isinstance(value, list) and len(value) == 2 and isinstance(value[0], str):
                value = None  # linked widget: the editor keeps a placeholder value
            widgets.append(value)
        node = {"id": int(nid), "type": spec["class_type"],
                "pos": list(positions.get(nid, (300.0 * order, 100.0))), "size": [300, 120],
                "flags": {}, "order": order, "mode": 0, "inputs": ui_inputs, "outputs": [],
                "properties": {"Node name for S&R": spec["class_type"]},
                "widgets_values": widgets}
        if nid in titles:
            node["title"] = titles[nid]
        nodes.append(node)
    for node in nodes:
        defn = defs[node["type"]]
        node["outputs"] = [{"name": name, "type": typ,
                            "links": out_links.get((node["id"], i), []), "slot_index": i}
                           for i, (typ, name) in enumerate(zip(defn["output"],
                                                               defn["output_name"]))]
    next_id = max((n["id"] for n in nodes), default=0) + 1
    for text, pos in notes:
        nodes.append({"id": next_id, "type": "Note", "pos": list(pos), "size": [420, 160],
                      "flags": {}, "order": len(nodes), "mode": 0, "inputs": [],
                      "outputs": [], "properties": {}, "widgets_values": [text],
                      "color": "#432", "bgcolor": "#653"})
        next_id += 1
    return {"last_node_id": next_id - 1, "last_link_id": len(links), "nodes": nodes,
            "links": links, "groups": [], "config": {},
            "extra": {"ds": {"scale": 0.8, "offset": [0, 0]}}, "version": 0.4}


def ui_to_api(ui: Mapping[str, Any], defs: Mapping[str, Mapping[str, Any]],
              ) -> dict[str, dict[str, Any]]:
    """The API prompt for a UI graph (notes and bypassed/muted nodes are dropped)."""
    links = {link[0]: link for link in ui["links"]}
    api: dict[str, dict[str, Any]] = {}
    for node in ui["nodes"]:
        if node["type"] in NOTE_TYPES or node.get("mode", 0) != 0:
            continue
        defn = defs.get(node["type"])
        if defn is None:
            raise KeyError(f"node {node['id']}: unknown type {node['type']!r}")
        inputs: dict[str, Any] = {}
        values = list(node.get("widgets_values") or [])
        slots = widget_slots(defn)
        if len(values) != len(slots):
            raise ValueError(f"node {node['id']} ({node['type']}): {len(values)} widget values "
                             f"for {len(slots)} widgets")
        for slot, value in zip(slots, values):
            if slot is not None:
                inputs[slot] = value
        for entry in node.get("inputs", []):
            if entry.get("link") is not None:
                _, src, slot, _, _, _ = links[entry["link"]]
                inputs[entry["name"]] = [str(src), int(slot)]
        api[str(node["id"])] = {"class_type": node["type"], "inputs": inputs}
    return api
