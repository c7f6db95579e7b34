"""`vbench-suite train-dit`: train (or continue training) the built-in local DiT on the shapes world."""
from __future__ import annotations

import argparse

from vbench_suite.backends.dit.config import add_train_arguments


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "train-dit", help="train the built-in dit-local model (resumable)",
        description="Train the dit-local autoencoder, then its diffusion transformer, on shapes-world videos. "
                    "Resumes from --out when it holds a checkpoint; --export copies the usable weights.")
    add_train_arguments(p)
    return p


def run(args: argparse.Namespace) -> int:
    from vbench_suite.backends.dit.train import run_from_args  # deferred: imports torch

    return run_from_args(args)
