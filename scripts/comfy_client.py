"""Run the pack's shipped workflows on a running ComfyUI server, as an artist's queue would.

    python scripts/comfy_client.py --server http://127.0.0.1:8188 \\
        --target photo.png --driver dance.mp4 [--background bg.png] [--background-video bg.mp4] \\
        [--target-video person.mp4] [--only offline_weightless,preprocessing] \\
        [--bypass DanceReenactFaceRefine] [--set 21.filename_prefix=me/take1] --out runs/

For each workflow (``workflows/*.json``: UI graphs as ComfyUI's editor saves them) it

1. turns the graph into an API prompt the way the editor's ``graphToPrompt`` does, with the
   widget names and order read from the server's ``/object_info`` (:func:`graph_to_prompt`);
2. uploads the inputs through ``/upload/image`` and puts their names into the loaders whose
   shipped placeholder names them (``target.png``, ``driver.mp4``, ``background.png``,
   ``background.mp4``, ``target.mp4``);
3. POSTs the prompt to ``/prompt``, polls ``/history/<id>`` and downloads every output file
   (``/view``) into ``OUT/<workflow>/``; ``OUT/summary.json`` lists status, seconds, the error
   text of a failed run, the files and the text reports (Preview Any nodes).

It installs and builds nothing: ComfyUI must already run with the pack in ``custom_nodes/``.
Standard library only. ``--dry-run`` prints the prompts without queueing; ``--object-info FILE``
converts offline against a saved ``/object_info``; ``--record-object-info FILE`` saves the
server's definitions of the node types the workflows use (the unit test's recording).
Exit status: 0 when every queued workflow succeeded, 1 otherwise, 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import http.client
import json
import mimetypes
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / "workflows"

WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}
UPLOAD_OPTIONS = ("image_upload", "video_upload", "audio_upload", "animated_image_upload")
# Frontend-only nodes: never sent to the server.
VIRTUAL_TYPES = {"Note", "MarkdownNote", "Reroute", "PrimitiveNode"}
MODE_ALWAYS, MODE_NEVER, MODE_BYPASS = 0, 2, 4

# The file names the shipped workflows' loaders carry, and the command-line input for each.
PLACEHOLDERS = {
    "target.png": "target",
    "driver.mp4": "driver",
    "background.png": "background",
    "background.mp4": "background_video",
    "target.mp4": "target_video",
}
LOADER_WIDGET = {"LoadImage": "image", "LoadVideo": "file"}


class ConversionError(ValueError):
    """The graph cannot be turned into a prompt (unknown node type, bad widget values...)."""


# --------------------------------------------------------------------------------------------
# UI graph -> API prompt
# --------------------------------------------------------------------------------------------

def _ordered_inputs(defn: Mapping[str, Any]) -> list[tuple[str, Any, dict]]:
    """(name, type, options) of a node's inputs in the editor's order (``input_order``)."""
    spec = defn.get("input", {})
    order = defn.get("input_order") or {}
    out = []
    for section in ("required", "optional"):
        entries = spec.get(section) or {}
        names = list(order.get(section) or entries.keys())
        names += [n for n in entries if n not in names]
        for name in names:
            if name not in entries:
                continue
            item = entries[name]
            if not isinstance(item, (list, tuple)):
                item = [item]
            kind = item[0]
            opts = item[1] if len(item) > 1 and isinstance(item[1], dict) else {}
            out.append((name, kind, opts))
    return out


def _is_widget(kind: Any, opts: Mapping[str, Any]) -> bool:
    if opts.get("forceInput"):
        return False
    return isinstance(kind, (list, tuple)) or kind in WIDGET_TYPES


def widget_slots(defn: Mapping[str, Any]) -> list[str | None]:
    """The names behind a node's ``widgets_values``, in order.

    None marks the editor's extra widgets that are saved but never sent: the upload button
    after an ``image_upload``/``video_upload`` combo and the ``control_after_generate`` combo
    after a seed (an INT named seed/noise_seed, or any input flagged control_after_generate).
    """
    slots: list[str | None] = []
    for name, kind, opts in _ordered_inputs(defn):
        if not _is_widget(kind, opts):
            continue
        slots.append(name)
        if opts.get("control_after_generate") or (kind == "INT"
                                                   and name in ("seed", "noise_seed")):
            slots.append(None)
        if any(opts.get(key) for key in UPLOAD_OPTIONS):
            slots.append(None)
    return slots


def _links_by_id(ui: Mapping[str, Any]) -> dict[int, tuple[int, int]]:
    """link id -> (origin node id, origin slot); both the list and the object link forms."""
    out = {}
    for link in ui.get("links") or []:
        if isinstance(link, Mapping):
            out[int(link["id"])] = (int(link["origin_id"]), int(link["origin_slot"]))
        else:
            out[int(link[0])] = (int(link[1]), int(link[2]))
    return out


def _first_link_of_type(node: Mapping[str, Any], kind: Any) -> int | None:
    """The link into ``node``'s first linked input of type ``kind`` (what a bypassed node
    passes through for an output of that type), or None."""
    for entry in node.get("inputs") or []:
        if entry.get("link") is None:
            continue
        if kind is not None and entry.get("type") == kind:
            return int(entry["link"])
    return None


def _resolve_link(link_id: int | None, links: Mapping[int, tuple[int, int]],
                  nodes: Mapping[int, Mapping[str, Any]]) -> list[Any] | None:
    """Follow a link through Reroutes and bypassed nodes to the node that computes it:
    ``[node id, output slot]`` as the API prompt writes a link, or None when the value comes
    from a Primitive (the target's widget holds it) or a muted node, or the chain ends."""
    seen = set()
    while link_id is not None and link_id in links and link_id not in seen:
        seen.add(link_id)
        src_id, slot = links[link_id]
        src = nodes.get(src_id)
        if src is None:
            raise ConversionError(f"link {link_id} comes from missing node {src_id}")
        kind = src["type"]
        if kind == "PrimitiveNode":
            return None  # the target's widget holds the value
        if kind == "Reroute":
            link_id = next((int(e["link"]) for e in src.get("inputs") or []
                            if e.get("link") is not None), None)
            continue
        if src.get("mode", MODE_ALWAYS) == MODE_NEVER:
            return None
        if src.get("mode", MODE_ALWAYS) == MODE_BYPASS:
            outputs = src.get("outputs") or []
            out_type = outputs[slot].get("type") if slot < len(outputs) else None
            link_id = _first_link_of_type(src, out_type)
            continue
        return [str(src_id), int(slot)]
    return None


def _widget_inputs(nid: int, node: Mapping[str, Any], defn: Mapping[str, Any], *,
                   strict: bool) -> dict[str, Any]:
    """A node's saved widget values by input name (by name when the pack saved them so,
    else by position against :func:`widget_slots`, editor-only widgets left out).

    Raises:
        ConversionError: with ``strict``, the value count differs from the widget count
            (without it: a warning on stderr, and values matched by position as the editor
            does).
    """
    kind = node["type"]
    values = node.get("widgets_values")
    if isinstance(values, Mapping):  # some packs save widgets by name
        names = {name for name in widget_slots(defn) if name}
        return {k: v for k, v in values.items() if k in names}
    values = list(values or [])
    slots = widget_slots(defn)
    if len(values) != len(slots):
        msg = (f"node {nid} ({kind}): {len(values)} widget values for {len(slots)} "
               f"widgets {[s or '<editor-only>' for s in slots]}")
        if strict:
            raise ConversionError(msg)
        print(f"warning: {msg}; matched by position as the editor does", file=sys.stderr)
    return {slot: value for slot, value in zip(slots, values) if slot is not None}


def _linked_inputs(node: Mapping[str, Any], defn: Mapping[str, Any],
                   links: Mapping[int, tuple[int, int]],
                   nodes: Mapping[int, Mapping[str, Any]]) -> dict[str, list[Any]]:
    """The node's declared inputs whose link resolves to a computing node, as
    ``{name: [node id, slot]}``; a link from a Primitive or a muted node is left out (the
    widget value stands)."""
    declared = {name for name, _, _ in _ordered_inputs(defn)}
    out = {}
    for entry in node.get("inputs") or []:
        name = entry.get("name")
        if entry.get("link") is None or name not in declared:
            continue
        source = _resolve_link(int(entry["link"]), links, nodes)
        if source is not None:
            out[name] = source
    return out


def graph_to_prompt(ui: Mapping[str, Any], object_info: Mapping[str, Mapping[str, Any]], *,
                    strict: bool = False) -> dict[str, dict[str, Any]]:
    """The API prompt ComfyUI's editor would queue for a saved UI graph.

    Widget values are matched to input names by the server's node definitions, as the editor
    does when it loads a graph; a linked input takes the link. Notes, Reroutes and Primitive
    nodes are left out (a Primitive's value already sits in its target's widget), muted nodes
    are dropped and bypassed ones are passed through (an output takes the first input of the
    same type). ``strict`` refuses a node whose widget count does not match its definition
    (the editor would silently shift or drop values).
    """
    if (ui.get("definitions") or {}).get("subgraphs"):
        raise ConversionError("graphs with subgraphs are not supported; unpack them first")
    nodes = {int(n["id"]): n for n in ui.get("nodes") or []}
    links = _links_by_id(ui)
    prompt: dict[str, dict[str, Any]] = {}
    for nid, node in sorted(nodes.items()):
        kind = node["type"]
        if kind in VIRTUAL_TYPES or node.get("mode", MODE_ALWAYS) in (MODE_NEVER, MODE_BYPASS):
            continue
        defn = object_info.get(kind)
        if defn is None:
            raise ConversionError(f"node {nid}: the server has no node type {kind!r} "
                                  "(is the pack, or the node pack it comes from, installed?)")
        inputs = _widget_inputs(nid, node, defn, strict=strict)
        inputs.update(_linked_inputs(node, defn, links, nodes))
        prompt[str(nid)] = {"class_type": kind, "inputs": inputs,
                            "_meta": {"title": node.get("title") or kind}}
    return prompt


def bind_inputs(prompt: dict[str, dict[str, Any]], files: Mapping[str, str],
                ) -> dict[str, list[str]]:
    """Put uploaded file names into the loaders whose placeholder names them.

    ``files`` maps an input role (``target``, ``driver``...) to the name the server stored.
    Returns the roles each prompt still needs: ``{role: [node ids]}`` for placeholders whose
    role was not given (those loaders keep their shipped value).
    """
    missing: dict[str, list[str]] = {}
    for nid, spec in prompt.items():
        widget = LOADER_WIDGET.get(spec["class_type"])
        if widget is None:
            continue
        role = PLACEHOLDERS.get(spec["inputs"].get(widget))
        if role is None:
            continue
        if role in files:
            spec["inputs"][widget] = files[role]
        else:
            missing.setdefault(role, []).append(nid)
    return missing


def reachable(prompt: Mapping[str, Mapping[str, Any]], outputs: set[str]) -> set[str]:
    """The node ids an execution of ``outputs`` needs (what ComfyUI validates and runs)."""
    todo, seen = list(outputs), set()
    while todo:
        nid = todo.pop()
        if nid in seen or nid not in prompt:
            continue
        seen.add(nid)
        for value in prompt[nid]["inputs"].values():
            if isinstance(value, list) and len(value) == 2 and isinstance(value[0], str):
                todo.append(value[0])
    return seen


def output_nodes(prompt: Mapping[str, Mapping[str, Any]],
                 object_info: Mapping[str, Mapping[str, Any]]) -> set[str]:
    return {nid for nid, spec in prompt.items()
            if object_info.get(spec["class_type"], {}).get("output_node")}


# --------------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------------

class ServerError(RuntimeError):
    """An HTTP error answer (``status`` set) or no answer at all (``status`` None)."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class ComfyClient:
    def __init__(self, server: str, *, timeout: float = 60.0, client_id: str | None = None):
        self.base = server.rstrip("/")
        if "://" not in self.base:
            self.base = "http://" + self.base
        self.timeout = timeout
        self.client_id = client_id or uuid.uuid4().hex

    def _request(self, path: str, data: bytes | None = None,
                 headers: Mapping[str, str] | None = None) -> bytes:
        req = urllib.request.Request(self.base + path, data=data, headers=dict(headers or {}))
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return resp.read()
        except urllib.error.HTTPError as err:
            body = err.read()
            try:
                detail = json.loads(body)
            except ValueError:
                detail = body.decode("utf-8", "replace")
            raise ServerError(json.dumps(detail) if not isinstance(detail, str)
                              else detail, err.code) from err
        except urllib.error.URLError as err:
            raise ServerError(f"cannot reach ComfyUI at {self.base}: {err.reason}") from err
        except (OSError, http.client.HTTPException) as err:  # reset, closed mid-answer
            raise ServerError(f"lost ComfyUI at {self.base}: {err!r}") from err

    def get_json(self, path: str) -> Any:
        return json.loads(self._request(path))

    def post_json(self, path: str, payload: Any) -> Any:
        return json.loads(self._request(path, json.dumps(payload).encode(),
                                        {"Content-Type": "application/json"}))

    def object_info(self) -> dict[str, Any]:
        return self.get_json("/object_info")

    def upload(self, path: Path, *, subfolder: str = "", overwrite: bool = False) -> str:
        """Upload a file into the server's input folder; returns the name loaders use.

        Without ``overwrite`` the server keeps an identical file as it is (its loaders' cached
        results stay valid) and stores a different file of the same name as ``name (1).ext``.
        """
        boundary = uuid.uuid4().hex
        ctype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        parts = []
        for key, value in (("type", "input"), ("subfolder", subfolder),
                           ("overwrite", "true" if overwrite else "false")):
            parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"'
                         f"\r\n\r\n{value}\r\n".encode())
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="image"; '
                     f'filename="{path.name}"\r\nContent-Type: {ctype}\r\n\r\n'.encode())
        parts.append(path.read_bytes())
        parts.append(f"\r\n--{boundary}--\r\n".encode())
        answer = json.loads(self._request(
            "/upload/image", b"".join(parts),
            {"Content-Type": f"multipart/form-data; boundary={boundary}"}))
        name = answer["name"]
        return f"{answer['subfolder']}/{name}" if answer.get("subfolder") else name

    def queue(self, prompt: Mapping[str, Any], extra: Mapping[str, Any] | None = None) -> str:
        payload = {"prompt": prompt, "client_id": self.client_id}
        if extra:
            payload["extra_data"] = dict(extra)
        answer = self.post_json("/prompt", payload)
        return answer["prompt_id"]

    def wait(self, prompt_id: str, *, timeout: float, poll: float = 1.0) -> dict[str, Any]:
        """The history entry of a finished prompt (success or error)."""
        deadline = time.monotonic() + timeout
        while True:
            entry = self.get_json(f"/history/{prompt_id}").get(prompt_id)
            if entry and (entry.get("status") or {}).get("completed") is not None:
                if entry["status"].get("completed") or entry["status"].get(
                        "status_str") == "error":
                    return entry
            if time.monotonic() > deadline:
                raise TimeoutError(f"prompt {prompt_id} not finished after {timeout:.0f} s")
            time.sleep(poll)

    def interrupt(self) -> None:
        self._request("/interrupt", b"")

    def download(self, info: Mapping[str, Any], dest: Path) -> Path:
        query = urllib.parse.urlencode({"filename": info["filename"],
                                        "subfolder": info.get("subfolder", ""),
                                        "type": info.get("type", "output")})
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(self._request(f"/view?{query}"))
        return dest


def history_error(entry: Mapping[str, Any]) -> str | None:
    """The execution error of a history entry as one readable text, or None."""
    status = entry.get("status") or {}
    for kind, data in status.get("messages") or []:
        if kind == "execution_error":
            return (f"{data.get('node_type')} (node {data.get('node_id')}): "
                    f"{data.get('exception_type')}: {data.get('exception_message', '').strip()}")
        if kind == "execution_interrupted":
            return f"interrupted at node {data.get('node_id')} ({data.get('node_type')})"
    if status.get("status_str") == "error":
        return "error (no message)"
    return None


def prompt_error(text: str) -> str:
    """A /prompt refusal (validation) as one readable text."""
    try:
        detail = json.loads(text)
    except ValueError:
        return text
    lines = []
    err = detail.get("error") or {}
    if err:
        lines.append(f"{err.get('message', '')} {err.get('details', '')}".strip())
    for nid, node_err in (detail.get("node_errors") or {}).items():
        for item in node_err.get("errors") or []:
            lines.append(f"node {nid} ({node_err.get('class_type')}): {item.get('message')}: "
                         f"{item.get('details', '')}".rstrip(": "))
    return "\n".join(lines) or text


def output_files(entry: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(node id, file info) of every file a history entry lists under its outputs."""
    files = []
    for nid, outputs in (entry.get("outputs") or {}).items():
        for value in outputs.values():
            if isinstance(value, list):
                files += [(nid, item) for item in value
                          if isinstance(item, Mapping) and "filename" in item]
    return files


def output_texts(entry: Mapping[str, Any], prompt: Mapping[str, Mapping[str, Any]],
                 ) -> dict[str, str]:
    """The text outputs (Preview Any reports) of a history entry, by node title."""
    texts = {}
    for nid, outputs in (entry.get("outputs") or {}).items():
        text = outputs.get("text")
        if isinstance(text, list) and text:
            spec = prompt.get(nid) or {}
            title = (spec.get("_meta") or {}).get("title") or spec.get("class_type") or nid
            texts[f"{nid} {title}"] = "\n".join(str(t) for t in text)
    return dict(sorted(texts.items(), key=lambda kv: int(kv[0].split()[0])
                       if kv[0].split()[0].isdigit() else 0))


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------

def _parse_set(items: list[str]) -> list[tuple[str, str, Any]]:
    out = []
    for item in items:
        key, sep, raw = item.partition("=")
        nid, dot, name = key.partition(".")
        if not sep or not dot:
            raise SystemExit(f"--set {item!r}: expected NODE_ID.INPUT=VALUE")
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
        out.append((nid, name, value))
    return out


def _workflow_paths(args: argparse.Namespace) -> list[Path]:
    paths = [Path(p) for p in args.workflow] if args.workflow else sorted(
        WORKFLOWS.glob("*.json"))
    if args.only:
        wanted = {name.strip().removesuffix(".json") for name in args.only.split(",")}
        unknown = wanted - {p.stem for p in paths}
        if unknown:
            raise SystemExit(f"--only: no workflow named {sorted(unknown)}; "
                             f"have {[p.stem for p in paths]}")
        paths = [p for p in paths if p.stem in wanted]
    return paths


class _Abort(Exception):
    """Stop the command: ``main`` prints ``error: <message>`` and returns ``code``."""

    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--server", default="http://127.0.0.1:8188",
                    help="address of a running ComfyUI with the pack installed")
    ap.add_argument("--workflow", action="append", default=[],
                    help="a UI-format workflow JSON (repeatable; default: the pack's "
                         "workflows/*.json)")
    ap.add_argument("--only", help="comma-separated workflow names (file stems) to run")
    for role in ("target", "driver", "background", "background_video", "target_video"):
        ap.add_argument("--" + role.replace("_", "-"), type=Path, dest=role,
                        help=f"file for the loaders named "
                             f"{[k for k, v in PLACEHOLDERS.items() if v == role][0]!r}")
    ap.add_argument("--set", action="append", default=[], metavar="NODE.INPUT=VALUE",
                    help="override one input after conversion (VALUE as JSON, else a string)")
    ap.add_argument("--bypass", action="append", default=[], metavar="NODE",
                    help="bypass (Ctrl+B in the editor) every node of this type or id, e.g. "
                         "DanceReenactFaceRefine for a target whose face is too small")
    ap.add_argument("--out", type=Path, default=Path("comfy_runs"),
                    help="folder for OUT/<workflow>/ outputs and OUT/summary.json")
    ap.add_argument("--timeout", type=float, default=3600.0,
                    help="seconds to wait for one workflow")
    ap.add_argument("--poll", type=float, default=0.5, help="seconds between history polls")
    ap.add_argument("--overwrite", action="store_true",
                    help="replace a server input file of the same name (default: keep an "
                         "identical one, store a different one under a new name)")
    ap.add_argument("--no-download", action="store_true",
                    help="list the outputs but do not copy them")
    ap.add_argument("--skip-incomplete", action="store_true",
                    help="skip a workflow whose loaders need an input not given (default: "
                         "queue it with the shipped placeholder, as the editor would)")
    ap.add_argument("--client-id", help="the client id sent with each prompt (a websocket "
                    "opened as /ws?clientId=ID then sees its progress); default: random")
    ap.add_argument("--dry-run", action="store_true",
                    help="print the API prompts, queue nothing")
    ap.add_argument("--object-info", type=Path,
                    help="read node definitions from this file instead of the server")
    ap.add_argument("--record-object-info", type=Path, metavar="FILE",
                    help="save the server's definitions of the node types the workflows use "
                         "to FILE and exit")
    return ap


def _object_info(client: ComfyClient, path: Path | None) -> dict[str, Any]:
    """The node definitions: from ``path`` (``--object-info``) or the server.

    Raises:
        _Abort: the server does not answer.
    """
    try:
        return json.loads(path.read_text()) if path else client.object_info()
    except ServerError as err:
        raise _Abort(str(err)) from err


def _record_object_info(graphs: Mapping[str, Mapping[str, Any]],
                        info: Mapping[str, Any], path: Path) -> None:
    """``--record-object-info``: write the definitions of the node types ``graphs`` use.

    Raises:
        _Abort: the server lacks one of them.
    """
    used = sorted({n["type"] for g in graphs.values() for n in g["nodes"]} - VIRTUAL_TYPES)
    missing = [t for t in used if t not in info]
    if missing:
        raise _Abort(f"the server lacks {missing}")
    path.write_text(json.dumps({t: info[t] for t in used}, indent=1, sort_keys=True) + "\n")
    print(f"wrote {len(used)} node definitions to {path}")


def _convert_all(graphs: Mapping[str, dict[str, Any]], info: Mapping[str, Any],
                 bypass: list[str], overrides: list[tuple[str, str, Any]],
                 ) -> dict[str, dict[str, dict[str, Any]]]:
    """Each graph as an API prompt: ``bypass`` (node types or ids) bypassed first (in the
    graph, as Ctrl+B would), the ``--set`` overrides applied after.

    Raises:
        _Abort: a graph does not convert.
    """
    prompts = {}
    for name, graph in graphs.items():
        for node in graph["nodes"]:
            if node["type"] in bypass or str(node["id"]) in bypass:
                node["mode"] = MODE_BYPASS
        try:
            prompts[name] = graph_to_prompt(graph, info)
        except ConversionError as err:
            raise _Abort(f"{name}: {err}") from err
        for nid, key, value in overrides:
            if nid in prompts[name]:
                prompts[name][nid]["inputs"][key] = value
    return prompts


def _print_dry_run(prompts: dict[str, dict[str, dict[str, Any]]],
                   args: argparse.Namespace) -> None:
    """``--dry-run``: print the prompts with the given files' names bound, queue nothing."""
    files = {role: getattr(args, role).name for role in set(PLACEHOLDERS.values())
             if getattr(args, role)}
    for prompt in prompts.values():
        bind_inputs(prompt, files)
    print(json.dumps(prompts, indent=1))


def _upload_inputs(client: ComfyClient, args: argparse.Namespace) -> dict[str, str]:
    """Upload each input file given on the command line: ``{role: name on the server}``.

    Raises:
        _Abort: a file is missing (code 2) or the upload fails.
    """
    uploaded: dict[str, str] = {}
    for role in sorted(set(PLACEHOLDERS.values())):
        path = getattr(args, role)
        if path is None:
            continue
        if not path.is_file():
            raise _Abort(f"--{role.replace('_', '-')} {path}: no such file", 2)
        try:
            uploaded[role] = client.upload(path, overwrite=args.overwrite)
        except ServerError as err:
            raise _Abort(f"uploading {path}: {err}") from err
        print(f"uploaded {path} as {uploaded[role]!r} ({role})")
    return uploaded


def _output_files(client: ComfyClient, args: argparse.Namespace, name: str,
                  entry: Mapping[str, Any]) -> list[dict[str, str]]:
    """The summary's list of a finished run's output files; each is downloaded into
    ``OUT/<name>/`` unless ``--no-download``."""
    files = []
    for nid, item in output_files(entry):
        rel = Path(item.get("subfolder", "")) / item["filename"]
        if not args.no_download:
            client.download(item, args.out / name / rel)
        files.append({"node": nid, "file": str(rel), "type": item.get("type", "output")})
    return files


def _run_one(client: ComfyClient, args: argparse.Namespace, name: str,
             prompt: dict[str, dict[str, Any]], graph: Mapping[str, Any],
             info: Mapping[str, Any], uploaded: Mapping[str, str],
             ) -> tuple[dict[str, Any], bool]:
    """Bind the uploads into one prompt, queue it and wait for it: (its summary entry,
    whether the server is gone and the remaining workflows must not be queued)."""
    missing = bind_inputs(prompt, uploaded)
    needed = reachable(prompt, output_nodes(prompt, info))
    missing = {role: ids for role, ids in missing.items() if set(ids) & needed}
    record: dict[str, Any] = {"workflow": name, "inputs": {
        role: uploaded[role] for role in uploaded}}
    if missing and args.skip_incomplete:
        flags = ", ".join("--" + r.replace("_", "-") for r in sorted(missing))
        print(f"[{name}] skipped: needs {flags}")
        return {**record, "status": "skipped", "needs": sorted(missing)}, False
    start = time.monotonic()
    print(f"[{name}] queueing {len(prompt)} nodes", flush=True)
    try:
        prompt_id = client.queue(prompt, {"extra_pnginfo": {"workflow": graph}})
    except ServerError as err:
        seconds = time.monotonic() - start
        if err.status is None:
            print(f"[{name}] {err}; stopping", flush=True)
            return {**record, "status": "server lost", "error": str(err)}, True
        text = prompt_error(str(err))
        print(f"[{name}] refused after {seconds:.1f} s:\n  " + text.replace("\n", "\n  "))
        return {**record, "status": "refused", "seconds": round(seconds, 2),
                "error": text}, False
    try:
        entry = client.wait(prompt_id, timeout=args.timeout, poll=args.poll)
    except TimeoutError as err:
        client.interrupt()
        print(f"[{name}] {err}; interrupted")
        return {**record, "status": "timeout", "prompt_id": prompt_id, "error": str(err)}, False
    except ServerError as err:  # the server died (out of memory?) or went away
        seconds = time.monotonic() - start
        print(f"[{name}] {err} after {seconds:.1f} s; stopping", flush=True)
        return {**record, "status": "server lost", "prompt_id": prompt_id,
                "seconds": round(seconds, 2), "error": str(err)}, True
    seconds = time.monotonic() - start
    error = history_error(entry)
    files = _output_files(client, args, name, entry)
    status = "error" if error else "success"
    reports = output_texts(entry, prompt)
    print(f"[{name}] {status} in {seconds:.1f} s, {len(files)} file(s)"
          + (f"\n  {error}" if error else ""), flush=True)
    for title, text in reports.items():
        print(f"  report {title}: {text}")
    return {**record, "status": status, "prompt_id": prompt_id, "seconds": round(seconds, 2),
            "error": error, "files": files, "reports": reports}, False


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    paths = _workflow_paths(args)
    overrides = _parse_set(args.set)
    client = ComfyClient(args.server, client_id=args.client_id)
    try:
        info = _object_info(client, args.object_info)
        graphs = {p.stem: json.loads(p.read_text()) for p in paths}
        if args.record_object_info:
            _record_object_info(graphs, info, args.record_object_info)
            return 0
        prompts = _convert_all(graphs, info, args.bypass, overrides)
        if args.dry_run:
            _print_dry_run(prompts, args)
            return 0
        uploaded = _upload_inputs(client, args)
    except _Abort as err:
        print(f"error: {err}", file=sys.stderr)
        return err.code

    args.out.mkdir(parents=True, exist_ok=True)
    summary = []
    for name, prompt in prompts.items():
        entry, server_gone = _run_one(client, args, name, prompt, graphs[name], info, uploaded)
        summary.append(entry)
        if server_gone:
            break
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(f"summary: {args.out / 'summary.json'}")
    return 0 if all(s["status"] in ("success", "skipped") for s in summary) else 1


if __name__ == "__main__":
    sys.exit(main())
