"""``c2``: trivial solutions reached by training (claims C2.a.2 and C2.b).

Reference: K. Wilkinghoff and F. Kurth, "Why do angular margin losses work well for
semi-supervised anomalous sound detection?", IEEE/ACM TASLP 32 (2024), arXiv:2309.15643;
L. Ruff et al., "Deep one-class classification", ICML 2018 (Prop. 1-3: bias terms, a trainable
centre and bounded activations admit the constant solution; their code trains with Adam and a
*coupled* L2 penalty, ``torch.optim.Adam(weight_decay=...)``); DESIGN.md, claims catalogue C2;
issue 35 (item 4). C2.a.1 (the hand-built trivial networks), C2.b's constant-embedding bound
and C2.c are cheap analytic checks that stay in notebook 02.

**Data.** Every seed draws fresh data (``data.synthetic.sphere_mixture``, concentration 16):
``classes`` labelled clusters on the unit sphere of R^32 (the auxiliary task; ``train`` normal
training and ``test`` normal test samples per class) and as many anomalies from ``classes``
other clusters. The test "clips" are the normal and anomalous test samples.

**Units.** method x seed; each unit trains its network at every weight decay of
:data:`WEIGHT_DECAYS` (a condition within the unit, from the same initial weights), with Adam
(step 1e-3, batch 64) and the weight decay as a coupled L2 penalty
(``train.TrainConfig(weight_decay=...)``: gradient + wd * w before Adam, as Ruff et al.'s
code), for ``steps`` optimiser steps. The methods (:data:`METHODS`):

- Deep SVDD (:data:`SVDD`) on the MLP 32 -> 64 -> 64 -> 16: the remedied control (no bias, centre
  fixed to the mean of an initial forward pass, ReLU), each of Ruff et al.'s ingredients
  alone -- (i) bias terms, (ii) a trainable centre, (iii) sigmoid activations -- and all
  three together;
- the angular margin losses (:data:`ANGULAR`) on the all-ingredients network (bias terms,
  sigmoid, trainable class centres; AdaProj keeps its fixed random subspaces, it has none to
  train), at settings that can learn the task: ArcFace at the margin chosen on a calibration
  key (:data:`ARCFACE`, ``c2_calibration.json``; there s = 30, m = 0.5 reached training
  accuracy >= 0.998 at every weight decay, its loss above H: a margin's loss is no measure of
  learning, so the rule kept it), AdaCos, sub-cluster AdaCos and AdaProj at the library's
  settings (M = 4). On the calibration key AdaCos diverged to NaN at weight decay 1e-2
  (recorded as ``diverged``; its part of the verdict is then undecided).

**Records**, per test sample and weight decay (``weight_decay``): the anomaly score (Deep
SVDD: ||phi(x) - c||^2; angular: 1 - max_k cos, the nearest (sub-)centre or subspace), the
untrained twin's (``twin_score``), and per run: ``rel_spread`` (the collapse measure,
:func:`relative_spread`), ``train_accuracy`` (the head's classification of the training
samples; NaN for Deep SVDD), ``final_loss`` and ``initial_loss`` (mean training loss of the
trained and untrained network; for angular heads both at the head's initial scale),
``prior_entropy`` (H of the training labels), ``loss_settling`` and ``spread_settling``
(``train.settling`` of the loss and of the relative spread per epoch), ``diverged`` (1 when
the trained network's outputs are NaN or infinite: then no measure is defined, the measures
are NaN and the scores 0, since a record's scores must be finite); arrays
``loss_curve_<wd>`` and ``spread_curve_<wd>`` (per epoch).

**Sizes.** ``standard`` = 9 methods x 5 seeds, 3 weight decays each, 25 600 optimiser steps
(3200 epochs of 8 steps; Deep SVDD's and AdaCos' losses settled well within it in trials):
one training ~12 CPU-s measured (niced, one core; the per-epoch bookkeeping dominates),
~40 CPU-s a unit with its three trainings and start-up, about 0.5 CPU-core-hours in all.
``full`` = 20 seeds and 51 200 steps. ``smoke`` exercises the code path.

**Decision.** :data:`CRITERIA`, pre-registered, decided by ``asdtheory.repro.c2.analyse``
from ``experiments.load_table("c2", size)``: per (method, weight decay), a t-interval over
seeds of the log10 relative spread against the collapse threshold :data:`COLLAPSE_BELOW`, and
for the angular losses of the training accuracy over chance.
"""

from __future__ import annotations

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from asdtheory import bounds, models, train
from asdtheory.experiments._toynets import (
    class_compactness,
    clusters,
    head_options,
    key_seed,
    network,
    predicted_class,
    spread,
)
from asdtheory.experiments.core import Experiment, Record, Unit, register

__all__ = ["ANGULAR", "ARCFACE", "CALIBRATION_FILE", "CALIBRATION_SEED", "COLLAPSE_BELOW",
           "CRITERIA", "METHODS", "SIZES", "SVDD", "WEIGHT_DECAYS", "calibrate", "compute",
           "relative_spread", "train_run", "units"]

WEIGHT_DECAYS = ("1e-6", "1e-4", "1e-2")
# Deep SVDD settings: (bias terms, trainable centre, activation).
SVDD = {"svdd-control": (False, False, "relu"), "svdd-bias": (True, False, "relu"),
        "svdd-centre": (False, True, "relu"), "svdd-sigmoid": (False, False, "sigmoid"),
        "svdd-all": (True, True, "sigmoid")}
ANGULAR = ("arcface", "adacos", "subcluster-adacos", "adaproj")
METHODS = (*SVDD, *ANGULAR)
# The collapse threshold: the spread of the test embeddings at most 1 % of the untrained
# network's (see CRITERIA for the reason).
COLLAPSE_BELOW = 0.01

CALIBRATION_FILE = Path(__file__).with_name("c2_calibration.json")
# The calibration's own key: jax.random.key(CALIBRATION_SEED), never a unit's seed.
CALIBRATION_SEED = 999_961
# ArcFace's settings, chosen on the calibration key (``calibrate``): the largest margin of
# CALIBRATION_MARGINS at the library's scale s = 30 whose run learns the task (training accuracy
# >= CALIBRATION_ACCURACY) at every weight decay.
CALIBRATION_MARGINS = (0.5, 0.3, 0.2, 0.1, 0.05)
CALIBRATION_ACCURACY = 0.9


def _arcface_settings() -> dict:
    if not CALIBRATION_FILE.exists():
        return {"scale": 30.0, "margin": 0.5}
    chosen = json.loads(CALIBRATION_FILE.read_text())["chosen"]
    return {"scale": float(chosen["scale"]), "margin": float(chosen["margin"])}


ARCFACE = _arcface_settings()

_COMMON = {"classes": 4, "dim": 32, "embed_dim": 16, "hidden": [64, 64], "concentration": 16.0,
           "batch_size": 64, "learning_rate": 1e-3, "weight_decays": list(WEIGHT_DECAYS)}
SIZES = {
    "smoke": {"seeds": 2, "train": 16, "test": 8, "steps": 64},
    "standard": {"seeds": 5, "train": 128, "test": 64, "steps": 25_600},
    "full": {"seeds": 20, "train": 128, "test": 64, "steps": 51_200},
}


def method_settings(method: str) -> dict:
    """The network and head of ``method``: bias, trainable centre(s), activation, head
    options (JSON-able; they are part of the unit's config)."""
    if method in SVDD:
        bias, trainable, activation = SVDD[method]
        return {"use_bias": bias, "trainable_centres": trainable, "activation": activation,
                "head": {}}
    return {"use_bias": True, "trainable_centres": method != "adaproj",
            "activation": "sigmoid",
            "head": head_options(method, dict(ARCFACE) if method == "arcface" else None)}


def units(size: str) -> list[Unit]:
    spec = dict(SIZES[size])
    seeds = spec.pop("seeds")
    return [Unit({"method": method, "seed": seed},
                 {**_COMMON, **spec, "network": method_settings(method)})
            for method in METHODS for seed in range(seeds)]


# ----------------------------------------------------------------------------- the measure

def relative_spread(z, z_untrained, *, normalise: bool) -> float:
    """The collapse measure: spread(z) / spread(z_untrained), spread = sqrt(mean_i ||z_i -
    mean z||^2) over all test samples (normal and anomalous), of the unit vectors for an
    angular head (``normalise``), of the raw embeddings for Deep SVDD. Scale-free (a ratio of
    two spreads in one space); 0 for a network that maps every input to one point."""
    return spread(z, normalise=normalise) / spread(z_untrained, normalise=normalise)


# ----------------------------------------------------------------------------- one unit

def _data(config: dict, key):
    k_normal, k_anomalous = jax.random.split(key)
    n, per = config["classes"], config["train"] + config["test"]
    x, y = clusters(k_normal, classes=n, dim=config["dim"], per_class=per,
                    concentration=config["concentration"])
    anomalous, _ = clusters(k_anomalous, classes=n, dim=config["dim"], per_class=config["test"],
                            concentration=config["concentration"])
    is_train = np.arange(y.size) % per < config["train"]
    return {"x_train": x[is_train], "y_train": y[is_train],
            "x_test": np.concatenate([x[~is_train], anomalous]),
            "y_test": np.r_[y[~is_train], np.full(len(anomalous), -1)],
            "label": np.r_[np.zeros(int((~is_train).sum()), int), np.ones(len(anomalous), int)]}


def _scores(method: str, head, z, num_classes: int) -> np.ndarray:
    if method in SVDD:
        return np.asarray(head(jnp.asarray(z)), np.float64)
    return np.min(class_compactness(head, z, num_classes), axis=1) / 2.0


def train_run(config: dict, data: dict, *, weight_decay: float, model_seed: int,
              train_key) -> dict:
    """One training of the unit's method at ``weight_decay`` from the weights of
    ``model_seed``: the trained and untrained test scores, the collapse measure, training
    accuracy, losses and per-epoch curves."""
    method, settings = config["method"], config["network"]
    n = config["classes"]
    angular = method not in SVDD
    model = network(dim=config["dim"], embed_dim=config["embed_dim"], hidden=config["hidden"],
                    use_bias=settings["use_bias"], activation=settings["activation"],
                    seed=model_seed)
    head = models.make_head(method if angular else "deep-svdd", embed_dim=config["embed_dim"],
                            num_classes=n if angular else 1, rngs=nnx.Rngs(model_seed + 1),
                            trainable_centres=settings["trainable_centres"], **settings["head"])
    x, y = data["x_train"], data["y_train"]
    if not angular:  # Ruff et al.: c from an initial forward pass, then (unless (ii)) fixed
        head.set_centre(train.embed(model, x))
    z0 = train.embed(model, data["x_test"])
    twin_score = _scores(method, head, z0, n)
    scale0 = float(head.scale[...]) if angular else None

    def mean_loss(model):
        z = jnp.asarray(train.embed(model, x))
        values = head.loss_at_scale(z, jnp.asarray(y), scale=scale0) if angular else head(z)
        return float(jnp.mean(values))

    initial_loss = mean_loss(model)
    spread0 = spread(z0, normalise=angular)

    def spread_callback(model, head):
        return {"spread": spread(train.embed(model, data["x_test"]), normalise=angular)
                / spread0}

    config_train = train.TrainConfig(steps=config["steps"], batch_size=config["batch_size"],
                                     learning_rate=config["learning_rate"],
                                     weight_decay=weight_decay, progress=False)
    history = train.fit(model, head, x, y if angular else None, config=config_train,
                        key=train_key, callbacks=[spread_callback])
    z = train.embed(model, data["x_test"])
    z_train = train.embed(model, x)
    loss_curve = np.asarray(history["loss"], np.float64)
    spread_curve = np.asarray(history["spread"], np.float64)
    run = {"twin_score": twin_score, "initial_loss": initial_loss, "loss_curve": loss_curve,
           "spread_curve": spread_curve, "loss_settling": train.settling(loss_curve),
           "spread_settling": train.settling(spread_curve)}
    if not (np.all(np.isfinite(z)) and np.all(np.isfinite(z_train))):
        # Diverged (the network's outputs are NaN or infinite): no measure is defined. A
        # record's scores must be finite, so they are 0 here, flagged by ``diverged``.
        nan = float("nan")
        return {**run, "diverged": 1, "score": np.zeros(len(z)), "rel_spread": nan,
                "train_accuracy": nan, "final_loss": nan}
    accuracy = (float(np.mean(predicted_class(head, z_train, n) == y))
                if angular else float("nan"))
    return {**run, "diverged": 0, "score": _scores(method, head, z, n),
            "rel_spread": relative_spread(z, z0, normalise=angular),
            "train_accuracy": accuracy, "final_loss": mean_loss(model)}


def compute(config: dict, key) -> Record:
    """One unit: the method trained at every weight decay from the same initial weights."""
    data_key, model_key, train_key = jax.random.split(key, 3)
    data = _data(config, data_key)
    model_seed = key_seed(model_key)
    prior_entropy = float(bounds.constant_embedding_bound(np.bincount(data["y_train"])))
    per_run = ("score", "twin_score")
    scalars = ("diverged", "rel_spread", "train_accuracy", "final_loss", "initial_loss",
               "loss_settling", "spread_settling")
    columns: dict[str, list] = {name: [] for name in (*per_run, *scalars)}
    arrays, conditions = {}, []
    n = data["label"].size
    for wd in config["weight_decays"]:
        run = train_run(config, data, weight_decay=float(wd), model_seed=model_seed,
                        train_key=train_key)
        for name in per_run:
            columns[name].append(run[name])
        for name in scalars:
            columns[name].append(np.full(n, run[name]))
        arrays[f"loss_curve_{wd}"] = run["loss_curve"]
        arrays[f"spread_curve_{wd}"] = run["spread_curve"]
        conditions.append(np.full(n, wd))
    runs = len(config["weight_decays"])
    label = np.tile(data["label"], runs)
    clip = np.tile(np.arange(n), runs)
    weight_decay = np.concatenate(conditions)
    clips = {
        "file": np.asarray([f"section_00_source_test_{'anomaly' if y else 'normal'}_{i:04d}_"
                            f"wd_{wd}.wav" for i, y, wd in zip(clip, label, weight_decay,
                                                               strict=True)]),
        "machine": np.full(label.size, "spheres"), "section": np.zeros(label.size, int),
        "domain": np.full(label.size, "source"), "label": label, "clip": clip,
        "aux_class": np.tile(data["y_test"], runs).astype(int), "weight_decay": weight_decay,
        "twin_score": np.concatenate(columns["twin_score"]),
        **{name: np.concatenate(columns[name]) for name in scalars},
        "prior_entropy": np.full(label.size, prior_entropy),
    }
    last = arrays[f"loss_curve_{config['weight_decays'][-1]}"]
    return Record(clips=clips, scores=np.concatenate(columns["score"]), arrays=arrays,
                  steps=config["steps"] * runs, final_loss=float(last[-1]))


# ----------------------------------------------------------------------------- calibration

def calibrate(size: str = "standard", *, margins=CALIBRATION_MARGINS) -> dict:
    """ArcFace's margin for the standard run, on the calibration key (no unit uses it): at the
    library's scale s = 30, each margin of ``margins`` in turn (largest first) trained at every
    weight decay in the C2.b network; the first whose training accuracy reaches
    :data:`CALIBRATION_ACCURACY` at every weight decay is chosen. The other angular losses at
    their settings are recorded beside it (accuracy and final loss per weight decay).
    ``python -m asdtheory.experiments.c2`` writes the result to ``c2_calibration.json``."""
    key = jax.random.key(CALIBRATION_SEED)
    base = next(u for u in units(size) if u.factors["method"] == "arcface").config
    data_key, model_key, train_key = jax.random.split(key, 3)
    data = _data(base, data_key)
    model_seed = key_seed(model_key)

    def trial(method: str, options: dict | None) -> dict:
        config = {**base, "method": method,
                  "network": {**method_settings(method), "head": head_options(method, options)}}
        out = {}
        for wd in WEIGHT_DECAYS:
            run = train_run(config, data, weight_decay=float(wd), model_seed=model_seed,
                            train_key=train_key)
            out[wd] = {"diverged": run["diverged"], "train_accuracy": run["train_accuracy"],
                       "final_loss": run["final_loss"], "rel_spread": run["rel_spread"],
                       "loss_settling": run["loss_settling"]}
        return out

    result = {"seed": CALIBRATION_SEED, "size": size, "rule": (
        f"the largest margin of {list(margins)} at scale 30 whose training accuracy reaches "
        f"{CALIBRATION_ACCURACY} at every weight decay of {list(WEIGHT_DECAYS)}"),
        "prior_entropy": float(bounds.constant_embedding_bound(np.bincount(data["y_train"]))),
        "arcface": {}, "others": {}, "chosen": None}
    for margin in margins:
        runs = trial("arcface", {"scale": 30.0, "margin": margin})
        result["arcface"][str(margin)] = runs
        if all(r["train_accuracy"] >= CALIBRATION_ACCURACY for r in runs.values()):  # NaN: no
            result["chosen"] = {"scale": 30.0, "margin": margin}
            break
    for method in ANGULAR[1:]:
        result["others"][method] = trial(method, None)
    return result


# ----------------------------------------------------------------------------- the claims

_GRID = [(m, wd) for m in METHODS for wd in WEIGHT_DECAYS]
CRITERIA = {
    "C2.a.2": {
        "statement": "Deep SVDD trained with coupled L2 weight decay (Ruff et al.'s optimiser) "
                     "collapses with (i) bias terms, (ii) a trainable centre, (iii) sigmoid "
                     "activations and all three together, each at some weight decay of the range "
                     "(the trivial solution is reachable by training), while the remedied "
                     "network (no bias, fixed centre, ReLU) collapses at none.",
        "measure": "log10 rel_spread",
        "unit": "decades",
        # (method, weight decay, sign): +1: the claim predicts a collapse (log10 spread below
        # the threshold), -1: predicts none (above it).
        "comparisons": {f"{m} wd={wd}": (m, wd, -1.0 if m == "svdd-control" else 1.0)
                        for m, wd in _GRID if m in SVDD},
        # A predicted collapse holds if it holds at some weight decay (reachability); a
        # predicted non-collapse (the control) must hold at every one.
        "collapse_at_some_weight_decay": True,
        "threshold": COLLAPSE_BELOW,
        "threshold_reason": "a network whose test embeddings, normal and anomalous alike, lie "
                            "within 1 % of the spread its untrained twin gives them has removed "
                            "99 % of its input dependence: a constant map up to a remainder two "
                            "orders of magnitude below where it started (the same threshold as "
                            "the earlier in-notebook check)",
        "delta": float(np.log10(2.0)),
        "delta_reason": "a factor 2 (0.3 decades) beyond the threshold: the threshold is a "
                        "round number, and a spread within a factor 2 of it is within the "
                        "precision with which 1 % was chosen; an effect smaller than that says "
                        "nothing about which side of a reasonable threshold the run is on",
        "criterion": "per unit and weight decay the relative spread of the test embeddings "
                     "(all normal and anomalous test samples; raw for Deep SVDD), "
                     "sign x (log10(threshold) - log10 rel_spread), a t-interval (95 %) over "
                     "seeds, each decided by claims.decide against delta; per method a predicted "
                     "collapse holds if it holds at some weight decay (claims.any_of: "
                     "reachability is an existence claim) and a predicted non-collapse if it "
                     "holds at every one (claims.all_of), the methods combined by "
                     "claims.all_of; at most INCONCLUSIVE "
                     "when a run's training loss has not settled (train.settling >= "
                     "train.SETTLED_BELOW)",
    },
    "C2.b": {
        "statement": "The same networks, optimiser and weight decays with each angular margin "
                     "loss (bias terms, sigmoid activations, trainable centres) keep "
                     "non-collapsed embeddings.",
        "measure": "log10 rel_spread",
        "unit": "decades",
        "comparisons": {f"{m} wd={wd}": (m, wd, -1.0) for m, wd in _GRID if m in ANGULAR},
        "threshold": COLLAPSE_BELOW,
        "threshold_reason": "the collapse threshold of C2.a.2, on the unit vectors the cosine "
                            "logits and the score see",
        "delta": float(np.log10(2.0)),
        "delta_reason": "as C2.a.2's",
        "criterion": "as C2.a.2, relative spread of the L2-normalised test embeddings, the "
                     "claim predicting no collapse for every (loss, weight decay)",
    },
    "C2.b task": {
        "statement": "Each angular margin loss learns the auxiliary task in that regime: its "
                     "training accuracy exceeds chance.",
        "measure": "train_accuracy - chance",
        "unit": "accuracy over chance",
        "comparisons": {f"{m} wd={wd}": (m, wd, 1.0) for m, wd in _GRID if m in ANGULAR},
        "delta": 0.25,
        "delta_reason": "twice the chance accuracy of 4 balanced classes (0.25 + 0.25): a "
                        "network that classifies half its training samples correctly has "
                        "learned something of the task that a constant map (accuracy 1/N at "
                        "best) cannot; less would be a weak task, not a learned one",
        "criterion": "per unit and weight decay the share of training samples whose nearest "
                     "(sub-)centre or subspace is their class's, minus 1/N, a t-interval over "
                     "seeds, decided by claims.decide; reported separately from C2.b so that "
                     "'did not collapse' and 'did not learn the task' are told apart",
    },
}

register(Experiment(name="c2", version="1", units=units, compute=compute,
                    description="C2.a.2, C2.b: Deep SVDD and angular margin losses trained with "
                                "coupled L2 on synthetic clusters"))


if __name__ == "__main__":  # the calibration: python -m asdtheory.experiments.c2
    CALIBRATION_FILE.write_text(json.dumps(calibrate(), indent=1) + "\n")
