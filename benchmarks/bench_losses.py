"""Forward + backward of ArcFace and sub-cluster AdaCos: jitted JAX vs pytorch-metric-learning.

Batch 256, embedding size 256, 1024 classes (3 sub-centres each for the sub-centre losses),
gradients w.r.t. embeddings and centres, float32 on the CPU, both measured in this one run,
interleaved. pytorch-metric-learning has no sub-cluster AdaCos; its SubCenterArcFaceLoss does
the same work (a (B, D) x (D, N M) cosine matrix, a reduction over sub-centres, softmax
cross-entropy) and is the reference for that row.

The matmul column: a plain ``jnp.dot`` of the cosine-matrix shape, timed alone; the fraction
is 3 such products (forward cosines, gradient w.r.t. embeddings, gradient w.r.t. centres)
divided by the measured loss step -- how close the step gets to this CPU's matmul throughput.

    pip install -c constraints.txt -e ".[dev,bench]"
    python benchmarks/bench_losses.py            # writes benchmarks/results/losses.json
"""

from __future__ import annotations

import json
import math
import platform
from pathlib import Path

import jax
import jax.numpy as jnp

from asdtheory import losses
from asdtheory.repro import bench

BATCH, DIM, CLASSES, SUBCENTRES = 256, 256, 1024, 3
SCALE, MARGIN = 64.0, 0.5
REPEATS = 30


def jax_step(loss_fn, centres_shape):
    key = jax.random.PRNGKey(0)
    kx, kc, ky = jax.random.split(key, 3)
    x = jax.random.normal(kx, (BATCH, DIM))
    c = jax.random.normal(kc, centres_shape)
    y = jax.random.randint(ky, (BATCH,), 0, CLASSES)
    grad = jax.jit(jax.value_and_grad(lambda x, c: loss_fn(x, c, y).mean(), argnums=(0, 1)))
    return lambda: jax.block_until_ready(grad(x, c))


def torch_step(loss_module):
    import torch

    torch.manual_seed(0)
    x = torch.randn(BATCH, DIM, requires_grad=True)
    y = torch.randint(0, CLASSES, (BATCH,))

    def step():
        loss_module.zero_grad(set_to_none=True)
        x.grad = None
        loss_module(x, y).backward()

    return step


def main() -> dict:
    import pytorch_metric_learning
    import torch
    from pytorch_metric_learning.losses import ArcFaceLoss, SubCenterArcFaceLoss

    pml = {"num_classes": CLASSES, "embedding_size": DIM, "margin": math.degrees(MARGIN),
           "scale": SCALE}
    cases = {
        "arcface fwd+bwd": (
            jax_step(lambda x, c, y: losses.arcface(x, c, y, scale=SCALE, margin=MARGIN),
                     (CLASSES, DIM)),
            torch_step(ArcFaceLoss(**pml)),
            "pytorch-metric-learning ArcFaceLoss",
            CLASSES,
        ),
        "subcluster_adacos fwd+bwd": (
            jax_step(lambda x, c, y: losses.subcluster_adacos(x, c, y, scale=SCALE),
                     (CLASSES, SUBCENTRES, DIM)),
            torch_step(SubCenterArcFaceLoss(**pml, sub_centers=SUBCENTRES)),
            "pytorch-metric-learning SubCenterArcFaceLoss",
            CLASSES * SUBCENTRES,
        ),
    }
    rows = []
    for name, (jax_fn, torch_fn, reference, width) in cases.items():
        a = jnp.ones((BATCH, DIM))
        b = jnp.ones((DIM, width))
        dot = jax.jit(jnp.dot)
        t_dot = bench.median_seconds(lambda a=a, b=b, dot=dot: dot(a, b).block_until_ready(),
                                     REPEATS)
        t_jax, t_torch = [], []
        for _ in range(3):  # interleave so that a busy moment hurts both sides alike
            t_jax.append(bench.median_seconds(jax_fn, REPEATS // 3))
            t_torch.append(bench.median_seconds(torch_fn, REPEATS // 3))
        t_jax, t_torch = min(t_jax), min(t_torch)
        rows.append({
            "case": name,
            "reference": reference,
            "ours_ms": round(1e3 * t_jax, 3),
            "reference_ms": round(1e3 * t_torch, 3),
            "ratio": round(t_torch / t_jax, 2),
            "matmul_ms": round(1e3 * t_dot, 3),
            "fraction_of_matmul_throughput": round(3 * t_dot / t_jax, 2),
        })
    result = {
        "benchmark": "loss forward+backward",
        "shapes": {"batch": BATCH, "dim": DIM, "classes": CLASSES, "subcentres": SUBCENTRES},
        "versions": {"jax": jax.__version__, "torch": torch.__version__,
                     "pytorch_metric_learning": pytorch_metric_learning.__version__},
        "machine": {"processor": platform.processor() or platform.machine(),
                    "torch_threads": torch.get_num_threads()},
        "rows": rows,
    }
    print(f"{'case':28s} {'JAX ms':>8s} {'PML ms':>8s} {'speedup':>8s} {'of matmul':>10s}")
    for r in rows:
        print(f"{r['case']:28s} {r['ours_ms']:8.2f} {r['reference_ms']:8.2f} "
              f"{r['ratio']:7.2f}x {r['fraction_of_matmul_throughput']:10.2f}")
    out = Path(__file__).parent / "results" / "losses.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
