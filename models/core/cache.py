"""The pack's one cache of loaded models (networks, ONNX sessions, MediaPipe graphs).

Every loader that keeps something between calls (pose networks, DensePose, human parsers, the
appearance encoder, metric networks, inference copies, the shared MediaPipe graphs) goes
through :func:`model_cache`, so there is one place that bounds how much stays loaded and one
place to free it.

* Entries are keyed by ``(kind, key)``; :meth:`ModelCache.get_or_create` builds a missing
  entry once (under a lock, so two threads never load the same weights twice).
* Least-recently-used eviction: at most ``max_entries`` entries in all (default 12, the env var
  ``DANCE_REENACT_CACHE_ENTRIES``) and, when a caller asks, at most ``kind_limit`` of one kind
  (e.g. one human-parsing network at a time).
* An evicted or cleared value that has a ``close()`` method is closed (MediaPipe graphs hold
  native threads and buffers until then).
* Each entry may say which device its tensors live on; :meth:`ModelCache.release` drops the
  entries on one device (what the ComfyUI bridge calls when ComfyUI needs memory, see
  ``nodes/runtime.py``) and then returns the freed blocks to the driver
  (``torch.cuda.empty_cache``).

Pure library code: nothing here imports ComfyUI.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, TypeVar

import torch

logger = logging.getLogger(__name__)

__all__ = ["ModelCache", "model_cache", "DEFAULT_MAX_ENTRIES", "ENV_MAX_ENTRIES"]

ENV_MAX_ENTRIES = "DANCE_REENACT_CACHE_ENTRIES"
DEFAULT_MAX_ENTRIES = 12

T = TypeVar("T")


@dataclass
class _Entry:
    value: Any
    device: torch.device | None  # where the value's tensors live; None = host memory only


def _close(value: Any, what: tuple[str, Hashable]) -> None:
    close = getattr(value, "close", None)
    if callable(close):
        try:
            close()
        except Exception:  # a resource that fails to close must not break eviction
            logger.warning("closing cached %s failed", what[0], exc_info=True)


def _same_device(a: torch.device, b: torch.device) -> bool:
    """Same device type, and the same index when both name one (``cuda`` == ``cuda:0``
    is assumed for the current device)."""
    return a.type == b.type and (a.index is None or b.index is None or a.index == b.index)


def _max_from_env() -> int:
    raw = os.environ.get(ENV_MAX_ENTRIES, "").strip()
    if not raw:
        return DEFAULT_MAX_ENTRIES
    try:
        n = int(raw)
    except ValueError:
        logger.warning("%s=%r is not an integer; using %d", ENV_MAX_ENTRIES, raw,
                       DEFAULT_MAX_ENTRIES)
        return DEFAULT_MAX_ENTRIES
    return max(n, 1)


class ModelCache:
    """A thread-safe bounded LRU of loaded models keyed by ``(kind, key)``.

    Args:
        max_entries: the most entries kept in all; None reads ``DANCE_REENACT_CACHE_ENTRIES``
            (default :data:`DEFAULT_MAX_ENTRIES`).
    """

    def __init__(self, max_entries: int | None = None) -> None:
        self.max_entries = max(int(max_entries), 1) if max_entries is not None \
            else _max_from_env()
        self._entries: OrderedDict[tuple[str, Hashable], _Entry] = OrderedDict()
        self._lock = threading.RLock()

    def get_or_create(self, kind: str, key: Hashable, factory: Callable[[], T], *,
                      device: torch.device | str | None = None,
                      kind_limit: int | None = None) -> T:
        """The cached value for ``(kind, key)``, made by ``factory()`` when missing.

        Args:
            kind: what the value is (``"pose"``, ``"densepose"``...): the unit of
                ``kind_limit`` and of :meth:`clear`.
            key: anything hashable that tells two values of one kind apart (paths, device).
            factory: builds the value; an exception leaves the cache unchanged.
            device: where the value's tensors live (for :meth:`release`); None = host only.
            kind_limit: keep at most this many entries of ``kind`` (the least recently used
                others are evicted first).
        """
        full = (kind, key)
        with self._lock:
            entry = self._entries.get(full)
            if entry is not None:
                self._entries.move_to_end(full)
                return entry.value
            if kind_limit is not None:  # make room before loading: never two big ones at once
                same = [k for k in self._entries if k[0] == kind]
                for k in same[:max(len(same) - kind_limit + 1, 0)]:
                    self._evict(k, "kind limit")
            value = factory()
            dev = torch.device(device) if device is not None else None
            self._entries[full] = _Entry(value, dev)
            while len(self._entries) > self.max_entries:
                self._evict(next(iter(self._entries)), "cache full")
            return value

    def get(self, kind: str, key: Hashable) -> Any | None:
        """The cached value or None (counts as a use)."""
        with self._lock:
            entry = self._entries.get((kind, key))
            if entry is None:
                return None
            self._entries.move_to_end((kind, key))
            return entry.value

    def discard(self, kind: str, key: Hashable) -> bool:
        """Drop (and close) one entry; True if it was there."""
        with self._lock:
            if (kind, key) not in self._entries:
                return False
            self._evict((kind, key), "discarded")
            return True

    def keys(self, kind: str | None = None) -> list[tuple[str, Hashable]]:
        """The ``(kind, key)`` pairs held, least recently used first."""
        with self._lock:
            return [k for k in self._entries if kind is None or k[0] == kind]

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self, kind: str | None = None) -> int:
        """Drop (and close) every entry, or every entry of ``kind``; returns how many."""
        with self._lock:
            doomed = self.keys(kind)
            for k in doomed:
                self._evict(k, "cleared")
        if doomed:
            _empty_device_cache()
        return len(doomed)

    def release(self, device: torch.device | str | None = None) -> int:
        """Drop the entries whose tensors live on ``device`` (None: on any accelerator, i.e.
        not host memory) and give the freed memory back to the driver. Returns how many were
        dropped. What stays is host-memory only (MediaPipe graphs, CPU copies)."""
        target = torch.device(device) if device is not None else None
        with self._lock:
            doomed = [k for k, e in self._entries.items() if e.device is not None and (
                _same_device(e.device, target) if target is not None
                else e.device.type != "cpu")]
            for k in doomed:
                self._evict(k, "memory requested")
        if doomed:
            _empty_device_cache()
        return len(doomed)

    def _evict(self, full: tuple[str, Hashable], why: str) -> None:
        entry = self._entries.pop(full)
        logger.debug("model cache: dropping %s (%s)", full, why)
        _close(entry.value, full)


def _empty_device_cache() -> None:
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


_CACHE = ModelCache()


def model_cache() -> ModelCache:
    """The pack's one model cache."""
    return _CACHE
