"""The bridge to ComfyUI's runtime: device, progress, cancellation, model folder, node errors.

Inside ComfyUI this uses ``comfy.model_management`` and ``comfy.utils.ProgressBar``; outside it
(tests, the CLI) it falls back quietly to CUDA-if-available, a tqdm bar and no cancellation.
:func:`register_memory_hooks` makes ComfyUI's memory management free the pack's model cache.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

import torch

from ..models.core.cache import model_cache
from ..models.io import weights

logger = logging.getLogger(__name__)


class NodeInputError(ValueError):
    """Bad input to a node: names the node, the input, the problem and the fix."""

    def __init__(self, node: str, input_name: str, problem: str, fix: str) -> None:
        self.node, self.input_name, self.problem, self.fix = node, input_name, problem, fix
        super().__init__(f"[{node}] input '{input_name}': {problem}. Fix: {fix}.")


def _comfy_mm() -> Any | None:
    try:
        import comfy.model_management as mm  # type: ignore[import-not-found]
    except Exception:
        return None
    return mm


def get_device() -> torch.device:
    """ComfyUI's torch device when running inside it, else CUDA if available, else CPU."""
    mm = _comfy_mm()
    if mm is not None:
        try:
            return torch.device(mm.get_torch_device())
        except Exception:  # pragma: no cover - odd ComfyUI builds
            logger.debug("comfy.model_management.get_torch_device failed; falling back")
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


_HOOKED = "_dance_reenact_memory_hooks"


def register_memory_hooks() -> bool:
    """Inside ComfyUI: free the pack's model cache (:mod:`..models.cache`) when ComfyUI frees
    memory. ComfyUI has no registry for other caches, so its two entry points are wrapped
    (once; the originals still run, first or last as below):

    * ``unload_all_models`` (the "Free model and node cache" button, after an out-of-memory
      error, ``--disable-smart-memory``): every cached entry is dropped (MediaPipe graphs
      closed), then ``soft_empty_cache`` returns the freed blocks to the driver.
    * ``free_memory(memory_required, device)`` (ComfyUI is about to load one of its models):
      after ComfyUI has offloaded its own, if the device still has less free than required,
      our entries on that device are dropped, then ``soft_empty_cache``.

    Returns True when the hooks are in place (False outside ComfyUI).
    """
    mm = _comfy_mm()
    if mm is None:
        return False
    if getattr(mm, _HOOKED, False):
        return True
    unload_all, free = getattr(mm, "unload_all_models", None), getattr(mm, "free_memory", None)
    if not callable(unload_all) or not callable(free):
        logger.warning("comfy.model_management has no unload_all_models/free_memory: the "
                       "dance_reenact model cache is not freed by ComfyUI")
        return False

    def soft_empty() -> None:
        try:
            mm.soft_empty_cache()
        except Exception:  # pragma: no cover - odd ComfyUI builds
            logger.debug("soft_empty_cache failed", exc_info=True)

    def unload_all_models(*args: Any, **kwargs: Any) -> Any:
        try:
            freed = model_cache().clear()
            if freed:
                logger.info("dance_reenact: freed %d cached model(s) as ComfyUI unloads all "
                            "models", freed)
                soft_empty()
        except Exception:  # freeing our cache must never break ComfyUI's own
            logger.warning("could not clear the dance_reenact model cache", exc_info=True)
        return unload_all(*args, **kwargs)

    def free_memory(memory_required: float, device: Any, *args: Any, **kwargs: Any) -> Any:
        out = free(memory_required, device, *args, **kwargs)
        try:
            if mm.get_free_memory(device) < memory_required:
                freed = model_cache().release(device)
                if freed:
                    logger.info("dance_reenact: freed %d cached model(s) on %s for ComfyUI",
                                freed, device)
                    soft_empty()
        except Exception:
            logger.warning("could not release the dance_reenact model cache", exc_info=True)
        return out

    unload_all_models.__wrapped__ = unload_all  # type: ignore[attr-defined]
    free_memory.__wrapped__ = free  # type: ignore[attr-defined]
    mm.unload_all_models, mm.free_memory = unload_all_models, free_memory
    setattr(mm, _HOOKED, True)
    logger.debug("dance_reenact model cache follows ComfyUI's memory management")
    return True


def check_interrupt() -> None:
    """Raise ComfyUI's interruption exception if the user pressed cancel (no-op outside)."""
    mm = _comfy_mm()
    if mm is not None:
        mm.throw_exception_if_processing_interrupted()


class Progress:
    """Per-item progress: ComfyUI's ProgressBar inside ComfyUI, tqdm outside.

    ``update()`` also checks for cancellation, so a long video stops within one frame.
    """

    def __init__(self, total: int, desc: str = "") -> None:
        self.total = max(int(total), 1)
        self._bar: Any = None
        self._tqdm: Any = None
        try:
            import comfy.utils  # type: ignore[import-not-found]

            self._bar = comfy.utils.ProgressBar(self.total)
        except Exception:
            try:
                from tqdm.auto import tqdm

                self._tqdm = tqdm(total=self.total, desc=desc, leave=False,
                                  disable=self.total < 2 or None)
            except Exception:  # pragma: no cover - tqdm missing
                self._tqdm = None

    def update(self, n: int = 1) -> None:
        check_interrupt()
        if self._bar is not None:
            self._bar.update(n)
        elif self._tqdm is not None:
            self._tqdm.update(n)

    def close(self) -> None:
        if self._tqdm is not None:
            self._tqdm.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def callback(self) -> Callable[[int, int], None]:
        """A ``(done, total)`` callback for library functions that report per item."""
        return lambda done, total: self.update(1)


# The first entry of every loader's local_file list (the three loaders say the same thing);
# the older texts stay accepted as "no file" so saved workflows load.
NO_FILE = f"(none: put .safetensors files in models/{weights.FOLDER_NAME})"
NO_FILE_CHOICES = frozenset({NO_FILE, "", "(none)", "(none found)"})


LOADER_BACKENDS: tuple[str, ...] = ("warp", "hub", "local")
_LEGACY_BACKENDS = {"weightless": "warp", "local_file": "local"}  # Load FaceRefine's old names


def normalize_backend(value: str) -> str:
    """A loader's backend in the one vocabulary (``warp|hub|local``); older names map."""
    return _LEGACY_BACKENDS.get(value, value)


def validate_loader_backend(backend: str) -> bool | str:
    """ComfyUI's VALIDATE_INPUTS for a loader: accepts the old names too (a saved workflow
    holding them still queues; ComfyUI skips its own list check for inputs checked here)."""
    if normalize_backend(backend) in LOADER_BACKENDS:
        return True
    return f"backend {backend!r} is not one of {', '.join(LOADER_BACKENDS)}"


def local_choices(extensions: tuple[str, ...] = (".safetensors",)) -> list[str]:
    """A loader's ``local_file`` list: :data:`NO_FILE` then the files in the models folders.
    Creates the first models folder (inside ComfyUI: ``models/dance_reenact``) so the user
    finds where to put files."""
    try:
        weights.search_roots()[0].mkdir(parents=True, exist_ok=True)
    except OSError:  # a read-only install: the list still works
        logger.debug("could not create %s", weights.search_roots()[0])
    try:
        files = weights.list_local_files(extensions)
    except Exception:  # a broken models folder must not break node registration
        files = []
    return [NO_FILE] + files


def local_weight_file(node: str, input_name: str, name: str) -> Any:
    """A file picked in a ``local_file`` widget -> its path in a models folder, or None when
    it is not there. A name leading outside the models folders (``../``, an absolute path
    elsewhere: widget values also arrive through the API) is a NodeInputError."""
    try:
        return weights.find_file(name)
    except weights.WeightError as exc:
        raise NodeInputError(node, input_name, str(exc), "pick a file from the list (put it "
                             f"in {weights.search_roots()[0]} first)") from exc


def load_stage_network(node: str, backend: str, *, arch: str, what: str, repo_id: str = "",
                       filename: str = "", revision: str = "main", sha256: str = "",
                       local_file: str = NO_FILE, train_cmd: str = "") -> tuple[Any, str]:
    """The loaders' one path to a network (P2B Loader, B2F Loader, Load FaceRefine).

    ``backend`` ``hub``: ``repo_id``/``filename`` at ``revision`` through the weight registry
    (downloaded once, sha256-pinned when ``sha256`` is given, offline once present);
    ``local``: ``local_file`` from the models folders. The file is loaded strictly as
    ``arch`` on ComfyUI's device. Every failure is a NodeInputError naming the widget and the
    fix (``what``: the stage in words, e.g. "P2B"; ``train_cmd``: how to make such a file).

    Returns:
        (the network, where its weights came from).
    """
    made_by = f" (`{train_cmd}` writes one)" if train_cmd else ""
    if backend == "hub":
        where = "repo_id"
        if not repo_id.strip():
            raise NodeInputError(node, where, "the hub backend needs a repo id: it is empty",
                                 f"type owner/name of the Hub repo holding your {what} "
                                 "weights, or use backend=warp")
        try:
            path = weights.resolve(weights.user_spec(repo_id, filename, revision,
                                                     sha256 or None))
        except weights.WeightError as exc:
            raise NodeInputError(node, where, str(exc), "check the repo id, file name, "
                                 "revision and network, or place the file by hand") from exc
    elif backend == "local":
        where = "local_file"
        if local_file in NO_FILE_CHOICES:
            raise NodeInputError(node, where, f"no file chosen: no {what} file is selected",
                                 f"put a {what} .safetensors{made_by} in "
                                 f"{weights.search_roots()[0]} and pick it (refresh the page), "
                                 "or use backend=warp")
        path = local_weight_file(node, where, local_file)
        if path is None:
            raise NodeInputError(node, where, f"{local_file!r} is not in "
                                 f"{', '.join(map(str, weights.search_roots()))}",
                                 "put the file in one of those folders, or pick another")
    else:
        raise NodeInputError(node, "backend", f"unknown backend {backend!r}",
                             f"choose one of {', '.join(LOADER_BACKENDS)}")
    from ..models.io.loading import load_model

    try:
        return load_model(path, expected_arch=arch, device=get_device()), str(path)
    except weights.WeightError as exc:
        raise NodeInputError(node, where, str(exc), f"choose a {arch} checkpoint{made_by}") \
            from exc


def register_model_folder() -> str | None:
    """Inside ComfyUI: register ``models/dance_reenact`` with ``folder_paths`` (adding our
    extensions to an existing entry rather than replacing it) and make it a weight root."""
    try:
        import folder_paths  # type: ignore[import-not-found]
    except Exception:
        return None
    path = os.path.join(folder_paths.models_dir, weights.FOLDER_NAME)
    try:
        os.makedirs(path, exist_ok=True)  # where the loaders' lists tell users to put files
    except OSError:
        logger.debug("could not create %s", path)
    exts = set(weights.WEIGHT_EXTENSIONS)
    entry = folder_paths.folder_names_and_paths.get(weights.FOLDER_NAME)
    if entry is None:
        folder_paths.folder_names_and_paths[weights.FOLDER_NAME] = ([path], exts)
    else:
        paths, old_exts = entry
        if path not in paths:
            paths.append(path)
        if isinstance(old_exts, set):
            old_exts.update(exts)
        else:
            folder_paths.folder_names_and_paths[weights.FOLDER_NAME] = (paths, set(old_exts) | exts)
    for p in folder_paths.folder_names_and_paths[weights.FOLDER_NAME][0]:
        weights.add_search_root(p)
    return path
