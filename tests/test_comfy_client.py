"""scripts/comfy_client.py without a ComfyUI server: the UI graph -> API prompt converter on the
shipped workflows against a recorded ``/object_info`` subset, and the queue/poll/download loop
against a small loopback stand-in for ComfyUI's HTTP API.

``tests/data/comfy_object_info.json`` was written by ``comfy_client.py --record-object-info``
from ComfyUI a125cd84 (frontend 1.27.10) with this pack installed. The core nodes' entries
(LoadImage, LoadVideo, CreateVideo, SaveVideo...) are what this test cannot make without
ComfyUI; the pack's own entries are rebuilt from the node classes as ComfyUI's server does, so
a node that gains a widget needs no new recording.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from comfy_client import (
    ConversionError,
    bind_inputs,
    graph_to_prompt,
    main,
    output_nodes,
    reachable,
    widget_slots,
)
from workflow_format import node_defs_from_classes, ui_to_api

from dance_reenact.nodes import NODE_CLASS_MAPPINGS

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((ROOT / "workflows").glob("*.json"))
RECORDED = json.loads((Path(__file__).parent / "data" / "comfy_object_info.json").read_text())
# Combos whose options are the files on the server's disk: any name is a valid template value.
FILE_COMBOS = {("LoadImage", "image"), ("LoadVideo", "file")}


def pack_object_info() -> dict[str, dict[str, Any]]:
    """The pack's entries as ComfyUI's ``/object_info`` writes them (server.node_info)."""
    out = {}
    for name, cls in NODE_CLASS_MAPPINGS.items():
        inputs = json.loads(json.dumps(cls.INPUT_TYPES()))
        out[name] = {"input": inputs,
                     "input_order": {key: list(value) for key, value in inputs.items()},
                     "output": list(cls.RETURN_TYPES),
                     "output_name": list(getattr(cls, "RETURN_NAMES", cls.RETURN_TYPES)),
                     "output_node": bool(getattr(cls, "OUTPUT_NODE", False))}
    return out


@pytest.fixture(scope="module")
def object_info() -> dict[str, dict[str, Any]]:
    return {**RECORDED, **pack_object_info()}


def _input_specs(defn):
    for section in ("required", "optional"):
        for name, spec in (defn["input"].get(section) or {}).items():
            yield section, name, spec


def test_recording_has_every_core_node_the_workflows_use():
    used = {n["type"] for p in WORKFLOWS for n in json.loads(p.read_text())["nodes"]}
    core = {t for t in used if not t.startswith("DanceReenact")} - {"Note", "MarkdownNote"}
    assert core <= set(RECORDED), core - set(RECORDED)
    # The pack's rebuilt entries have the shape the server wrote.
    for name, entry in pack_object_info().items():
        if name in RECORDED:
            assert set(entry) <= set(RECORDED[name]), name
            assert set(entry["input_order"]) <= set(RECORDED[name]["input_order"]) | {"hidden"}


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.stem)
def test_shipped_workflow_converts_to_a_valid_prompt(path, object_info):
    ui = json.loads(path.read_text())
    prompt = graph_to_prompt(ui, object_info, strict=True)
    real = [n for n in ui["nodes"] if n["type"] not in ("Note", "MarkdownNote")]
    assert sorted(prompt, key=int) == sorted((str(n["id"]) for n in real), key=int)
    for nid, node in prompt.items():
        defn = object_info[node["class_type"]]
        for section, name, spec in _input_specs(defn):
            value = node["inputs"].get(name)
            if value is None:
                assert section == "optional", f"{path.stem} node {nid}: {name} missing"
                continue
            kind = spec[0]
            opts = spec[1] if len(spec) > 1 else {}
            if isinstance(value, list) and len(value) == 2 and isinstance(value[0], str):
                src = prompt[value[0]]
                out_type = object_info[src["class_type"]]["output"][value[1]]
                want = "COMBO" if isinstance(kind, list) else kind
                assert out_type == want or "*" in (out_type, want), (
                    f"{path.stem} node {nid}.{name}: {out_type} into {want}")
                continue
            if (node["class_type"], name) in FILE_COMBOS or name == "local_file":
                continue
            options = kind if isinstance(kind, list) else opts.get("options")
            if options is not None:
                assert value in options, f"{path.stem} node {nid}.{name}={value!r}"
            elif kind == "INT":
                assert isinstance(value, int) and not isinstance(value, bool)
                assert opts.get("min", value) <= value <= opts.get("max", value)
            elif kind == "FLOAT":
                assert isinstance(value, (int, float)) and not isinstance(value, bool)
                assert opts.get("min", value) <= value <= opts.get("max", value)
            elif kind == "BOOLEAN":
                assert isinstance(value, bool)
            elif kind == "STRING":
                assert isinstance(value, str)
    # Something is saved, and every saver is reached from the loaders.
    outs = output_nodes(prompt, object_info)
    assert outs, path.stem
    needed = reachable(prompt, outs)
    assert any(prompt[n]["class_type"] in ("LoadImage", "LoadVideo") for n in needed)


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.stem)
def test_converter_agrees_with_the_pack_builder(path, object_info):
    """The builder's own inverse (used by test_workflows.py) and the server-driven converter
    read the same inputs out of every shipped graph."""
    ui = json.loads(path.read_text())
    ours = graph_to_prompt(ui, object_info, strict=True)
    for spec in ours.values():
        spec.pop("_meta")
    assert ours == ui_to_api(ui, node_defs_from_classes(NODE_CLASS_MAPPINGS))


def test_shipped_placeholders_bind_and_unused_loaders_are_not_needed(object_info):
    ui = json.loads((ROOT / "workflows" / "background_swap.json").read_text())
    prompt = graph_to_prompt(ui, object_info, strict=True)
    missing = bind_inputs(prompt, {"target": "me.png", "driver": "dance.mp4",
                                   "background": "beach.png"})
    loaders = {spec["inputs"].get("image") or spec["inputs"].get("file")
               for spec in prompt.values() if spec["class_type"] in ("LoadImage", "LoadVideo")}
    assert {"me.png", "dance.mp4", "beach.png"} <= loaders
    assert set(missing) == {"background_video"}
    needed = reachable(prompt, output_nodes(prompt, object_info))
    assert not set(missing["background_video"]) & needed  # the video background is optional


# --------------------------------------------------------------------------------------------
# The editor's graph features our workflows do not use yet
# --------------------------------------------------------------------------------------------

DEFS = {
    "Src": {"input": {"required": {"seed": ["INT", {}], "mode": [["a", "b"], {}]}},
            "input_order": {"required": ["seed", "mode"]},
            "output": ["IMAGE"], "output_name": ["IMAGE"]},
    "Filter": {"input": {"required": {"model": ["MODEL", {}], "image": ["IMAGE", {}],
                                      "strength": ["FLOAT", {}]},
                         "optional": {"name": ["STRING", {"forceInput": True}]}},
               "input_order": {"required": ["model", "image", "strength"],
                               "optional": ["name"]},
               "output": ["IMAGE"], "output_name": ["IMAGE"]},
    "Load": {"input": {"required": {"file": ["COMBO", {"options": [], "video_upload": True}],
                                    "n": ["INT", {"control_after_generate": True}]}},
             "input_order": {"required": ["file", "n"]},
             "output": ["IMAGE"], "output_name": ["IMAGE"]},
    "Save": {"input": {"required": {"images": ["IMAGE", {}], "prefix": ["STRING", {}]}},
             "input_order": {"required": ["images", "prefix"]},
             "output": [], "output_name": [], "output_node": True},
}


def _node(nid, kind, widgets, inputs=(), mode=0, outputs=()):
    return {"id": nid, "type": kind, "mode": mode, "widgets_values": widgets,
            "inputs": [{"name": n, "type": t, "link": link} for n, t, link in inputs],
            "outputs": [{"name": t, "type": t, "links": []} for t in outputs]}


def test_editor_only_widgets_reroutes_bypass_mute_and_primitives():
    graph = {"nodes": [
        _node(1, "Src", [7, "randomize", "b"], outputs=["IMAGE"]),  # seed + its control widget
        _node(2, "Reroute", [], [("", "*", 1)], outputs=["IMAGE"]),
        _node(3, "Filter", [0.5], [("image", "IMAGE", 2)], mode=4, outputs=["IMAGE"]),
        _node(4, "Save", ["out/x"], [("images", "IMAGE", 3), ("prefix", "STRING", 4)]),
        _node(5, "PrimitiveNode", ["ignored"], outputs=["STRING"]),
        _node(6, "Load", ["clip.mp4", "image", 3, "fixed"], outputs=["IMAGE"]),
        _node(7, "Save", ["muted"], [("images", "IMAGE", 5)], mode=2),
        _node(8, "Note", ["text"]),
    ], "links": [[1, 1, 0, 2, 0, "IMAGE"],
                 {"id": 2, "origin_id": 2, "origin_slot": 0, "target_id": 3, "target_slot": 1,
                  "type": "IMAGE"},
                 [3, 3, 0, 4, 0, "IMAGE"], [4, 5, 0, 4, 1, "STRING"],
                 [5, 6, 0, 7, 0, "IMAGE"]]}
    # Reroute 2 takes link 1; Filter 3's input is link 2 (object form).
    prompt = graph_to_prompt(graph, DEFS, strict=True)
    assert set(prompt) == {"1", "4", "6"}
    assert prompt["1"]["inputs"] == {"seed": 7, "mode": "b"}
    # Bypassed Filter passes its IMAGE input through, the Reroute disappears, the Primitive's
    # value is the widget's.
    assert prompt["4"]["inputs"] == {"images": ["1", 0], "prefix": "out/x"}
    assert prompt["6"]["inputs"] == {"file": "clip.mp4", "n": 3}
    assert widget_slots(DEFS["Load"]) == ["file", None, "n", None]


def test_widget_count_mismatch_and_unknown_types():
    graph = {"nodes": [_node(1, "Src", [7, "b"])], "links": []}
    with pytest.raises(ConversionError, match="2 widget values for 3 widgets"):
        graph_to_prompt(graph, DEFS, strict=True)
    # The editor matches by position: seed=7, control="b" (not sent), mode left out.
    assert graph_to_prompt(graph, DEFS)["1"]["inputs"] == {"seed": 7}
    with pytest.raises(ConversionError, match="no node type 'Nope'"):
        graph_to_prompt({"nodes": [_node(1, "Nope", [])], "links": []}, DEFS)
    named = {"nodes": [_node(1, "Src", {"seed": 3, "mode": "a", "other": 1})], "links": []}
    assert graph_to_prompt(named, DEFS)["1"]["inputs"] == {"seed": 3, "mode": "a"}


# --------------------------------------------------------------------------------------------
# The HTTP loop against a loopback stand-in for ComfyUI
# --------------------------------------------------------------------------------------------

class FakeComfy:
    """/object_info, /upload/image, /prompt, /history, /view and /interrupt, in memory."""

    def __init__(self, object_info, fail_node=None, refuse=False):
        self.object_info = object_info
        self.uploads: dict[str, bytes] = {}
        self.prompts: list[dict] = []
        self.fail_node = fail_node
        self.refuse = refuse
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, code, payload, ctype="application/json"):
                body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                if self.path == "/object_info":
                    return self._send(200, fake.object_info)
                if self.path.startswith("/history/"):
                    pid = self.path.rsplit("/", 1)[1]
                    return self._send(200, fake.history(pid))
                if self.path.startswith("/view?"):
                    return self._send(200, b"VIDEO" + self.path.encode(), "video/mp4")
                return self._send(404, {"error": "no route"})

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.path == "/upload/image":
                    name = body.split(b'filename="')[1].split(b'"')[0].decode()
                    fake.uploads[name] = body
                    return self._send(200, {"name": name, "subfolder": "", "type": "input"})
                if self.path == "/prompt":
                    if fake.refuse:
                        return self._send(400, {
                            "error": {"type": "prompt_outputs_failed_validation",
                                      "message": "Prompt outputs failed validation",
                                      "details": ""},
                            "node_errors": {"9": {"class_type": "DanceReenactP2BLoader",
                                                  "errors": [{"message": "Value not in list",
                                                              "details": "local_file"}]}}})
                    fake.prompts.append(json.loads(body))
                    return self._send(200, {"prompt_id": f"p{len(fake.prompts)}",
                                            "number": 0, "node_errors": {}})
                if self.path == "/interrupt":
                    return self._send(200, {})
                return self._send(404, {"error": "no route"})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def history(self, pid):
        prompt = self.prompts[int(pid[1:]) - 1]["prompt"]
        if self.fail_node:
            return {pid: {"outputs": {}, "status": {
                "status_str": "error", "completed": False, "messages": [
                    ["execution_error", {"node_id": self.fail_node, "node_type": "X",
                                         "exception_type": "NodeInputError",
                                         "exception_message": "no face was found"}]]}}}
        outputs = {nid: {"images": [{"filename": f"{nid}.mp4", "subfolder": "dance_reenact",
                                     "type": "output"}], "animated": [True]}
                   for nid, spec in prompt.items() if spec["class_type"] == "SaveVideo"}
        outputs.update({nid: {"text": [f"report of {nid}"]} for nid, spec in prompt.items()
                        if spec["class_type"] == "PreviewAny"})
        return {pid: {"outputs": outputs, "status": {"status_str": "success",
                                                      "completed": True, "messages": []}}}

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def inputs(tmp_path):
    target = tmp_path / "me.png"
    target.write_bytes(b"PNG")
    driver = tmp_path / "dance.mp4"
    driver.write_bytes(b"MP4")
    return target, driver


def _ids(name: str, class_type: str) -> list[str]:
    ui = json.loads((ROOT / "workflows" / f"{name}.json").read_text())
    return [str(n["id"]) for n in ui["nodes"] if n["type"] == class_type]


def test_client_uploads_queues_polls_and_downloads(object_info, inputs, tmp_path):
    target, driver = inputs
    out = tmp_path / "runs"
    (save,) = _ids("offline_weightless", "SaveVideo")
    (photo,) = _ids("offline_weightless", "LoadImage")
    (video,) = _ids("offline_weightless", "LoadVideo")
    with FakeComfy(object_info) as fake:
        code = main(["--server", fake.url, "--only", "offline_weightless,preprocessing",
                     "--target", str(target), "--driver", str(driver), "--out", str(out),
                     "--poll", "0.01", "--set", f"{save}.filename_prefix=mine/out"])
    assert code == 0
    assert set(fake.uploads) == {"me.png", "dance.mp4"}
    offline = next(p["prompt"] for p in fake.prompts
                   if p["prompt"].get(save, {}).get("inputs", {}).get("filename_prefix")
                   == "mine/out")
    assert offline[photo]["inputs"]["image"] == "me.png"
    assert offline[video]["inputs"]["file"] == "dance.mp4"
    summary = json.loads((out / "summary.json").read_text())
    assert [s["status"] for s in summary] == ["success", "success"]
    assert (out / "offline_weightless" / "dance_reenact" / f"{save}.mp4").read_bytes(
        ).startswith(f"VIDEO/view?filename={save}.mp4".encode())
    previews = _ids("offline_weightless", "PreviewAny")
    assert len(summary[0]["reports"]) == len(previews)
    assert all(text.startswith("report of ") for text in summary[0]["reports"].values())
    # preprocessing: one downloaded file per Save Video node
    assert len(summary[1]["files"]) == len(_ids("preprocessing", "SaveVideo"))


def test_client_reports_refusals_and_execution_errors(object_info, inputs, tmp_path):
    target, driver = inputs
    with FakeComfy(object_info, refuse=True) as fake:
        code = main(["--server", fake.url, "--only", "full_method", "--target", str(target),
                     "--driver", str(driver), "--out", str(tmp_path / "a")])
    assert code == 1
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert summary[0]["status"] == "refused"
    assert "node 9 (DanceReenactP2BLoader): Value not in list: local_file" in summary[0]["error"]
    with FakeComfy(object_info, fail_node="19") as fake:  # any node id: the text is passed on
        code = main(["--server", fake.url, "--only", "offline_weightless", "--poll", "0.01",
                     "--target", str(target), "--driver", str(driver),
                     "--out", str(tmp_path / "b")])
    assert code == 1
    summary = json.loads((tmp_path / "b" / "summary.json").read_text())
    assert summary[0]["status"] == "error"
    assert summary[0]["error"] == "X (node 19): NodeInputError: no face was found"


def test_client_skips_a_workflow_without_its_inputs(object_info, inputs, tmp_path):
    target, driver = inputs
    with FakeComfy(object_info) as fake:
        code = main(["--server", fake.url, "--only", "target_video,background_swap",
                     "--skip-incomplete", "--target", str(target), "--driver", str(driver),
                     "--out", str(tmp_path)])
    assert code == 0 and not fake.prompts
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert {s["workflow"]: s["needs"] for s in summary} == {
        "background_swap": ["background"], "target_video": ["target_video"]}


def test_dry_run_with_a_bypassed_face_refine(object_info, tmp_path, capsys):
    info = tmp_path / "object_info.json"
    info.write_text(json.dumps(object_info))
    assert main(["--object-info", str(info), "--dry-run", "--only", "offline_weightless",
                 "--bypass", "DanceReenactFaceRefine", "--target", "me.png"]) == 0
    prompt = json.loads(capsys.readouterr().out)["offline_weightless"]
    (refine,) = _ids("offline_weightless", "DanceReenactFaceRefine")
    (blend,) = _ids("offline_weightless", "DanceReenactMaskBlend")
    (create,) = _ids("offline_weightless", "CreateVideo")
    (photo,) = _ids("offline_weightless", "LoadImage")
    assert refine not in prompt  # its frames input goes straight on to Create Video
    assert prompt[create]["inputs"]["images"] == [blend, 0]
    assert prompt[photo]["inputs"]["image"] == "me.png"


def test_client_stops_when_the_server_goes_away(object_info, inputs, tmp_path):
    target, driver = inputs
    with FakeComfy(object_info) as fake:
        url = fake.url
    code = main(["--server", url, "--object-info", str(_saved(object_info, tmp_path)),
                 "--only", "preprocessing", "--driver", str(driver), "--out", str(tmp_path)])
    assert code == 1  # the upload already fails: nothing listens any more


def _saved(object_info, tmp_path):
    path = tmp_path / "object_info.json"
    path.write_text(json.dumps(object_info))
    return path


def test_command_line_exits_record_missing_files_and_unknown_types(object_info, tmp_path,
                                                                    capsys):
    """The exits before anything is queued: each says why on stderr, with its status."""
    saved = str(_saved(object_info, tmp_path))
    record = tmp_path / "recorded.json"
    assert main(["--object-info", saved, "--only", "preprocessing",
                 "--record-object-info", str(record)]) == 0
    used = sorted({n["type"] for n in json.loads(
        (ROOT / "workflows" / "preprocessing.json").read_text())["nodes"]}
        - {"Note", "MarkdownNote", "Reroute", "PrimitiveNode"})
    assert sorted(json.loads(record.read_text())) == used
    assert capsys.readouterr().out == f"wrote {len(used)} node definitions to {record}\n"

    lacking = tmp_path / "lacking.json"
    lacking.write_text(json.dumps({k: v for k, v in object_info.items() if k != "LoadVideo"}))
    assert main(["--object-info", str(lacking), "--only", "preprocessing",
                 "--record-object-info", str(record)]) == 1
    assert capsys.readouterr().err == "error: the server lacks ['LoadVideo']\n"
    assert main(["--object-info", str(lacking), "--only", "preprocessing", "--dry-run"]) == 1
    assert capsys.readouterr().err.startswith(
        "error: preprocessing: node 1: the server has no node type 'LoadVideo'")

    assert main(["--object-info", saved, "--only", "preprocessing", "--out", str(tmp_path),
                 "--driver", str(tmp_path / "absent.mp4")]) == 2
    assert capsys.readouterr().err == f"error: --driver {tmp_path / 'absent.mp4'}: no such file\n"
    assert main(["--server", "http://127.0.0.1:9", "--only", "preprocessing"]) == 1
    assert capsys.readouterr().err.startswith("error: cannot reach ComfyUI at http://127.0.0.1:9")
    assert not (tmp_path / "summary.json").exists()
