"""``c1``: embedding networks trained with each angular margin loss (claim C1.c).

Reference: K. Wilkinghoff and F. Kurth, "Why do angular margin losses work well for
semi-supervised anomalous sound detection?", IEEE/ACM TASLP 32 (2024), arXiv:2309.15643;
DESIGN.md, claims catalogue C1; issue 35 (item 4). C1.a (the bound) and C1.b (free
embeddings) are analytic or seconds-long and stay in notebook 01.

**Data.** Every seed draws fresh data (``data.synthetic.sphere_mixture``): ``classes`` = 8
labelled clusters on the unit sphere of R^32, ``train`` samples per class, concentration 16
(the classes overlap a little).

**Units.** method x seed, the methods the six angular margin losses of :data:`METHODS` with
the library's settings (fixed random centres; s = 30 and the default margins for the
fixed-scale losses, adaptive scales for the AdaCos family; M = 4 sub-centres / subspace
dimension). Each trains the MLP 32 -> 64 -> 64 -> 16 (ReLU, bias terms) with Adam (step 1e-3,
batch 64) for ``steps`` optimiser steps and records after every epoch the mean training loss,
the mean loss of the training embeddings at the head's *initial* scale s0
(``train.fixed_scale_loss_callback``: one objective for the whole run even where the scale
adapts; for the fixed-scale losses the loss itself) and the mean compactness 2 - 2 cos(theta_y)
w.r.t. the class centre (nearest sub-centre; own subspace for AdaProj).

**Records**, per training sample (the "clips", all label 0): ``score`` = its compactness
after training, ``twin_compactness`` the untrained network's (the same weights before the
first step), ``aux_class``, and per unit ``loss_settling`` (``train.settling`` of the training
loss), ``spearman`` (Spearman correlation over the epochs of the loss at s0 and the
compactness), ``spearman_training_loss`` (the same with the training loss itself, for
information: an adaptive scale makes every epoch's training loss another function) and
``final_loss``; arrays ``loss_curve``, ``loss_s0_curve``, ``compactness_curve`` and
``scale_curve`` (per epoch).

**Sizes.** ``standard`` = 6 losses x 10 seeds, 16 000 optimiser steps (2000 epochs of 8
steps): ~20 CPU-s a unit measured in-process (niced, one core; sub-cluster AdaCos, seed 0),
~25 with the worker's start-up, about 0.4 CPU-core-hours in all. ``full`` = 20 seeds,
32 000 steps. ``smoke`` exercises the code path.

**Decision.** :data:`CRITERIA`, pre-registered, decided by ``asdtheory.repro.c1.analyse`` from
``experiments.load_table("c1", size)``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from scipy.stats import spearmanr

from asdtheory import models, train
from asdtheory.experiments._toynets import clusters, head_options, key_seed, network
from asdtheory.experiments.core import Experiment, Record, Unit, register

__all__ = ["CRITERIA", "METHODS", "SIZES", "compute", "spearman", "units"]

METHODS = ("normalized-softmax", "arcface", "cosface", "adacos", "subcluster-adacos", "adaproj")

_COMMON = {"classes": 8, "dim": 32, "embed_dim": 16, "hidden": [64, 64], "concentration": 16.0,
           "batch_size": 64, "learning_rate": 1e-3}
SIZES = {
    "smoke": {"seeds": 2, "train": 8, "steps": 40},
    "standard": {"seeds": 10, "train": 64, "steps": 16_000},
    "full": {"seeds": 20, "train": 64, "steps": 32_000},
}


def units(size: str) -> list[Unit]:
    spec = dict(SIZES[size])
    seeds = spec.pop("seeds")
    return [Unit({"method": method, "seed": seed},
                 {**_COMMON, **spec, "head": head_options(method)})
            for method in METHODS for seed in range(seeds)]


def spearman(a, b) -> float:
    """Spearman's rank correlation of two curves (scipy, average ranks for ties); NaN when
    either is constant."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(spearmanr(a, b).statistic)


def compute(config: dict, key) -> Record:
    """One unit: the loss's network trained on the seed's clusters, its untrained weights'
    compactness beside the trained one, the curves per epoch."""
    data_key, model_key, train_key = jax.random.split(key, 3)
    n = config["classes"]
    x, y = clusters(data_key, classes=n, dim=config["dim"], per_class=config["train"],
                    concentration=config["concentration"])
    seed = key_seed(model_key)
    model = network(dim=config["dim"], embed_dim=config["embed_dim"], hidden=config["hidden"],
                    use_bias=True, activation="relu", seed=seed)
    head = models.make_head(config["method"], embed_dim=config["embed_dim"], num_classes=n,
                            rngs=nnx.Rngs(seed + 1), **config["head"])
    labels = jnp.asarray(y)
    twin = np.asarray(head.compactness(jnp.asarray(train.embed(model, x)), labels), np.float64)
    scale0 = float(head.scale[...])
    history = train.fit(
        model, head, x, y, key=train_key,
        config=train.TrainConfig(steps=config["steps"], batch_size=config["batch_size"],
                                 learning_rate=config["learning_rate"], progress=False),
        callbacks=[train.compactness_callback(x, y),
                   train.fixed_scale_loss_callback(x, y, scale=scale0), train.scale_callback()])
    final = np.asarray(head.compactness(jnp.asarray(train.embed(model, x)), labels), np.float64)
    curves = {"loss_curve": history["loss"], "loss_s0_curve": history["loss_fixed_scale"],
              "compactness_curve": history["compactness"], "scale_curve": history["scale"]}
    curves = {name: np.asarray(v, np.float64) for name, v in curves.items()}
    m = y.size
    per_unit = {
        "loss_settling": train.settling(curves["loss_curve"]),
        "spearman": spearman(curves["loss_s0_curve"], curves["compactness_curve"]),
        "spearman_training_loss": spearman(curves["loss_curve"], curves["compactness_curve"]),
        "final_loss": float(curves["loss_curve"][-1]),
    }
    clips = {"file": np.asarray([f"section_00_source_train_normal_{i:04d}_class_{c}.wav"
                                 for i, c in enumerate(y)]),
             "machine": np.full(m, "spheres"), "section": np.zeros(m, int),
             "domain": np.full(m, "source"), "label": np.zeros(m, int), "clip": np.arange(m),
             "aux_class": y.astype(int), "twin_compactness": twin,
             **{name: np.full(m, value) for name, value in per_unit.items()}}
    return Record(clips=clips, scores=final, arrays=curves, steps=config["steps"],
                  final_loss=per_unit["final_loss"])


# ----------------------------------------------------------------------------- the claims

CRITERIA = {
    "C1.c compactness": {
        "statement": "Training an embedding network with an angular margin loss until its loss "
                     "has settled lowers the compactness of the training embeddings w.r.t. "
                     "their class centres: the final compactness lies below the untrained "
                     "network's.",
        "measure": "reduction",
        "unit": "relative reduction",
        "comparisons": {method: method for method in METHODS},
        "delta": 0.5,
        "delta_reason": "half the untrained compactness: with random centres the untrained "
                        "embeddings are nearly orthogonal to their centres (compactness ~2, "
                        "theta ~90 deg); halving it takes the mean target angle to ~60 deg, "
                        "nearer the centre than orthogonal to it. A smaller reduction leaves "
                        "the embeddings closer to orthogonal to their centres than to them, "
                        "too little for the compactness to be what the loss minimises (the "
                        "earlier in-notebook criterion was the same factor)",
        "criterion": "per unit 1 - mean final compactness / mean untrained compactness over "
                     "the training samples; the mean over seeds with a hierarchical "
                     "bootstrap interval (seeds, then samples within class), one part per "
                     "loss decided by claims.decide; SUPPORTED iff every loss is "
                     "(claims.all_of)",
    },
    "C1.c together": {
        "statement": "The compactness falls together with the loss: over the epochs of "
                     "training, the loss at the head's initial scale and the compactness are "
                     "positively rank-correlated.",
        "measure": "spearman",
        "unit": "Spearman rho",
        "comparisons": {method: method for method in METHODS},
        "delta": 0.5,
        "delta_reason": "rho = 0.5 is the conventional lower end of a strong correlation "
                        "(Cohen's 'large'); below it the two curves share their order at only "
                        "about two in three pairs of epochs (Kendall tau ~ 0.35), too loose a "
                        "coupling to say the compactness falls *with* the loss",
        "criterion": "per unit Spearman's rho over the epochs between the mean training loss "
                     "at the head's initial scale s0 (the training loss itself for the "
                     "fixed-scale losses) and the mean compactness; a t-interval (95 %) over "
                     "seeds, one part per loss, decided by claims.decide; SUPPORTED iff every "
                     "loss is",
    },
}
# Both parts of C1.c are judged on runs whose training loss has settled: a run with
# train.settling(loss curve) >= train.SETTLED_BELOW makes the claim at most INCONCLUSIVE.
SETTLING = ("every run's training loss has settled: train.settling of its per-epoch loss "
            "(|mean of the last 10 % of epochs - mean of the 10 % before| / range of the "
            "curve) below train.SETTLED_BELOW; a loss that decays towards 0 meets it, unlike "
            "a relative change; otherwise C1.c is at most INCONCLUSIVE")

register(Experiment(name="c1", version="1", units=units, compute=compute,
                    description="C1.c: MLPs trained with each angular margin loss on "
                                "synthetic clusters"))
