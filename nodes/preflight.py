"""Checks of the whole queued graph, run by the first of our nodes to execute.

ComfyUI hands every node that asks for it (``"hidden": {"prompt": "PROMPT"}``) the whole API
prompt. :func:`add_graph_checks` gives each node class that hidden input and, before the node's
own work, checks every weight file the graph's nodes will read: a file that is not on disk and
cannot be downloaded now (offline, the Hub unreachable, or a local file nobody publishes) is
listed, all of them in ONE error raised by whichever node runs first, within a second of
queueing, instead of one file per run after minutes of work.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..models.io import weights
from .runtime import NO_FILE_CHOICES, NodeInputError

logger = logging.getLogger(__name__)

DOWNLOADS = "downloads"  # a registry file: fetched from the Hub when it is reachable


@dataclass(frozen=True)
class MissingFile:
    node_id: str  # the nodes that need it, comma separated
    class_type: str
    input_name: str
    file: str
    folder: str
    url: str | None  # direct download URL; None for files nobody publishes (train them)

    def line(self) -> str:
        dest = f"{self.folder.rstrip('/')}/{self.file}"
        how = (f"download {self.url} and save it as {dest}" if self.url else
               f"nobody publishes it: train it (`reenact train`) and put it at {dest}, or "
               "pick another backend")
        return f"- {self.file} (node {self.node_id} {self.class_type}, '{self.input_name}'): {how}"


def _registry(*names: str) -> list[weights.WeightSpec]:
    return [weights.REGISTRY[n] for n in names if n in weights.REGISTRY]


def _is_link(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and len(value) == 2 and isinstance(value[0], str)


def _loader_needs(class_type: str, inputs: Mapping[str, Any]
                  ) -> list[tuple[str, weights.WeightSpec | str]]:
    """The P2B / B2F / FaceRefine loaders' files: a local file, a Hub file, fan68."""
    get = inputs.get
    out: list[tuple[str, weights.WeightSpec | str]] = []
    backend = get("backend", get("source"))
    if backend in ("local", "local_file"):
        out.append(("local_file", str(get("local_file") or "")))
    elif backend == "hub" and str(get("repo_id") or "").strip():
        try:
            out.append(("repo_id", weights.user_spec(
                str(get("repo_id")), str(get("filename") or ""),
                str(get("revision") or "main"), str(get("sha256") or "") or None)))
        except weights.WeightError:
            pass  # the loader itself says what is wrong with the repo id
    if class_type == "DanceReenactLoadFaceRefine" and get("landmarks") == "fan68":
        out += [("landmarks", s) for s in _registry("fan68")]
    return out


def needs_of(class_type: str, inputs: Mapping[str, Any]
             ) -> list[tuple[str, weights.WeightSpec | str]]:
    """(input name, registry spec or local file name) of every weight file a node reads."""
    get = inputs.get
    out: list[tuple[str, weights.WeightSpec | str]] = []
    if class_type == "DanceReenactOpenPose":
        if get("backend") == "dwpose":
            out += [("backend", s) for s in _registry("dwpose_detector", "dwpose_wholebody")]
        elif get("backend") == "openpose":
            names = ["openpose_body"] + (["openpose_hand"] if get("detect_hands", True) else []) \
                + (["openpose_face"] if get("detect_face", True) else [])
            out += [("backend", s) for s in _registry(*names)]
    elif class_type == "DanceReenactHumanParse":
        if get("backend") in ("schp_lip", "schp_lip_onnx"):
            out += [("backend", s) for s in _registry(get("backend"))]
    elif class_type == "DanceReenactDensePose":
        if get("backend") == "densepose_r50":
            out += [("backend", s) for s in _registry("densepose_r50")]
    elif class_type == "DanceReenactAppearanceEncoder":
        if get("backend") == "pretrained":
            out += [("backend", s) for s in _registry("facenet_vggface2", "vgg19")]
    elif class_type == "DanceReenactInpaint":
        if get("backend") == "lama":
            out += [("backend", s) for s in _registry("big_lama")]
    elif class_type in ("DanceReenactP2BLoader", "DanceReenactB2FLoader",
                        "DanceReenactLoadFaceRefine"):
        out += _loader_needs(class_type, inputs)
    return out


def missing_files(prompt: Mapping[str, Mapping[str, Any]]) -> list[MissingFile]:
    """Every weight file the graph needs that is neither on disk nor downloadable now."""
    folder = str(weights.search_roots()[0])
    unavailable: str | None = None
    probed = False
    out: list[MissingFile] = []
    for node_id, spec in prompt.items():
        inputs = {k: v for k, v in dict(spec.get("inputs", {})).items() if not _is_link(v)}
        for input_name, need in needs_of(str(spec.get("class_type", "")), inputs):
            if isinstance(need, str):  # a local file picked in a dropdown
                try:
                    present = need not in NO_FILE_CHOICES and weights.find_file(need) is not None
                except weights.WeightError:
                    present = True  # a path outside the folders: the loader explains
                if not present:
                    name = need if need not in NO_FILE_CHOICES else "(no file chosen)"
                    out.append(MissingFile(node_id, spec["class_type"], input_name, name,
                                           folder, None))
                continue
            if weights._find_for(need) is not None or (need.sha256 is not None and
                                                       weights.find_local(need) is not None):
                continue
            if not probed:
                unavailable, probed = weights.hub_unavailable(), True
            if unavailable:
                out.append(MissingFile(node_id, spec["class_type"], input_name,
                                       need.disk_name, folder, need.url))
    merged: dict[tuple[str, str | None], MissingFile] = {}
    for m in out:  # one line per file, naming every node that needs it
        key = (m.file if m.url else f"{m.node_id}:{m.file}", m.url)
        if key in merged:
            prev = merged[key]
            merged[key] = MissingFile(f"{prev.node_id}, {m.node_id}", prev.class_type,
                                      prev.input_name, m.file, m.folder, m.url)
        else:
            merged[key] = m
    return list(merged.values())


_checked: dict[str, list[MissingFile]] = {}


def check_graph(prompt: Mapping[str, Any], node: str) -> None:
    """Raise one NodeInputError naming every missing weight file of ``prompt`` (checked once
    per distinct prompt)."""
    try:
        key = hashlib.sha1(json.dumps(prompt, sort_keys=True, default=str).encode()).hexdigest()
    except (TypeError, ValueError):  # pragma: no cover - a prompt that is not JSON
        return
    if key not in _checked:
        if len(_checked) > 64:
            _checked.clear()
        _checked[key] = missing_files(prompt)
    missing = _checked[key]
    if missing:
        why = weights.hub_unavailable() or "they are not on disk"
        raise NodeInputError(
            node, "(workflow)",
            f"{len(missing)} weight file(s) this workflow needs are missing ({why}):\n"
            + "\n".join(m.line() for m in missing) + "\n",
            "place every file listed (or reconnect to the Hub) and queue again, or switch "
            "those nodes to a weightless backend (warp / mediapipe / geometric / weightless / "
            "opencv_telea)")


def add_graph_checks(cls: type, name: str | None = None) -> type:
    """Give a node class ComfyUI's hidden ``prompt`` input and run :func:`check_graph` before
    its function (in place: direct calls without ``prompt`` are unchanged). ``name``: the
    node's display name, for the error."""
    if getattr(cls, "_graph_checks", False):
        return cls
    input_types = cls.INPUT_TYPES.__func__  # type: ignore[attr-defined]

    @classmethod  # type: ignore[misc]
    def INPUT_TYPES(klass: type) -> dict:  # noqa: N802 - ComfyUI's name
        spec = dict(input_types(klass))
        hidden = dict(spec.get("hidden", {}))
        hidden.setdefault("prompt", "PROMPT")
        spec["hidden"] = hidden
        return spec

    func = getattr(cls, cls.FUNCTION)

    @functools.wraps(func)
    def run(self: Any, *args: Any, prompt: Any = None, **kwargs: Any) -> Any:
        if isinstance(prompt, Mapping):
            check_graph(prompt, name or cls.__name__)
        return func(self, *args, **kwargs)

    cls.INPUT_TYPES = INPUT_TYPES  # type: ignore[method-assign]
    setattr(cls, cls.FUNCTION, run)
    cls._graph_checks = True  # type: ignore[attr-defined]
    return cls
