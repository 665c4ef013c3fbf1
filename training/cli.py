"""``reenact train <stage>`` and ``reenact prepare``: the training commands.

Each stage's training module exposes ``add_train_parser(subparsers)``; list it in
``_TRAIN_MODULES`` to add ``reenact train <stage>``.
"""

from __future__ import annotations

import argparse
import importlib

_TRAIN_MODULES: tuple[str, ...] = ("p2b", "b2f", "face")


def add_parser(sub: argparse._SubParsersAction) -> None:
    train = sub.add_parser("train", help="train a network (p2b, ...) on a dataset or on "
                           "synthetic people; multi-GPU through torchrun")
    stages = train.add_subparsers(dest="stage", required=True)
    for mod in _TRAIN_MODULES:
        importlib.import_module(f".{mod}", __package__).add_train_parser(stages)
    importlib.import_module(".prepare", __package__).add_prepare_parser(sub)
