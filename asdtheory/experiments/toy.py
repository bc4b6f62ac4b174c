"""``toy``: a seconds-long experiment that exercises the whole record machinery.

Synthetic "clips" are Gaussian feature vectors around one mean per machine; anomalies are
shifted along a random direction. A random projection followed by tanh embeds them; the
"trained" method moves the projection with Adam towards the compactness objective
(mean squared distance of the training embeddings to their initial centre, Deep SVDD), the
"untrained" method is its untrained twin. The anomaly score is the squared distance to the
centre. Nothing here is evidence for a claim; it is what the tests run.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax

from asdtheory.experiments.core import Experiment, Record, grid, register

MACHINES = ("fan", "valve")
DOMAINS = ("source", "target")
_SIZES = {"smoke": {"seeds": 2, "steps": 20, "clips": 8},
          "standard": {"seeds": 5, "steps": 100, "clips": 32},
          "full": {"seeds": 20, "steps": 200, "clips": 64}}


def units(size: str):
    spec = _SIZES[size]
    return grid(seeds=spec["seeds"], settings={"steps": spec["steps"], "clips": spec["clips"],
                                               "dim": 16, "embedding_dim": 8, "shift": 4.0,
                                               "learning_rate": 0.01},
                method=("trained", "untrained"))


def _draws(key, *, clips: int, dim: int, embedding_dim: int) -> dict:
    """All the normal draws of a unit from one call: each jax.random.normal in a program
    compiles its own copy of the generator, a second per copy on one core."""
    shapes = {"means": (len(MACHINES), 1, 1, dim), "direction": (dim,),
              "projection": (dim, embedding_dim),
              **{part: (len(MACHINES), len(DOMAINS), clips, dim)
                 for part in ("train", "normal", "anomalous")}}
    sizes = [int(np.prod(shape)) for shape in shapes.values()]
    flat = jnp.split(jax.random.normal(key, (sum(sizes),)), np.cumsum(sizes)[:-1])
    return {name: part.reshape(shape)
            for (name, shape), part in zip(shapes.items(), flat, strict=True)}


@functools.partial(jax.jit, static_argnames=("clips", "dim", "embedding_dim", "shift", "steps",
                                             "learning_rate"))
def _embed_and_score(key, *, clips: int, dim: int, embedding_dim: int, shift: float,
                     steps: int, learning_rate: float):
    """Test embeddings (normal clips, then anomalous; machine-major, then domain), their scores
    and the loss curve, as one compiled program."""
    draw = _draws(key, clips=clips, dim=dim, embedding_dim=embedding_dim)
    means = 2.0 * draw["means"]
    offset = shift * draw["direction"] / jnp.linalg.norm(draw["direction"])
    train = (means + draw["train"]).reshape(-1, dim)
    test = jnp.concatenate([(means + draw["normal"]).reshape(-1, dim),
                            (means + draw["anomalous"] + offset).reshape(-1, dim)])
    projection = draw["projection"] / jnp.sqrt(dim)
    centre = jnp.mean(jnp.tanh(train @ projection), axis=0)

    def loss(w):
        return jnp.mean(jnp.sum((jnp.tanh(train @ w) - centre) ** 2, axis=-1))

    optimiser = optax.adam(learning_rate)

    def step(carry, _):
        w, state = carry
        value, grad = jax.value_and_grad(loss)(w)
        updates, state = optimiser.update(grad, state)
        return (optax.apply_updates(w, updates), state), value

    (projection, _), curve = jax.lax.scan(step, (projection, optimiser.init(projection)),
                                          length=steps)
    embeddings = jnp.tanh(test @ projection)
    return embeddings, jnp.sum((embeddings - centre) ** 2, axis=-1), curve


def compute(config: dict, key) -> Record:
    steps = config["steps"] if config["method"] == "trained" else 0
    embeddings, scores, curve = _embed_and_score(
        key, clips=config["clips"], dim=config["dim"], embedding_dim=config["embedding_dim"],
        shift=config["shift"], steps=steps, learning_rate=config["learning_rate"])
    machine, domain, _ = np.meshgrid(np.arange(len(MACHINES)), np.arange(len(DOMAINS)),
                                     np.arange(config["clips"]), indexing="ij")
    labels = np.repeat([0, 1], machine.size)
    machine, domain = np.tile(machine.ravel(), 2), np.tile(domain.ravel(), 2)
    files = [f"section_00_{DOMAINS[d]}_test_{'anomaly' if y else 'normal'}_{i:04d}_toy.wav"
             for i, (d, y) in enumerate(zip(domain, labels, strict=True))]
    clips = {"file": np.asarray(files), "machine": np.asarray(MACHINES)[machine],
             "section": np.zeros(labels.size, int), "domain": np.asarray(DOMAINS)[domain],
             "label": labels, "anomaly_type": np.where(labels == 1, "shift", "none")}
    return Record(clips=clips, scores=np.asarray(scores),
                  arrays={"embeddings": np.asarray(embeddings), "loss_curve": np.asarray(curve)},
                  steps=steps, final_loss=float(curve[-1]) if steps else None)


register(Experiment(name="toy", version="1", units=units, compute=compute,
                    description="a random projection of synthetic clips (tests only)"))
