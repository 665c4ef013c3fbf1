"""Fast inference copies of our networks, chosen by device (issue 9's benchmark goals).

:func:`prepare_for_inference` returns an eval-mode copy of a module made for running, not
training: BatchNorm folded into the convolution before it (eval statistics are constants, so
``bn(conv(x))`` is one convolution), weights in channels-last memory format (oneDNN's and
cuDNN's fast layout for convolutions), and on CUDA half precision. The copy is kept in the
pack's model cache (:mod:`.cache`, one entry per module, for its device and options) and
rebuilt when the module's parameters change (an optimiser step, ``load_state_dict``), so
library inference functions can call it on every batch. The caller's module is never modified.

How much faster than the naive and careful baselines, and at what share of the machine's fp32
matmul roof: the ``p2b`` and ``b2f`` rows of docs/benchmarks.md (``python benchmarks/run.py
--frames 8 --heavy-frames 2 --doc docs/benchmarks.md``; no figure is copied here, since they
move with every run). bf16 is never used on CPU (hundreds of times slower on these CPUs).

:func:`inference_input` converts an input tensor to the copy's memory format and dtype.
"""

from __future__ import annotations

import copy
import logging
import weakref
from dataclasses import dataclass

import torch
from torch import nn

from .cache import model_cache

logger = logging.getLogger(__name__)

__all__ = ["InferenceOptions", "options_for", "batch_size_for", "fold_batchnorm",
           "prepare_for_inference", "inference_input", "clear_cache"]


@dataclass(frozen=True)
class InferenceOptions:
    """What :func:`prepare_for_inference` does.

    channels_last: convert 4-D weights (and, through :func:`inference_input`, inputs) to
        channels-last.
    fold_bn: fold eval-mode BatchNorm2d into the Conv2d right before it.
    Every submodule with a ``fuse_for_inference()`` method is also asked to fuse itself
    (B2F's SPADE: its gamma and beta convs become one).
    half: cast to float16 (CUDA only; never on CPU).
    """

    channels_last: bool = True
    fold_bn: bool = True
    half: bool = False


def options_for(device: torch.device | str, *, half: bool | None = None) -> InferenceOptions:
    """The options for a device: channels-last and BN folding everywhere; half precision on
    CUDA unless ``half=False`` (CPU never uses half: no fast fp16 convolutions there)."""
    dev = torch.device(device)
    use_half = dev.type == "cuda" and (half is None or half)
    return InferenceOptions(channels_last=dev.type in ("cpu", "cuda"), fold_bn=True,
                            half=use_half)


def batch_size_for(device: torch.device | str, *, cpu: int = 1, cuda: int = 8) -> int:
    """Frames per network call: batching pays on a GPU (kernels fill up); on a CPU a single
    512x320 frame already keeps every core busy, and a batch only adds latency and memory."""
    return cuda if torch.device(device).type == "cuda" else cpu


def _fold(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """A Conv2d computing ``bn(conv(x))`` with ``bn``'s running statistics."""
    assert bn.running_mean is not None and bn.running_var is not None
    scale = torch.rsqrt(bn.running_var + bn.eps)
    shift = -bn.running_mean * scale
    if bn.weight is not None:
        scale = scale * bn.weight
        shift = shift * bn.weight
    if bn.bias is not None:
        shift = shift + bn.bias
    fused = copy.deepcopy(conv)
    w = conv.weight * scale.reshape(-1, 1, 1, 1)
    b = (conv.bias if conv.bias is not None else torch.zeros_like(scale)) * scale + shift
    fused.weight = nn.Parameter(w.detach().clone(), requires_grad=False)
    fused.bias = nn.Parameter(b.detach().clone(), requires_grad=False)
    return fused


def fold_batchnorm(module: nn.Module) -> int:
    """In place: in every ``nn.Sequential`` of ``module``, a ``Conv2d`` (groups=1, any
    stride/padding) directly followed by a ``BatchNorm2d`` with running statistics becomes
    one convolution, the BatchNorm an ``Identity``. Only valid in eval mode (the folded
    constants are the running statistics). Returns how many pairs were folded."""
    n = 0
    for seq in [m for m in module.modules() if isinstance(m, nn.Sequential)]:
        names = list(seq._modules)
        for a, b in zip(names, names[1:]):
            conv, bn = seq._modules[a], seq._modules[b]
            if (type(conv) is nn.Conv2d and type(bn) is nn.BatchNorm2d
                    and bn.track_running_stats and bn.running_mean is not None
                    and conv.out_channels == bn.num_features):
                seq._modules[a] = _fold(conv, bn)
                seq._modules[b] = nn.Identity()
                n += 1
    return n


_KIND = "inference"


class _Prepared:
    """A cache entry (kind ``inference``, key ``id(module)``): the copy and what it was made
    from. The module is held weakly: when it is garbage collected its entry goes too."""

    def __init__(self, module: nn.Module, key: tuple, prepared: nn.Module) -> None:
        self.source = weakref.ref(module)
        self.key = key
        self.prepared = prepared
        self._finalizer = weakref.finalize(module, model_cache().discard, _KIND, id(module))

    def close(self) -> None:  # evicted: the dead module's finalizer has nothing left to drop
        self._finalizer.detach()


def _state_key(module: nn.Module) -> tuple:
    """Changes when any parameter/buffer is replaced or modified in place."""
    key = []
    for t in list(module.parameters()) + list(module.buffers()):
        try:
            version = t._version
        except RuntimeError:  # an inference tensor (made under inference_mode): no counter
            version = -1
        key.append((t.data_ptr(), version, t.device.type))
    return tuple(key)


def clear_cache() -> None:
    """Drop every cached inference copy."""
    model_cache().clear(_KIND)


def prepare_for_inference(module: nn.Module, device: torch.device | str, *,
                          options: InferenceOptions | None = None) -> nn.Module:
    """An eval-mode copy of ``module`` on ``device``, optimised for inference (see
    :class:`InferenceOptions`; default :func:`options_for` the device).

    The copy keeps the module's class and methods (``config``, ``logits``, ``decode``...);
    feed it inputs through :func:`inference_input`. Cached: calling again with an unchanged
    module returns the same copy, so this may be called per batch. Outputs match
    ``module.eval()`` within float tolerance (fp32), or fp16 rounding with ``half``.
    """
    dev = torch.device(device)
    opts = options or options_for(dev)
    key = (str(dev), opts, _state_key(module))
    cache = model_cache()
    hit = cache.get(_KIND, id(module))
    if hit is not None and hit.source() is module and hit.key == key:
        return hit.prepared
    if hit is not None:  # a changed module (or a dead one whose id was reused): rebuild
        cache.discard(_KIND, id(module))
    with torch.inference_mode(False), torch.no_grad():
        prepared = copy.deepcopy(module).eval()
        folded = fold_batchnorm(prepared) if opts.fold_bn else 0
        for m in list(prepared.modules()):  # module-specific fusions (e.g. SPADE's gamma/beta)
            fuse = getattr(m, "fuse_for_inference", None)
            if callable(fuse):
                fuse()
        prepared = prepared.to(dev)
        if opts.half:
            prepared = prepared.half()
        if opts.channels_last:
            prepared = prepared.to(memory_format=torch.channels_last)
        for p in prepared.parameters():
            p.requires_grad_(False)
    prepared._inference_options = opts
    logger.debug("inference copy of %s on %s: %s, %d BatchNorms folded",
                 type(module).__name__, dev, opts, folded)
    cache.get_or_create(_KIND, id(module), lambda: _Prepared(module, key, prepared), device=dev)
    return prepared


def inference_input(x: torch.Tensor, prepared: nn.Module) -> torch.Tensor:
    """``x`` in ``prepared``'s dtype (float inputs only) and, for 4-D tensors, memory format
    (channels-last when its weights are)."""
    p = next(prepared.parameters(), None)
    if p is None:
        return x
    if x.is_floating_point() and x.dtype != p.dtype:
        x = x.to(p.dtype)
    opts = getattr(prepared, "_inference_options", None)
    if x.ndim == 4 and opts is not None and opts.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x
