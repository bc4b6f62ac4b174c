"""One training loop for every objective: angular margin losses, Deep SVDD, autoencoder.

``fit(model, head, inputs, labels, *, config, key)`` trains a network from
``asdtheory.models`` with a loss head (``models.make_head``) by minibatch gradient descent
with optax, and returns a :class:`History` of per-epoch metrics::

    model = models.MLPEmbedder(16, 8, rngs=nnx.Rngs(0))
    head = models.make_head("adacos", embed_dim=8, num_classes=4, rngs=nnx.Rngs(1))
    history = fit(model, head, x, y, config=TrainConfig(epochs=20), key=jax.random.key(2),
                  callbacks=[compactness_callback(x, y), scale_callback()])
    history["loss"], history["compactness"], history["scale"]   # one value per epoch
    z = embed(model, x_test)

How it runs:

* the model and head are split once into parameters (``nnx.Param``) and the rest (fixed
  centres, AdaCos scale); one pure step maps (params, rest, optimiser state, batch, key) to
  new ones; ``model`` and ``head`` are updated in place at the end of every epoch (so
  callbacks see the current state) -- no ``nnx.jit`` overhead per step;
* two ways to run an epoch, chosen by ``TrainConfig.loop``: "compiled" places the training
  data on the device once and runs each epoch as one ``jax.jit``-compiled loop over its
  steps; "stepwise" gathers each batch on the host and calls a jitted step. "auto" (the
  default) picks per platform in one place, :func:`compiled_loop_default`: the compiled
  loop for data up to :data:`DEVICE_DATA_BYTES` in a single-process run, except on the CPU
  for networks that declare ``convolutional = True`` (XLA's CPU backend runs convolutions
  inside a compiled loop many times slower). Both run the same steps on the same batches
  with the same keys; XLA may round the compiled loop differently from the single step
  (float32 rounding; for many shapes the parameters agree bit for bit);
* data parallelism: the batch is sharded over a 1-d ``jax.sharding`` mesh of all devices
  (``devices=``) and the parameters are replicated; XLA inserts the gradient all-reduce. The
  same code runs on one CPU, several GPUs or several hosts after ``jax.distributed``
  initialisation (each process then holds the full training arrays and feeds its share of
  every batch; orbax writes the checkpoint once; ``asdtheory run --coordinator ...``);
* explicit keys: epoch e uses ``fold_in(key, e)`` for its shuffle and mixup draws, so the
  same key gives bit-identical parameters on the CPU, and a run resumed from a checkpoint
  continues exactly as an uninterrupted one;
* budget: every epoch is ``ceil(n / batch_size)`` steps over a fresh permutation of the n
  examples; when n is not a multiple of the batch size, the last batch is topped up with the
  first examples of that same permutation, so every example is used in every epoch and every
  batch has the same shape (one compilation). ``TrainConfig.steps`` fixes the total number of
  optimiser steps instead of the number of epochs (the last epoch may then be partial), so
  that methods with different batch sizes can be compared at equal optimiser steps;
* batch norm: the steps normalise with batch statistics; at the end of training
  :func:`recompute_batch_stats` sets every layer's running statistics to the population
  statistics of the training inputs under the final weights
  (``TrainConfig.recompute_batch_stats``), so that the evaluation mode (embeddings, scores)
  normalises as the trained weights expect;
* Deep SVDD heads get their centre from an initial forward pass before the first step, in
  the mode the scores use: evaluation mode with the batch-norm statistics recomputed for
  the untrained network first (see :func:`fit`);
* settling: :func:`settling` and :data:`SETTLED_BELOW` state when a loss curve has
  flattened, the one criterion the experiments and the command line report.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
from flax import nnx
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P
from tqdm import tqdm

from asdtheory._validation import check_scalar

__all__ = [
    "DEVICE_DATA_BYTES",
    "LOOPS",
    "SETTLED_BELOW",
    "Callback",
    "History",
    "TrainConfig",
    "compactness_callback",
    "compiled_loop_default",
    "embed",
    "embedding_callback",
    "fit",
    "fixed_scale_loss_callback",
    "load_checkpoint",
    "mixup",
    "recompute_batch_stats",
    "reconstruct",
    "save_checkpoint",
    "scale_callback",
    "settling",
]

LOOPS = ("auto", "compiled", "stepwise")
# A callback maps the current (model, head) to named floats, recorded once per epoch.
Callback = Callable[[nnx.Module, nnx.Module], Mapping[str, float]]


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of :func:`fit`.

    Attributes:
      epochs: passes over the training set, each of ``ceil(n / batch_size)`` steps (the last
        batch topped up with the first examples of the epoch's permutation). Ignored when
        ``steps`` is set.
      batch_size: examples per step (a multiple of the number of devices).
      learning_rate: Adam step size.
      weight_decay: coupled L2 penalty, as PyTorch's ``Adam(weight_decay=...)`` and Ruff et
        al.'s Deep SVDD code: the gradient gets ``+ weight_decay * w`` before Adam's moment
        estimates and scaling (``optax.chain(optax.add_decayed_weights(wd),
        optax.adam(lr))``), i.e. Adam on loss + (wd / 2) ||w||^2; applied to every
        ``nnx.Param`` (weights, biases, trainable centres). Not AdamW's decoupled decay.
      mixup_alpha: mixup Beta(alpha, alpha) parameter (Zhang et al., ICLR 2018); 0 = off.
        Only for heads that accept soft labels (not arcface/cosface/deep-svdd/autoencoder).
      progress: show a tqdm bar with the loss.
      loop: how an epoch runs: "compiled" (data on the device, one compiled loop per
        epoch), "stepwise" (batches fed from the host to a jitted step) or "auto"
        (:func:`compiled_loop_default`); the same steps either way (module docstring).
      steps: total number of optimiser steps; when set it decides the budget instead of
        ``epochs`` (which is then ignored): ``ceil(steps / steps_per_epoch)`` epochs run
        (``steps_per_epoch = ceil(n / batch_size)``), the last one possibly partial (it
        stops after the remaining steps), and the history has one entry per epoch run.
        0: no optimiser step at all (the history stays empty): the *untrained twin* of a
        system, its initialisation (and Deep SVDD's centre from the initial pass) scored
        as the trained system is. None: ``epochs`` full epochs. See :meth:`schedule`.
      recompute_batch_stats: after training (and, for Deep SVDD, before the centre is set)
        set the running statistics of every batch-norm layer to the population statistics
        of the training inputs (:func:`recompute_batch_stats`). False keeps the running
        averages of the training steps (momentum 0.99 for ``models.TwoBranchEmbedder``,
        Keras' default, which after a few hundred steps still lag far behind the weights);
        networks without batch norm are the same either way.
    """

    epochs: int = 20
    batch_size: int = 32
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    mixup_alpha: float = 0.0
    progress: bool = True
    steps: int | None = None
    loop: str = "auto"
    recompute_batch_stats: bool = True

    def __post_init__(self):
        if self.loop not in LOOPS:
            raise ValueError(f"loop must be one of {LOOPS}, got {self.loop!r}.")
        check_scalar(self.epochs, "epochs", low=1, integer=True)
        check_scalar(self.batch_size, "batch_size", low=1, integer=True)
        if self.steps is not None:
            check_scalar(self.steps, "steps", low=0, integer=True)
        check_scalar(self.learning_rate, "learning_rate", low=0.0)
        check_scalar(self.weight_decay, "weight_decay", low=0.0)
        check_scalar(self.mixup_alpha, "mixup_alpha", low=0.0)

    @classmethod
    def tiny(cls, **overrides) -> TrainConfig:
        """A few epochs of small batches without a progress bar: for tests and examples."""
        return cls(**{"epochs": 3, "batch_size": 8, "learning_rate": 1e-2, "progress": False,
                      **overrides})

    def optimizer(self) -> optax.GradientTransformation:
        """Adam with ``weight_decay`` as a coupled L2 penalty (see the class docstring)."""
        if self.weight_decay > 0:
            return optax.chain(optax.add_decayed_weights(self.weight_decay),
                               optax.adam(self.learning_rate))
        return optax.adam(self.learning_rate)

    def schedule(self, num_examples: int) -> list[int]:
        """Optimiser steps of every epoch for ``num_examples`` training examples: each
        epoch ``ceil(num_examples / batch_size)`` steps, ``epochs`` of them or, with
        ``steps``, as many as reach ``steps`` in total (the last one possibly fewer)."""
        check_scalar(num_examples, "num_examples", low=1, integer=True)
        per_epoch = -(-int(num_examples) // self.batch_size)
        if self.steps is None:
            return [per_epoch] * self.epochs
        full, rest = divmod(self.steps, per_epoch)
        return [per_epoch] * full + ([rest] if rest else [])


class History(dict):
    """Per-epoch metrics: ``history[name]`` is a list with one float per epoch.

    Always holds "loss" (mean training loss of the epoch's steps); callbacks add their own
    names (e.g. "compactness", "scale", "effective_rank").
    """

    def append(self, metrics: Mapping[str, float]) -> None:
        for name, value in metrics.items():
            self.setdefault(name, []).append(float(value))


# A training loss has settled when the mean of its last 10 % of epochs differs from that of
# the 10 % before by less than 5 % of the curve's range (max - min): the curve has flattened
# on the scale of how far it moved. The range, not the drop from the first epoch, because the
# adaptive-scale losses (AdaCos) need not fall monotonically from the start.
SETTLED_BELOW = 0.05
_TAIL = 0.1


def settling(curve) -> float:
    """|mean(last 10 % of epochs) - mean(the 10 % before)| / (max - min of the curve): below
    :data:`SETTLED_BELOW` the training loss has settled (0 for a flat curve). ``curve`` is one
    value per epoch, e.g. ``History["loss"]``; needs >= 2 epochs."""
    curve = np.asarray(curve, np.float64)
    if curve.ndim != 1 or curve.size < 2:
        raise ValueError(f"settling needs a curve of >= 2 epochs, got shape {curve.shape}.")
    width = max(1, math.ceil(_TAIL * curve.size))
    tail, before = curve[-width:], curve[-2 * width:-width]
    spread = curve.max() - curve.min()
    return 0.0 if spread == 0 else float(abs(before.mean() - tail.mean()) / spread)


def mixup(key: jax.Array, inputs: jax.Array, labels: jax.Array, *, alpha: float,
          num_classes: int) -> tuple[jax.Array, jax.Array]:
    """Mixup (Zhang et al., ICLR 2018): x' = l x_i + (1 - l) x_j, y' = l y_i + (1 - l) y_j,
    l ~ Beta(alpha, alpha) per example, j a random permutation of the batch.

    Returns the mixed inputs and soft labels (B, num_classes).
    """
    k_lam, k_perm = jax.random.split(key)
    lam = jax.random.beta(k_lam, alpha, alpha, (inputs.shape[0],))
    perm = jax.random.permutation(k_perm, inputs.shape[0])
    y = jax.nn.one_hot(labels, num_classes)
    lam_x = lam.reshape((-1,) + (1,) * (inputs.ndim - 1))
    lam_y = lam[:, None]
    return lam_x * inputs + (1 - lam_x) * inputs[perm], lam_y * y + (1 - lam_y) * y[perm]


def _split(model: nnx.Module, head: nnx.Module):
    graphdef, params, rest = nnx.split((model, head), nnx.Param, ...)
    return graphdef, nnx.as_pure(params), nnx.as_pure(rest)


def _step_fn(graphdef, config: TrainConfig, num_classes: int) -> Callable:
    """The pure training step (params, rest, opt_state, x, y, key) -> new + loss."""
    tx = config.optimizer()

    def step(params, rest, opt_state, inputs, labels, key):
        if config.mixup_alpha > 0:
            inputs, labels = mixup(key, inputs, labels, alpha=config.mixup_alpha,
                                   num_classes=num_classes)

        def loss_fn(params, rest):
            model, head = nnx.merge(graphdef, params, rest)
            loss = jnp.mean(head(model(inputs), labels, inputs))
            return loss, nnx.as_pure(nnx.state((model, head), nnx.Not(nnx.Param)))

        (loss, rest), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, rest)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), rest, opt_state, loss

    return step


@functools.lru_cache(maxsize=64)
def _train_step(graphdef, config: TrainConfig, num_classes: int, sharded: NamedSharding):
    """One jitted training step, fed batch by batch from the host (large data, networks with
    convolutions, several processes).

    Cached per architecture, optimiser settings and device mesh, so repeated ``fit`` calls on
    models of the same structure reuse the compiled step. The state is replicated over the
    mesh of ``sharded`` and the batch (x, y) sharded as ``sharded`` says; x and y may be NumPy
    rows, which the call transfers as it starts (a separate ``device_put`` per step took 4x
    as long).
    """
    replicated = NamedSharding(sharded.mesh, P())
    return jax.jit(_step_fn(graphdef, config, num_classes),
                   in_shardings=(replicated, replicated, replicated, sharded, sharded,
                                 replicated))


def _epoch_plan(epoch_key: jax.Array, n: int, batch_size: int) -> tuple[jax.Array, jax.Array]:
    """One epoch's batches and step keys: (ceil(n / batch_size), batch_size) example indices,
    a permutation of the n examples topped up with its own first examples, and
    ``fold_in(k, i)`` for step i (``(k_perm, k) = split(epoch_key)``)."""
    perm_key, step_key = jax.random.split(epoch_key)
    order = jax.random.permutation(perm_key, n)
    order = jnp.concatenate([order, order[:(-n) % batch_size]]).reshape(-1, batch_size)
    keys = jax.vmap(functools.partial(jax.random.fold_in, step_key))(jnp.arange(len(order)))
    return order, keys


_jitted_epoch_plan = jax.jit(_epoch_plan, static_argnums=(1, 2))


@functools.lru_cache(maxsize=64)
def _train_epoch(graphdef, config: TrainConfig, num_classes: int, sharded: NamedSharding,
                 n: int, batch_size: int):
    """One jitted epoch for data held on the device: (params, rest, opt_state, inputs,
    labels, epoch_key, steps) -> new state and the (ceil(n / batch_size),) step losses (the
    first ``steps`` of them computed). The same steps, batches and keys as
    :func:`_train_step` fed by the host, without a dispatch and a host gather per step
    (2-3x faster for small networks). Cached like :func:`_train_step`; ``steps`` is an
    argument, so a partial last epoch reuses the compiled loop."""
    step = _step_fn(graphdef, config, num_classes)
    replicated = NamedSharding(sharded.mesh, P())

    def epoch(params, rest, opt_state, inputs, labels, epoch_key, steps):
        order, keys = _epoch_plan(epoch_key, n, batch_size)

        def body(i, carry):
            params, rest, opt_state, losses = carry
            x, y = (jax.lax.with_sharding_constraint(a[order[i]], sharded)
                    for a in (inputs, labels))
            params, rest, opt_state, loss = step(params, rest, opt_state, x, y, keys[i])
            return params, rest, opt_state, losses.at[i].set(loss)

        loss_type = jax.eval_shape(step, params, rest, opt_state, inputs[order[0]],
                                   labels[order[0]], keys[0])[3]
        losses = jnp.zeros(len(order), loss_type.dtype)
        return jax.lax.fori_loop(0, steps, body, (params, rest, opt_state, losses))

    return jax.jit(epoch, in_shardings=(replicated,) * 7)


DEVICE_DATA_BYTES = 256 * 2**20
"""Training data up to this size (inputs and labels) may be placed on the device for the
compiled loop (``TrainConfig.loop``)."""


def compiled_loop_default(model: nnx.Module, data_bytes: int) -> bool:
    """Whether ``loop="auto"`` runs the compiled loop: the data fit
    :data:`DEVICE_DATA_BYTES`, one process, and, on the CPU, a network that does not declare
    ``convolutional = True`` (networks of unknown kind count as convolutional there). XLA's
    CPU backend runs convolutions inside a compiled loop 13-30x slower than in a single
    step (``benchmarks/bench_train.py``); accelerators have no such penalty."""
    if jax.process_count() > 1 or data_bytes > DEVICE_DATA_BYTES:
        return False
    return jax.default_backend() != "cpu" or not getattr(model, "convolutional", True)


def _check_training_data(head, inputs, labels, config: TrainConfig, n_devices: int):
    inputs = np.asarray(inputs, dtype=np.float32)
    if inputs.ndim < 2 or inputs.shape[0] == 0:
        raise ValueError(f"inputs must be a non-empty batch (B, ...), got shape {inputs.shape}.")
    if not np.all(np.isfinite(inputs)):
        raise ValueError("inputs contain NaN or inf values.")
    n = inputs.shape[0]
    num_classes = getattr(head, "num_classes", None)
    if num_classes is None:  # one-class heads ignore labels
        labels = np.zeros(n, np.int32)
    else:
        if labels is None:
            raise ValueError(f"the {head.method} head needs integer class labels (B,).")
        labels = np.asarray(labels)
        if labels.shape != (n,) or not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"labels must be integers of shape ({n},), got {labels.dtype} "
                             f"{labels.shape}.")
        if labels.min() < 0 or labels.max() >= num_classes:
            raise ValueError(f"labels must lie in [0, {num_classes - 1}] for a head with "
                             f"{num_classes} classes, got [{labels.min()}, {labels.max()}].")
        labels = labels.astype(np.int32)
    if config.mixup_alpha > 0 and not head.supports_soft_labels:
        name = getattr(head, "method", type(head).__name__)
        raise ValueError(f"mixup needs a head that accepts soft labels; {name} does not. Set "
                         "mixup_alpha=0.")
    if config.batch_size % n_devices:
        raise ValueError(f"batch_size={config.batch_size} must be a multiple of the "
                         f"{n_devices} devices the batch is sharded over.")
    if config.batch_size > n:
        raise ValueError(f"batch_size={config.batch_size} exceeds the {n} training examples; "
                         "lower batch_size.")
    return inputs, labels


def fit(model: nnx.Module, head: nnx.Module, inputs, labels=None, *, config: TrainConfig,
        key: jax.Array, callbacks: Sequence[Callback] = (), checkpoint: str | Path | None = None,
        devices: Sequence[jax.Device] | None = None) -> History:
    """Trains ``model`` and ``head`` in place on (inputs, labels); returns the History.

    Batch norm layers (``models.TwoBranchEmbedder``) use batch statistics in the training
    steps and update their running statistics; the model is left in evaluation mode, with
    the running statistics recomputed on ``inputs`` for the trained weights
    (:func:`recompute_batch_stats`, unless ``config.recompute_batch_stats`` is False).

    A Deep SVDD head without a centre gets c = the mean embedding of ``inputs`` before the
    first step (Ruff et al.'s initial forward pass, ``DeepSVDDHead.set_centre``) in the mode
    its scores use: evaluation mode, with the batch-norm statistics first recomputed for the
    untrained network (the statistics the training steps' batches approximate, and of the
    kind the trained network is scored with). Ruff et al.'s code takes the pass in
    evaluation mode too, with whatever running statistics the network holds then (those of
    its autoencoder pretraining, or PyTorch's initial ones without it).

    Args:
      model: a network from ``asdtheory.models`` (or any nnx module the head accepts).
      head: its loss head (``models.make_head``).
      inputs: (B, ...) training inputs (NumPy or JAX), kept on the host and fed in batches.
      labels: (B,) integer auxiliary labels; ``None`` for deep-svdd and autoencoder (their
        heads have no classes and ignore labels).
      config: :class:`TrainConfig`.
      key: PRNG key for shuffling and mixup.
      callbacks: functions ``(model, head) -> {name: float}`` evaluated after every epoch
        (in evaluation mode with the running batch-norm averages of the steps so far: the
        statistics are recomputed at the end only).
      checkpoint: optional folder (orbax, :func:`save_checkpoint`), written after every
        epoch (parameters, head state, optimiser state, epoch, history); if it holds a
        checkpoint when ``fit`` starts, training resumes from it (the budget,
        ``config.epochs`` or ``config.steps``, is the total).
      devices: devices to shard every batch over (default: all, ``jax.devices()``).

    Raises:
      ValueError: bad shapes, labels out of range, mixup with a head that takes only hard
        labels, batch size not a multiple of the device count or above the data size --
        all before any training.
    """
    devices = list(jax.devices() if devices is None else devices)
    inputs, labels = _check_training_data(head, inputs, labels, config, len(devices))
    if head.needs_initial_pass:
        if config.recompute_batch_stats:
            recompute_batch_stats(model, inputs)
        head.set_centre(embed(model, inputs))
    tx = config.optimizer()
    # The step runs the network in training mode (batch norm on batch statistics); everything
    # else (callbacks, embeddings, scores) in evaluation mode (running statistics).
    model.train()
    graphdef, params, rest = _split(model, head)
    model.eval()
    opt_state = tx.init(params)
    history, start = History(), 0
    if checkpoint is not None and _holds_checkpoint(Path(checkpoint)):
        state = load_checkpoint(checkpoint, model, head, opt_state=opt_state)
        _, params, rest = _split(model, head)
        opt_state, start, history = state["opt_state"], state["epoch"], state["history"]

    mesh = jax.make_mesh((len(devices),), ("data",), (AxisType.Auto,), devices=devices)
    replicated, sharded = NamedSharding(mesh, P()), NamedSharding(mesh, P("data"))
    params, rest, opt_state = jax.device_put((params, rest, opt_state), replicated)
    # Only the fields that change the step are part of the cache key.
    step_config = TrainConfig(learning_rate=config.learning_rate,
                              weight_decay=config.weight_decay, mixup_alpha=config.mixup_alpha)
    num_classes = getattr(head, "num_classes", 1)
    n, bs = inputs.shape[0], config.batch_size
    schedule = config.schedule(n)
    if config.loop == "compiled" and jax.process_count() > 1:
        raise ValueError('loop="compiled" runs in one process; use "stepwise" or "auto" for '
                         "a multi-process run.")
    on_device = (config.loop == "compiled"
                 or (config.loop == "auto"
                     and compiled_loop_default(model, inputs.nbytes + labels.nbytes)))
    if on_device:
        run_epoch = _train_epoch(graphdef, step_config, num_classes, sharded, n, bs)
        device_inputs, device_labels = jax.device_put((inputs, labels), replicated)
    else:
        step = _train_step(graphdef, step_config, num_classes, sharded)
        local = _process_slice(bs)

    bar = tqdm(range(start, len(schedule)), desc="train", unit="epoch",
               disable=not config.progress, initial=start, total=len(schedule))
    for epoch in bar:
        epoch_key, steps = jax.random.fold_in(key, epoch), schedule[epoch]
        if on_device:
            params, rest, opt_state, losses = run_epoch(params, rest, opt_state, device_inputs,
                                                        device_labels, epoch_key, steps)
            losses = losses[:steps]
        else:
            order, keys = _jitted_epoch_plan(epoch_key, n, bs)
            order, losses = np.asarray(order), []
            for i in range(steps):
                idx = order[i][local]
                x, y = _batch_rows(sharded, inputs[idx], labels[idx])
                params, rest, opt_state, loss = step(params, rest, opt_state, x, y, keys[i])
                losses.append(loss)
            losses = jnp.stack(losses)
        nnx.update((model, head), params, rest)
        metrics = {"loss": float(jnp.mean(losses))}
        for callback in callbacks:
            metrics.update(callback(model, head))
        history.append(metrics)
        bar.set_postfix(loss=f"{metrics['loss']:.4f}")
        if checkpoint is not None:
            save_checkpoint(checkpoint, model, head, opt_state=opt_state, epoch=epoch + 1,
                            history=history)
    # Recomputed from the weights alone (not from the running averages the checkpoints
    # carry): a resumed run ends with the statistics of the uninterrupted one.
    if config.recompute_batch_stats:
        recompute_batch_stats(model, inputs)
    return history


def _batch_rows(sharded: NamedSharding, *rows: np.ndarray) -> tuple:
    """What the training step gets of this process's rows of a global batch: the NumPy rows
    themselves in a single-process run (the jitted step places them), the global array
    assembled across processes otherwise."""
    if jax.process_count() == 1:
        return rows
    return tuple(jax.make_array_from_process_local_data(sharded, r) for r in rows)


def _process_slice(batch_size: int) -> slice:
    """This process's rows of a global batch (all rows in a single-process run)."""
    count, index = jax.process_count(), jax.process_index()
    if batch_size % count:
        raise ValueError(f"batch_size={batch_size} must be a multiple of the {count} processes.")
    per = batch_size // count
    return slice(index * per, (index + 1) * per)


@functools.partial(jax.jit, static_argnums=(0, 1))
def _apply(graphdef, method: str, state, x):
    return getattr(nnx.merge(graphdef, state), method)(x)


def _batch_inputs(inputs, batch_size: int) -> np.ndarray:
    check_scalar(batch_size, "batch_size", low=1, integer=True)
    inputs = np.asarray(inputs, dtype=np.float32)
    if inputs.ndim < 2 or inputs.shape[0] == 0:
        raise ValueError(f"inputs must be a non-empty batch (B, ...), got shape {inputs.shape}.")
    return inputs


def _batched(model: nnx.Module, method: str, inputs, batch_size: int) -> np.ndarray:
    inputs = _batch_inputs(inputs, batch_size)
    graphdef, state = nnx.split(model)
    state = nnx.as_pure(state)
    n = inputs.shape[0]
    size = min(batch_size, n)
    outputs = []
    for start in range(0, n, size):
        chunk = inputs[start:start + size]
        # Pad the last chunk to the common size: one compilation for the whole pass.
        padded = np.concatenate([chunk, np.repeat(chunk[-1:], size - len(chunk), axis=0)])
        outputs.append(np.asarray(_apply(graphdef, method, state, padded))[:len(chunk)])
    return np.concatenate(outputs)


def embed(model: nnx.Module, inputs, *, batch_size: int = 256) -> np.ndarray:
    """``model.embed`` over ``inputs`` in batches (jitted): (B, ...) -> (B, D) NumPy array."""
    return _batched(model, "embed", inputs, batch_size)


def reconstruct(model: nnx.Module, inputs, *, batch_size: int = 256) -> np.ndarray:
    """``model(inputs)`` in batches, e.g. the autoencoder's reconstructions, as NumPy."""
    return _batched(model, "__call__", inputs, batch_size)


def recompute_batch_stats(model: nnx.Module, inputs, *, batch_size: int = 64) -> int:
    """Sets the running mean and variance of every batch-norm layer (``nnx.BatchNorm``) of
    ``model`` to the population statistics of its input over ``inputs``, as the model computes
    them in evaluation mode, and leaves the model in evaluation mode. Returns the number of
    passes over ``inputs`` (0 for a network without batch norm, which is left untouched).

    Why: training normalises every batch with its own statistics and only tracks running
    averages on the side; at Keras' momentum 0.99 (``models.TwoBranchEmbedder``) they lag the
    weights by hundreds of steps (after 14 steps they had moved 13 % of the way to the data's),
    so embeddings and scores in evaluation mode would normalise with the statistics of no
    network at all. ``fit`` calls this at the end of training (``TrainConfig``).

    What, exactly: a layer's input at scoring time depends on how the layers before it
    normalise, so the target is the fixed point at which every layer holds the mean and the
    (biased, as flax's batch statistics) variance over all examples and all non-feature axes
    of its input, computed with every earlier layer normalising by its own recomputed
    statistics. That is what training mode computes with the whole of ``inputs`` as one
    batch, and with ``len(inputs) <= batch_size`` it is done so, in one pass. Otherwise each
    pass runs the network in evaluation mode over batches of ``batch_size``, records every
    layer's per-example means and variances and pools them exactly (law of total variance,
    in float64) into population statistics, which the next pass uses. A layer behind k
    others is exact after k + 1 passes, so the passes stop at the first that changes no
    statistic (at most one more than there are layers): a few inference passes, cheap beside
    training. Not PyTorch's ``update_bn`` (one pass in training mode, per-batch statistics
    averaged): that normalises each later layer's input by its batch's statistics rather
    than by those scoring uses, and misses the spread of the batch means in the variances.

    Every batch-norm layer must take inputs (examples, ..., features) with its features on
    the last axis (flax's default, every network of ``asdtheory.models``) and run once per
    call of ``model``. ``model(x)``, the forward pass that training differentiates, is the
    pass that is run.
    """
    norms = [path for path, module in nnx.iter_modules(model)
             if isinstance(module, nnx.BatchNorm)]
    if not norms:
        return 0
    inputs = _batch_inputs(inputs, batch_size)
    n = inputs.shape[0]
    own_batch = n <= batch_size
    probed = nnx.clone(model)
    layers = {path: _ProbedNorm(_module_at(probed, path), own_batch=own_batch)
              for path in norms}
    for path, layer in layers.items():
        _replace(probed, path, layer)
    passes, changed = 0, True
    while changed and passes <= len(norms):
        graphdef, state = nnx.split(probed)
        passes += 1
        if own_batch:
            nnx.update(probed, _probe_pass(graphdef, state, inputs)[1])
            break
        changed = False
        for path, (mean, var) in _population_moments(graphdef, state, inputs, batch_size,
                                                     norms).items():
            norm = layers[path].norm
            changed |= not (np.array_equal(norm.mean[...], mean)
                            and np.array_equal(norm.var[...], var))
            norm.mean[...], norm.var[...] = jnp.asarray(mean), jnp.asarray(var)
    for path, layer in layers.items():
        target = _module_at(model, path)
        target.mean[...], target.var[...] = layer.norm.mean[...], layer.norm.var[...]
    model.eval()
    return passes


class _ProbedNorm(nnx.Module):
    """A batch-norm layer as :func:`recompute_batch_stats` runs it: records (``sow``) the
    mean and variance of its input per example and feature, then normalises in evaluation
    mode; with ``own_batch`` it first takes the statistics of this whole batch as its own."""

    def __init__(self, norm: nnx.BatchNorm, *, own_batch: bool):
        self.norm = norm
        self.own_batch = own_batch

    def __call__(self, x: jax.Array) -> jax.Array:
        if self.norm.axis not in (-1, x.ndim - 1):
            raise ValueError(f"recompute_batch_stats needs batch norms over the last axis, got "
                             f"axis={self.norm.axis} for inputs of shape {tuple(x.shape)}; "
                             "move the features last.")
        rows = x.reshape(x.shape[0], -1, x.shape[-1]).astype(jnp.float32)
        mean = jnp.mean(rows, axis=1)
        var = jnp.mean(jnp.square(rows - mean[:, None]), axis=1)
        self.sow(nnx.Intermediate, "moments", (mean, var))
        if self.own_batch:
            self.norm.mean[...], self.norm.var[...] = _pooled(mean, var, 1 / x.shape[0])
        return self.norm(x, use_running_average=True)


def _pooled(mean, var, weights):
    """Mean and variance of the union of groups of values from each group's mean and
    variance (k, F) and its share of all values (k, 1), or one share for equal groups: the
    law of total variance. NumPy or JAX arrays."""
    centre = (weights * mean).sum(axis=0)
    return centre, (weights * (var + (mean - centre) ** 2)).sum(axis=0)


@functools.partial(jax.jit, static_argnums=0)
def _probe_pass(graphdef, state, x):
    """One call of a network with :class:`_ProbedNorm` layers: their recorded moments and
    batch statistics."""
    probed = nnx.merge(graphdef, state)
    _, moments = nnx.capture(probed, nnx.Intermediate)(x)
    return nnx.to_pure_dict(moments), nnx.state(probed, nnx.BatchStat)


def _population_moments(graphdef, state, inputs: np.ndarray, batch_size: int,
                        norms: list) -> dict:
    """{layer path: float32 (mean, variance)} of every probed layer's input over ``inputs``,
    from one pass in batches of ``batch_size`` (the last padded to the same size: one
    compilation) with the statistics in ``state``."""
    n = inputs.shape[0]
    parts = {path: [] for path in norms}
    for start in range(0, n, batch_size):
        chunk = inputs[start:start + batch_size]
        padded = np.concatenate([chunk, np.repeat(chunk[-1:], batch_size - len(chunk), 0)])
        moments, _ = _probe_pass(graphdef, state, padded)
        for path in norms:
            mean, var = (np.asarray(a, np.float64)[:len(chunk)]
                         for a in _entry(moments, path)["moments"][0])
            parts[path].append((len(chunk), *_pooled(mean, var, 1 / len(chunk))))
    stats = {}
    for path, groups in parts.items():
        counts, means, variances = (np.stack(column) for column in zip(*groups, strict=True))
        mean, var = _pooled(means, variances, counts[:, None] / n)
        stats[path] = mean.astype(np.float32), var.astype(np.float32)
    return stats


def _entry(tree, path: tuple):
    for key in path:
        tree = tree[key]
    return tree


def _module_at(root: nnx.Module, path: tuple) -> nnx.Module:
    for key in path:
        root = root[key] if isinstance(key, int) else getattr(root, key)
    return root


def _replace(root: nnx.Module, path: tuple, module: nnx.Module) -> None:
    parent, key = _module_at(root, path[:-1]), path[-1]
    if isinstance(key, int):
        parent[key] = module
    else:
        setattr(parent, key, module)


def compactness_callback(inputs, labels=None, *, batch_size: int = 256) -> Callback:
    """Callback recording "compactness": mean ``head.compactness`` of the embeddings of
    ``inputs`` -- 2 - 2 cos(theta_y) for angular heads, ||phi(x) - c||^2 for Deep SVDD."""
    y = None if labels is None else jnp.asarray(labels)

    def callback(model, head):
        z = embed(model, inputs, batch_size=batch_size)
        return {"compactness": _head_mean(head, "compactness", z, y)}

    return callback


def fixed_scale_loss_callback(inputs, labels, *, scale: float,
                              batch_size: int = 256) -> Callback:
    """Callback recording "loss_fixed_scale": the mean loss of an angular head on the
    embeddings of ``inputs`` at ``scale`` (``AngularHead.loss_at_scale``), one objective for
    the whole run even when the head's own scale adapts."""
    y = jnp.asarray(labels)

    def callback(model, head):
        z = embed(model, inputs, batch_size=batch_size)
        return {"loss_fixed_scale": _head_mean(head, "loss_at_scale", z, y, scale=scale)}

    return callback


def _head_mean(head: nnx.Module, method: str, z, labels, **kwargs) -> float:
    """``float(mean(head.<method>(z, labels, **kwargs)))`` as one jitted call (callbacks run
    after every epoch; op-by-op dispatch cost more than the epoch's steps of a small model)."""
    graphdef, state = nnx.split(head)
    names = tuple(sorted(kwargs))
    return float(_merged_mean(graphdef, method, names, nnx.as_pure(state), z, labels,
                              tuple(kwargs[name] for name in names)))


@functools.partial(jax.jit, static_argnums=(0, 1, 2))
def _merged_mean(graphdef, method: str, names: tuple, state, z, labels, values: tuple):
    head = nnx.merge(graphdef, state)
    return jnp.mean(getattr(head, method)(z, labels, **dict(zip(names, values, strict=True))))


def scale_callback() -> Callback:
    """Callback recording "scale", the (AdaCos) scale of an angular head."""
    return lambda model, head: {"scale": float(head.scale[...])}


def embedding_callback(name: str, fn: Callable[[np.ndarray], Any], inputs, *,
                       batch_size: int = 256) -> Callback:
    """Callback recording ``name``: ``fn(embeddings of inputs)``, e.g.
    ``embedding_callback("effective_rank", metrics.effective_rank, x)``."""
    return lambda model, head: {name: float(fn(embed(model, inputs, batch_size=batch_size)))}


def _state_tree(model, head):
    _, params, rest = _split(model, head)
    return {"params": params, "rest": rest}


def _holds_checkpoint(path: Path) -> bool:
    return path.is_dir() and any(path.iterdir())


def _checkpoints(directory: Path, *, create: bool) -> ocp.CheckpointManager:
    # The newest epoch only; synchronous, so that a checkpoint is complete when fit goes on.
    return ocp.CheckpointManager(
        directory.absolute(),
        options=ocp.CheckpointManagerOptions(max_to_keep=1, create=create,
                                             enable_async_checkpointing=False),
        item_handlers={"state": ocp.StandardCheckpointHandler(),
                       "meta": ocp.JsonCheckpointHandler()})


def save_checkpoint(path: str | Path, model: nnx.Module, head: nnx.Module, *,
                    opt_state=None, epoch: int = 0, history: Mapping | None = None) -> None:
    """Writes parameters, head state (centres, scale, Deep SVDD centre), optionally the
    optimiser state, the epoch and the history to the folder ``path`` with orbax
    (``orbax.checkpoint.CheckpointManager``, Flax's checkpointing guide): one step per epoch,
    the newest kept, each written to a temporary folder and renamed when complete. Every
    process of a multi-process run calls it (orbax writes the replicated arrays once)."""
    state = _state_tree(model, head)
    if opt_state is not None:
        state["opt_state"] = opt_state
    with _checkpoints(Path(path), create=True) as manager:
        manager.save(epoch, args=ocp.args.Composite(
            state=ocp.args.StandardSave(state),
            meta=ocp.args.JsonSave({"epoch": epoch, "history": dict(history or {})})))


def load_checkpoint(path: str | Path, model: nnx.Module, head: nnx.Module, *,
                    opt_state=None) -> dict:
    """Restores the newest :func:`save_checkpoint` of folder ``path`` into ``model`` and
    ``head`` (in place).

    Pass a template of the optimiser state (``tx.init(params)``) as ``opt_state`` to restore
    that too. Returns ``{"opt_state", "epoch", "history"}`` (``opt_state`` None without a
    template). Raises ValueError when the checkpoint was written for a different
    architecture, head or optimiser, FileNotFoundError when the folder holds none.
    """
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"checkpoint {path} does not exist (a folder written by "
                                "save_checkpoint or --checkpoint).")
    with _checkpoints(path, create=False) as manager:
        step = manager.latest_step()
        if step is None:
            raise FileNotFoundError(f"checkpoint folder {path} holds no saved training state.")
        saved = manager.item_metadata(step)["state"]
        template = _state_tree(model, head)
        if opt_state is not None:
            template["opt_state"] = opt_state
        elif "opt_state" in saved:
            template["opt_state"] = jax.tree_util.tree_map(
                lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype), saved["opt_state"])
        _check_same_tree(saved, template, path)
        restored = manager.restore(step, args=ocp.args.Composite(
            state=ocp.args.StandardRestore(template), meta=ocp.args.JsonRestore()))
    state, meta = restored["state"], restored["meta"]
    nnx.update((model, head), state["params"], state["rest"])
    return {"opt_state": state.get("opt_state") if opt_state is not None else None,
            "epoch": int(meta["epoch"]), "history": History(meta["history"])}


def _key_names(path) -> tuple[str, ...]:
    # Orbax's metadata names every node by a string; the live tree uses attribute, index and
    # dict keys.
    return tuple(str(getattr(k, "key", getattr(k, "name", getattr(k, "idx", k)))) for k in path)


def _check_same_tree(saved, template, path: Path) -> None:
    """The saved arrays have the template's structure and shapes (a clear error for a
    checkpoint of another architecture, head or optimiser)."""
    saved_leaves = jax.tree_util.tree_leaves_with_path(saved)
    template_leaves = jax.tree_util.tree_leaves_with_path(template)
    if [_key_names(p) for p, _ in saved_leaves] != [_key_names(p) for p, _ in template_leaves]:
        raise ValueError(f"checkpoint {path} does not match this model/head/optimiser "
                         "(different tree); build them as when it was saved.")
    for (where, new), (_, old) in zip(saved_leaves, template_leaves, strict=True):
        if tuple(new.shape) != tuple(np.shape(old)):
            raise ValueError(f"checkpoint {path} has an array of shape {tuple(new.shape)} at "
                             f"{jax.tree_util.keystr(where)} where the model has "
                             f"{tuple(np.shape(old))}.")
