"""What ``bench_reference.py`` and ``profile_reference.py`` share: the reference system's
network as the library builds it, the clip length, random clips, the machine description, the
results folder, and the PyTorch side (``_reference_torch.py``), loaded with a clear message
when torch is missing. Imports no torch itself.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
from importlib.metadata import version
from pathlib import Path

import jax
import numpy as np
from flax import nnx

from asdtheory import detect
from asdtheory.detect import systems

RESULTS = Path(__file__).resolve().parent / "results"
SAMPLES = 160_000  # 10 s at 16 kHz, the clips of the DCASE data
QUICK_SAMPLES = 16_000  # 1 s: --quick, a check that the script runs, nothing to compare
NUM_CLASSES = 32  # auxiliary classes of the head (their number hardly changes the cost)
REFERENCE = systems.get("reference").config()
INSTALL = 'pip install -c constraints.txt -e ".[bench]"'


class TorchMissing(ModuleNotFoundError):
    """PyTorch is not installed; the message says how to install it."""


def require_torch(script: str, hint: str = ""):
    """The PyTorch side (the module ``_reference_torch``); without torch
    :class:`TorchMissing`, which says how to install it (and ``hint``). Scripts call it
    before any work."""
    try:
        import torch  # noqa: F401
    except ImportError as error:
        raise TorchMissing(f"{script} measures the library beside PyTorch, which is not "
                           f"installed here: {INSTALL}{hint}") from error
    import _reference_torch

    return _reference_torch


def run(main, description: str, **flags: str) -> None:
    """``main(quick=..., **flags)`` from the command line: ``--quick`` (1-s clips, small
    batches, nothing written) plus the script's own boolean ``flags`` (name -> help); a
    missing torch ends it with one line on stderr."""
    parser = argparse.ArgumentParser(description=description.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="1-s clips and tiny batches: checks that the script runs; "
                             "writes no results")
    for name, text in flags.items():
        parser.add_argument(f"--{name.replace('_', '-')}", action="store_true", help=text)
    try:
        main(**vars(parser.parse_args()))
    except TorchMissing as error:
        sys.exit(f"error: {error}")


def reference_network(batch: int, samples: int = SAMPLES, seed: int = 0):
    """``(config, model, head)``: the reference system at this batch size (64 = the full
    protocol's, 32 = the mini one's) for clips of ``samples`` samples and
    :data:`NUM_CLASSES` auxiliary classes, built as ``Detector.fit`` builds it
    (``detect.build_network``; ``models.TwoBranchEmbedder`` defaults, sub-cluster AdaCos
    with fixed sub-centres)."""
    config = dataclasses.replace(REFERENCE, batch_size=batch, progress=False)
    model, head = detect.build_network(config, NUM_CLASSES, (samples,), jax.random.key(seed))
    return config, model, head


def param_count(model: nnx.Module) -> int:
    return int(sum(np.size(v) for v in jax.tree.leaves(nnx.state(model, nnx.Param))))


def random_clips(n: int, samples: int, seed: int = 0) -> np.ndarray:
    """``n`` random float32 waveforms (the speed does not depend on the values)."""
    return np.random.default_rng(seed).normal(size=(n, samples)).astype(np.float32)


def machine() -> dict:
    """The processor, platform, JAX devices, XLA flags and the load average now."""
    return {"processor": platform.processor() or platform.machine(),
            "platform": platform.platform(), "cpu_count": os.cpu_count(),
            "jax_devices": [str(d) for d in jax.devices()],
            "xla_flags": os.environ.get("XLA_FLAGS"),
            "load_average_1min": os.getloadavg()[0]}


def versions(*packages: str) -> dict:
    return {name: version(name) for name in ("jax", "flax", "optax", *packages)}


def write(name: str, result: dict, *, skip: str | None = None) -> None:
    """``result`` as ``benchmarks/results/<name>``, unless ``skip`` says why not (e.g.
    "--quick")."""
    if skip:
        print(f"{skip}: {name} not written")
        return
    path = RESULTS / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {path}")
