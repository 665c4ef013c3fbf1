"""Saving and loading networks: safetensors with the config in the metadata, strict loading.

Our networks are saved as safetensors whose metadata holds ``arch`` (the class name) and
``config`` (JSON of the constructor's keyword arguments), so :func:`load_model` rebuilds the
exact network and loads it strictly. Third-party ``.pth`` files go through
:func:`load_torch_file` with ``weights_only=True``.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import nn

from .weights import WeightError

FORMAT_VERSION = "1"
_ARCHITECTURES: dict[str, type[nn.Module]] = {}
M = TypeVar("M", bound=type[nn.Module])


def register_architecture(cls: M) -> M:
    """Class decorator: make a network loadable by name. It must expose ``self.config``."""
    _ARCHITECTURES[cls.__name__] = cls
    return cls


def architectures() -> dict[str, type[nn.Module]]:
    return dict(_ARCHITECTURES)


def _check_file(path: Path) -> None:
    if not path.is_file():
        raise WeightError(f"weight file {path} does not exist")
    size = path.stat().st_size
    if size == 0:
        raise WeightError(f"weight file {path} is empty (0 bytes): an interrupted download? "
                          "Delete it and fetch it again.")
    if size < 1024:
        head = path.read_bytes()[:200]
        if head.startswith(b"version https://git-lfs"):
            raise WeightError(f"{path} is a git-lfs pointer file, not the weights: download "
                              "the real file (git lfs pull, or from the Hub page).")


def save_model(module: nn.Module, path: str | os.PathLike[str], *,
               extra_metadata: Mapping[str, str] | None = None) -> Path:
    """Save a registered network as safetensors with its architecture and config."""
    from safetensors.torch import save_file

    arch = type(module).__name__
    config = getattr(module, "config", None)
    if not isinstance(config, dict):
        raise TypeError(f"{arch} has no dict `config` to store; networks must record their "
                        "constructor arguments in self.config")
    meta = {"arch": arch, "config": json.dumps(config, sort_keys=True),
            "format_version": FORMAT_VERSION}
    if extra_metadata:
        meta.update({str(k): str(v) for k, v in extra_metadata.items()})
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().contiguous().cpu() for k, v in module.state_dict().items()}
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata=meta)
    os.replace(tmp, path)
    return path


def read_metadata(path: str | os.PathLike[str]) -> dict[str, str]:
    """The safetensors header metadata of ``path`` (clear error if it is not safetensors)."""
    from safetensors import safe_open

    path = Path(path)
    _check_file(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {})
    except Exception as exc:
        raise WeightError(f"{path} is not a readable safetensors file ({exc}); it may be "
                          "truncated or of another format.") from exc


def check_state_dict(module: nn.Module, state: Mapping[str, torch.Tensor], source: str) -> None:
    """Raise a WeightError listing missing, unexpected and mis-shaped parameters."""
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [f"{k}: expected {tuple(own[k].shape)}, got {tuple(state[k].shape)}"
             for k in own if k in state and tuple(own[k].shape) != tuple(state[k].shape)]
    if not (missing or unexpected or wrong):
        return
    parts = []
    if wrong:
        parts.append("shape mismatch: " + "; ".join(wrong[:8])
                     + (f" (+{len(wrong) - 8} more)" if len(wrong) > 8 else ""))
    if missing:
        parts.append(f"missing {len(missing)}: " + ", ".join(missing[:8]))
    if unexpected:
        parts.append(f"unexpected {len(unexpected)}: " + ", ".join(unexpected[:8]))
    raise WeightError(f"{source} does not fit {type(module).__name__}: " + " | ".join(parts))


MAX_CONFIG_INT = 16384  # far above any real channel count, depth or working size


def _check_config_values(config: Mapping[str, Any], path: Path) -> None:
    """Refuse config values no network of ours has: a file claiming ngf=1e6 must not get as
    far as allocating memory (or building millions of layers, even on the meta device)."""
    for key, value in config.items():
        if isinstance(value, bool) or isinstance(value, str) or value is None:
            continue
        if isinstance(value, float) and not math.isfinite(value):
            raise WeightError(f"{path}: its config metadata has {key}={value}; the file is "
                              "damaged or not one of our checkpoints")
        if isinstance(value, (int, float)) and not 0 <= value <= MAX_CONFIG_INT:
            raise WeightError(f"{path}: its config metadata has {key}={value}, outside "
                              f"0..{MAX_CONFIG_INT}; the file is damaged or was edited. Use "
                              "a checkpoint written by `reenact train`")


def _header_shapes(path: Path) -> dict[str, torch.Tensor]:
    """The tensors a safetensors file holds, as shape-only meta tensors (nothing is read)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return {k: torch.empty(f.get_slice(k).get_shape(), device="meta")
                    for k in f.keys()}
    except Exception as exc:
        raise WeightError(f"{path} is not a readable safetensors file ({exc}); it may be "
                          "truncated or of another format.") from exc


def check_checkpoint(path: str | os.PathLike[str], *, expected_arch: str | None = None,
                     factory: Callable[..., nn.Module] | None = None
                     ) -> tuple[Callable[..., nn.Module], dict[str, Any]]:
    """Check a checkpoint written by :func:`save_model` without loading its tensors.

    The metadata's ``arch`` and ``config`` are not trusted: the network is built on the
    ``meta`` device (no memory) and its parameter shapes are compared with the tensor shapes
    in the file's header, so a config that does not match its tensors (or asks for a
    196 TB network) is refused before anything is allocated.

    Returns:
        (factory, config) ready to build the network for real.
    Raises:
        WeightError naming the file and what does not fit.
    """
    path = Path(path)
    meta = read_metadata(path)
    arch = meta.get("arch")
    if arch is None or "config" not in meta:
        raise WeightError(f"{path} has no 'arch'/'config' metadata: it was not saved by this "
                          "pack. Convert it with save_model() or pick one of our checkpoints.")
    if expected_arch is not None and arch != expected_arch:
        raise WeightError(f"{path} holds a {arch} checkpoint, but a {expected_arch} is needed "
                          "here: pick the right file for this loader.")
    try:
        config: dict[str, Any] = json.loads(meta["config"])
    except ValueError as exc:
        raise WeightError(f"{path}: its config metadata is not valid JSON ({exc})") from exc
    if not isinstance(config, dict):
        raise WeightError(f"{path}: its config metadata is not a JSON object")
    _check_config_values(config, path)
    if factory is None:
        if arch not in _ARCHITECTURES:
            raise WeightError(f"{path} holds an unknown architecture {arch!r}; known: "
                              f"{', '.join(sorted(_ARCHITECTURES)) or 'none'}")
        factory = _ARCHITECTURES[arch]
    header = _header_shapes(path)
    try:
        with torch.device("meta"):
            skeleton = factory(**config)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise WeightError(f"{path}: config {config} does not fit {arch} ({exc})") from exc
    check_state_dict(skeleton, header, f"{path} (config metadata {config})")
    return factory, config


def load_model(path: str | os.PathLike[str], *, expected_arch: str | None = None,
               device: torch.device | str = "cpu",
               factory: Callable[..., nn.Module] | None = None) -> nn.Module:
    """Rebuild a network from a safetensors file's metadata and load it strictly.

    The metadata is checked against the tensor shapes in the file first
    (:func:`check_checkpoint`), so a lying config fails with a clear error, never an
    allocation of the size it claims.

    Args:
        path: a file written by :func:`save_model`.
        expected_arch: class name the caller needs (e.g. ``"P2BGenerator"``); another one is a
            clear error naming both.
        factory: build the network from the config instead of the registered class.
    Returns:
        the network in eval mode on ``device``.
    """
    from safetensors.torch import load_file

    path = Path(path)
    factory, config = check_checkpoint(path, expected_arch=expected_arch, factory=factory)
    module = factory(**config)
    try:
        state = load_file(str(path), device="cpu")
    except Exception as exc:
        raise WeightError(f"{path} could not be read ({exc}); it may be truncated.") from exc
    check_state_dict(module, state, str(path))
    module.load_state_dict(state, strict=True)
    return module.to(device).eval()


_UNSAFE_ADVICE = (
    re.compile(r"\x1b\[[0-9;]*m"),
    re.compile(r"This file can still be loaded.*?(?=WeightsUnpickler error|$)", re.S),
    re.compile(r"Please use `torch\.serialization\.(add_)?safe_globals.*?(trust this "
               r"class/function\.|$)", re.S),
    re.compile(r"Check the documentation of torch\.load.*?torch\.load\.html\.?", re.S),
    re.compile(r"[^.\n]*weights_only[`=\s]*(set to )?`?False[^.\n]*\.?", re.S),
)


def strip_unsafe_advice(message: str) -> str:
    """Drop torch's advice to load with ``weights_only=False`` or to allow-list globals:
    that runs the file's code. What is left says what the file holds."""
    for pattern in _UNSAFE_ADVICE:
        message = pattern.sub("", message)
    return re.sub(r"\s+", " ", message).strip()


def load_torch_file(path: str | os.PathLike[str]) -> Any:
    """Load a third-party ``.pth``/``.pt`` state dict safely (``weights_only=True``)."""
    path = Path(path)
    _check_file(path)
    try:
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise WeightError(f"{path} could not be loaded as a weights-only torch file "
                          f"({strip_unsafe_advice(str(exc))}); it may be truncated, or a pickle "
                          "that runs code (refused). Fix: use a plain state dict or a "
                          ".safetensors file") from exc


def load_state_dict_file(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """A state dict from safetensors or a weights-only torch file, by extension."""
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        _check_file(path)
        try:
            return load_file(str(path), device="cpu")
        except Exception as exc:
            raise WeightError(f"{path} could not be read as safetensors ({exc})") from exc
    obj = load_torch_file(path)
    if isinstance(obj, Mapping) and "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping):
        raise WeightError(f"{path} does not hold a state dict (got {type(obj).__name__})")
    return dict(obj)
