import dataclasses
import json
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from asdtheory import losses, models, train

RNG = np.random.default_rng(0)
LABELS = RNG.integers(0, 4, 64).astype(np.int32)
INPUTS = (RNG.normal(size=(64, 8)) + 2.0 * np.eye(4, 8)[LABELS]).astype(np.float32)


def _setup(method="subcluster-adacos", seed=0, **head_kw):
    if method == "autoencoder":
        model = models.Autoencoder(8, hidden=(16,), bottleneck=3, rngs=nnx.Rngs(seed))
    else:
        model = models.MLPEmbedder(8, 6, hidden=(16,), rngs=nnx.Rngs(seed))
    if method == "subcluster-adacos":
        head_kw.setdefault("num_subclusters", 2)
    head = models.make_head(method, embed_dim=6, num_classes=4, rngs=nnx.Rngs(seed + 1),
                            **head_kw)
    return model, head


def _labels(method):
    return None if method in ("deep-svdd", "autoencoder") else LABELS


def _param_leaves(*modules):
    return jax.tree_util.tree_leaves(nnx.state(modules, nnx.Param))


@pytest.mark.parametrize("method", ["subcluster-adacos", "arcface", "deep-svdd", "autoencoder"])
def test_tiny_training_lowers_the_loss(method):
    model, head = _setup(method)
    history = train.fit(model, head, INPUTS, _labels(method), config=train.TrainConfig.tiny(),
                        key=jax.random.key(0))
    assert list(history) == ["loss"]
    assert len(history["loss"]) == 3
    assert history["loss"][-1] < 0.8 * history["loss"][0]


def test_same_key_gives_bit_identical_parameters_and_other_keys_do_not():
    config = train.TrainConfig.tiny(mixup_alpha=0.4)
    runs = []
    for key in (0, 0, 1):
        model, head = _setup()
        train.fit(model, head, INPUTS, LABELS, config=config, key=jax.random.key(key))
        runs.append([np.asarray(leaf) for leaf in _param_leaves(model, head)]
                    + [np.asarray(head.scale[...])])
    assert all(np.array_equal(a, b) for a, b in zip(runs[0], runs[1], strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(runs[0], runs[2], strict=True))


def test_one_step_matches_a_naive_adam_step():
    # One full-batch step: parameters equal optax Adam applied to the gradient of the
    # library loss, computed without the training loop.
    model, head = _setup("adacos", trainable_centres=True)
    config = train.TrainConfig(epochs=1, batch_size=64, learning_rate=0.05, progress=False)
    params0 = nnx.state((model, head), nnx.Param)
    graphdef = nnx.graphdef((model, head))
    s0 = float(head.scale[...])

    def loss_fn(params):
        m, h = nnx.merge(graphdef, params, nnx.state((model, head), nnx.Not(nnx.Param)))
        z = m(INPUTS)
        scale = losses.adacos_scale(z, h.centres[...], LABELS, scale=s0)
        return jnp.mean(losses.adacos(z, h.centres[...], LABELS, scale=scale)), scale

    (loss, scale), grads = jax.value_and_grad(loss_fn, has_aux=True)(params0)
    tx = config.optimizer()
    updates, _ = tx.update(grads, tx.init(params0), params0)
    expected = jax.tree_util.tree_leaves(optax.apply_updates(params0, updates))
    history = train.fit(model, head, INPUTS, LABELS, config=config, key=jax.random.key(0))
    assert history["loss"][0] == pytest.approx(float(loss), rel=1e-5)
    assert float(head.scale[...]) == pytest.approx(float(scale), rel=1e-5)
    for got, want in zip(_param_leaves(model, head), expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def _naive_adam(params, grads, *, lr, weight_decay, b1=0.9, b2=0.999, eps=1e-8):
    """PyTorch's Adam(weight_decay=...), in float64 NumPy: g <- g + wd * w, then Adam."""
    params = [np.asarray(p, np.float64) for p in params]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    for t, step_grads in enumerate(grads, start=1):
        for i, g in enumerate(step_grads):
            g = np.asarray(g, np.float64) + weight_decay * params[i]
            m[i] = b1 * m[i] + (1 - b1) * g
            v[i] = b2 * v[i] + (1 - b2) * g**2
            m_hat, v_hat = m[i] / (1 - b1**t), v[i] / (1 - b2**t)
            params[i] = params[i] - lr * m_hat / (np.sqrt(v_hat) + eps)
    return params


def test_weight_decay_is_the_coupled_l2_of_pytorch_adam():
    rng = np.random.default_rng(3)
    params = {"w": rng.normal(size=(3, 4)).astype(np.float32),
              "b": rng.normal(size=4).astype(np.float32)}
    grads = [{"w": rng.normal(size=(3, 4)).astype(np.float32) * 0.1,
              "b": rng.normal(size=4).astype(np.float32) * 0.1} for _ in range(3)]
    tx = train.TrainConfig(learning_rate=0.05, weight_decay=0.5).optimizer()
    state, current = tx.init(params), jax.tree_util.tree_map(jnp.asarray, params)
    for g in grads:
        updates, state = tx.update(g, state, current)
        current = optax.apply_updates(current, updates)
    # The naive reference sees the gradient at the current parameters of each step: here
    # the gradients are given, so only the decay term depends on the parameters.
    want = _naive_adam([params["b"], params["w"]], [[g["b"], g["w"]] for g in grads],
                       lr=0.05, weight_decay=0.5)
    for got, expected in zip(jax.tree_util.tree_leaves(current), want, strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_fit_with_weight_decay_takes_a_naive_coupled_l2_adam_step():
    # One full-batch step of fit: the parameters equal a NumPy Adam step on the library
    # loss's gradient + weight_decay * w.
    model, head = _setup("arcface")
    config = train.TrainConfig(epochs=1, batch_size=64, learning_rate=0.05, weight_decay=0.5,
                               progress=False)
    params0 = nnx.state((model, head), nnx.Param)
    rest = nnx.state((model, head), nnx.Not(nnx.Param))
    graphdef = nnx.graphdef((model, head))

    def loss_fn(params):
        m, h = nnx.merge(graphdef, params, rest)
        return jnp.mean(h(m(INPUTS), LABELS, INPUTS))

    grads = jax.tree_util.tree_leaves(jax.grad(loss_fn)(params0))
    want = _naive_adam(jax.tree_util.tree_leaves(params0), [grads], lr=0.05, weight_decay=0.5)
    train.fit(model, head, INPUTS, LABELS, config=config, key=jax.random.key(0))
    for got, expected in zip(_param_leaves(model, head), want, strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)


class _SpyHead(nnx.Module):
    """A loss head whose labels are example ids; every training step records them (with
    ``soft_labels``, the (B, N) mixup weights it receives instead)."""

    method = "spy"
    needs_initial_pass = False

    def __init__(self, num_classes: int, soft_labels: bool = False):
        self.num_classes = num_classes
        self.supports_soft_labels = soft_labels

    def __call__(self, outputs, labels, inputs):
        jax.debug.callback(lambda ids: _SEEN.append(np.asarray(ids)), labels, ordered=True)
        return 0.01 * jnp.sum(outputs**2, axis=-1)


_SEEN: list[np.ndarray] = []


def _spy_fit(n: int, config: train.TrainConfig, soft_labels: bool = False, **kwargs):
    _SEEN.clear()
    model = models.MLPEmbedder(8, 6, hidden=(16,), rngs=nnx.Rngs(0))
    history = train.fit(model, _SpyHead(n, soft_labels), INPUTS[:n], np.arange(n, dtype=np.int32),
                        config=config, key=jax.random.key(0), devices=jax.devices()[:1],
                        **kwargs)
    jax.effects_barrier()
    return history, list(_SEEN)


def test_every_example_is_used_in_every_epoch_when_the_batch_size_does_not_divide_n():
    # 20 examples, batches of 8: 3 steps per epoch, the last batch topped up with the first
    # 4 examples of the epoch's own order (fixed batch shape, nothing dropped).
    history, batches = _spy_fit(20, train.TrainConfig.tiny(epochs=2))
    assert len(history["loss"]) == 2
    assert len(batches) == 6 and all(b.shape == (8,) for b in batches)
    for epoch in range(2):
        ids = np.concatenate(batches[3 * epoch:3 * epoch + 3])
        np.testing.assert_array_equal(np.sort(ids[:20]), np.arange(20))
        np.testing.assert_array_equal(ids[20:], ids[:4])
    assert not np.array_equal(np.concatenate(batches[:3]), np.concatenate(batches[3:]))


def test_every_training_step_draws_its_own_mixup():
    # 20 examples, batches of 8: 3 steps per epoch, 2 epochs. Each row's mixup weight on its
    # own example is lambda (or 1 - lambda); a step that reused another step's key (within
    # the epoch or across epochs) would repeat its lambdas row for row.
    _, soft = _spy_fit(20, train.TrainConfig.tiny(epochs=2, mixup_alpha=0.4), soft_labels=True)
    assert len(soft) == 6 and all(w.shape == (8, 20) for w in soft)
    np.testing.assert_allclose([w.sum(axis=1) for w in soft], 1.0, rtol=1e-6)
    largest = [np.round(w.max(axis=1), 6) for w in soft]
    assert len({w.tobytes() for w in largest}) == 6


@pytest.mark.parametrize(("n", "steps", "schedule"), [(20, 7, [3, 3, 1]), (20, 6, [3, 3]),
                                                       (16, 5, [2, 2, 1]), (20, 2, [2])])
def test_steps_set_the_number_of_optimiser_steps(n, steps, schedule):
    config = train.TrainConfig.tiny(epochs=50, steps=steps)  # epochs is ignored
    per_epoch = -(-n // 8)  # naive: ceil(n / batch_size)
    want = [min(per_epoch, steps - e * per_epoch) for e in range(-(-steps // per_epoch))]
    assert config.schedule(n) == want == schedule
    assert train.TrainConfig.tiny(epochs=4).schedule(n) == [per_epoch] * 4
    history, batches = _spy_fit(n, config)
    assert len(batches) == steps
    assert len(history["loss"]) == len(schedule)


@pytest.mark.parametrize("method", ["subcluster-adacos", "deep-svdd"])
def test_the_compiled_loop_and_the_stepwise_loop_train_alike(method):
    # The compiled loop runs every epoch as one program on device data; the stepwise loop
    # feeds the same batches from the host. 20 examples, batches of 8, 7 steps: 3 + 3 + 1,
    # the last epoch partial; mixup draws per step.
    config = train.TrainConfig.tiny(steps=7, mixup_alpha=0.0 if method == "deep-svdd" else 0.3)
    labels = None if method == "deep-svdd" else LABELS[:20]
    runs = []
    for loop in ("compiled", "stepwise"):
        config = dataclasses.replace(config, loop=loop)
        model, head = _setup(method)
        loops = _epoch_loop_calls()
        history = train.fit(model, head, INPUTS[:20], labels, config=config,
                            key=jax.random.key(0))
        runs.append((history["loss"], _param_leaves(model, head), _epoch_loop_calls() - loops))
    (loss_device, params_device, loops), (loss_host, params_host, no_loops) = runs
    assert (loops, no_loops) == (1, 0)  # one fit call built (or reused) its epoch loop
    assert len(loss_device) == 3
    np.testing.assert_allclose(loss_device, loss_host, rtol=1e-5)
    for on_device, host_fed in zip(params_device, params_host, strict=True):
        np.testing.assert_allclose(on_device, host_fed, rtol=1e-5, atol=1e-6)


def _epoch_loop_calls() -> int:
    info = train._train_epoch.cache_info()
    return info.hits + info.misses


def test_networks_with_convolutions_are_fed_step_by_step_on_the_cpu():
    # XLA's CPU backend runs convolutions inside a compiled loop 13-30x slower.
    model = models.CNNEmbedder(8, 6, channels=(4,), rngs=nnx.Rngs(0))
    head = models.make_head("arcface", embed_dim=6, num_classes=4, rngs=nnx.Rngs(1))
    loops = _epoch_loop_calls()
    train.fit(model, head, INPUTS[:16].reshape(16, 1, 8), LABELS[:16],
              config=train.TrainConfig.tiny(epochs=1), key=jax.random.key(0))
    assert _epoch_loop_calls() == loops


def test_the_automatic_loop_is_decided_in_one_place():
    small = 1024
    mlp = models.MLPEmbedder(8, 6, rngs=nnx.Rngs(0))
    cnn = models.CNNEmbedder(8, 6, channels=(4,), rngs=nnx.Rngs(0))
    assert jax.default_backend() == "cpu"
    assert train.compiled_loop_default(mlp, small)
    assert not train.compiled_loop_default(mlp, train.DEVICE_DATA_BYTES + 1)
    assert not train.compiled_loop_default(cnn, small)
    assert not train.compiled_loop_default(nnx.Linear(8, 6, rngs=nnx.Rngs(0)), small)
    with pytest.raises(ValueError, match="loop must be one of"):
        train.TrainConfig(loop="scan")


def test_resume_with_a_step_budget_is_bit_identical(tmp_path):
    # 20 examples in batches of 8: epochs of 3 steps, the last one topped up; a budget of 8
    # steps is 3 + 3 + 2.
    x, y = INPUTS[:20], LABELS[:20]
    model, head = _setup()
    straight = train.fit(model, head, x, y, config=train.TrainConfig.tiny(steps=8),
                         key=jax.random.key(0))
    path = tmp_path / "steps"
    m2, h2 = _setup()
    train.fit(m2, h2, x, y, config=train.TrainConfig.tiny(steps=6), key=jax.random.key(0),
              checkpoint=path)  # stops after 2 epochs
    m3, h3 = _setup(seed=5)
    resumed = train.fit(m3, h3, x, y, config=train.TrainConfig.tiny(steps=8),
                        key=jax.random.key(0), checkpoint=path)
    assert len(straight["loss"]) == 3
    assert resumed["loss"] == straight["loss"]
    np.testing.assert_array_equal(train.embed(m3, x), train.embed(model, x))
    assert float(h3.scale[...]) == float(head.scale[...])
    template = train.TrainConfig.tiny().optimizer().init(
        nnx.as_pure(nnx.state((m3, h3), nnx.Param)))
    state = train.load_checkpoint(path, m3, h3, opt_state=template)
    assert state["epoch"] == 3
    assert int(state["opt_state"][0].count) == 8  # Adam's step counter


def test_callbacks_record_per_epoch_metrics():
    model, head = _setup()
    calls = []

    def spy(m, h):
        calls.append(1)
        return {"spy": len(calls)}

    history = train.fit(model, head, INPUTS, LABELS, config=train.TrainConfig.tiny(),
                        key=jax.random.key(0),
                        callbacks=[train.compactness_callback(INPUTS, LABELS),
                                   train.scale_callback(), spy,
                                   train.fixed_scale_loss_callback(INPUTS, LABELS, scale=3.0),
                                   train.embedding_callback("norm", lambda z: np.abs(z).max(),
                                                            INPUTS)])
    assert set(history) == {"loss", "compactness", "scale", "spy", "norm", "loss_fixed_scale"}
    assert history["spy"] == [1.0, 2.0, 3.0]
    z = train.embed(model, INPUTS)
    assert history["compactness"][-1] == pytest.approx(
        float(jnp.mean(losses.compactness(z, head.centres[...], LABELS))), rel=1e-5)
    assert history["scale"][-1] == pytest.approx(float(head.scale[...]))
    assert history["norm"][-1] == pytest.approx(float(np.abs(z).max()), rel=1e-6)
    want = float(jnp.mean(losses.subcluster_adacos(z, head.centres[...], LABELS, scale=3.0)))
    assert history["loss_fixed_scale"][-1] == pytest.approx(want, rel=1e-5)
    assert history["scale"][-1] != pytest.approx(3.0)  # the head's own scale is elsewhere


@pytest.mark.parametrize("trainable", [False, True])
def test_deep_svdd_centre_from_initial_pass(trainable):
    model, head = _setup("deep-svdd", trainable_centres=trainable)
    initial = losses.deep_svdd_centre(train.embed(model, INPUTS), eps=0.1)
    train.fit(model, head, INPUTS, config=train.TrainConfig.tiny(), key=jax.random.key(0))
    centre = np.asarray(head.centre[...])
    if trainable:
        assert not np.allclose(centre, initial)  # moved by gradient descent
    else:
        np.testing.assert_array_equal(centre, initial)


def test_embed_and_reconstruct_do_not_depend_on_the_batch_size():
    model, _ = _setup("autoencoder")
    np.testing.assert_allclose(train.embed(model, INPUTS, batch_size=5),
                               model.embed(INPUTS), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(train.reconstruct(model, INPUTS, batch_size=64),
                               model(INPUTS), rtol=1e-5, atol=1e-6)


def test_mixup_mixes_inputs_and_labels_with_the_same_weights():
    labels = jnp.array([0, 1, 2, 3, 1, 0])
    onehot = jax.nn.one_hot(labels, 4)
    x, y = train.mixup(jax.random.key(3), onehot, labels, alpha=0.5, num_classes=4)
    np.testing.assert_allclose(x, y, atol=1e-6)  # inputs = one-hot labels, mixed alike
    np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-6)
    assert np.all(np.asarray(y) >= 0)
    assert not np.allclose(y, onehot)


def test_checkpoint_round_trip_and_resume(tmp_path):
    config = train.TrainConfig.tiny(epochs=4)
    model, head = _setup()
    straight = train.fit(model, head, INPUTS, LABELS, config=config, key=jax.random.key(0))
    expected = train.embed(model, INPUTS)

    path = tmp_path / "ckpt"
    m2, h2 = _setup()
    train.fit(m2, h2, INPUTS, LABELS, config=train.TrainConfig.tiny(epochs=2),
              key=jax.random.key(0), checkpoint=path)
    m3, h3 = _setup(seed=5)  # other initial values: everything must come from the file
    resumed = train.fit(m3, h3, INPUTS, LABELS, config=config, key=jax.random.key(0),
                        checkpoint=path)
    np.testing.assert_array_equal(train.embed(m3, INPUTS), expected)
    assert resumed["loss"] == straight["loss"]
    assert float(h3.scale[...]) == float(head.scale[...])

    m4, h4 = _setup(seed=9)
    state = train.load_checkpoint(path, m4, h4)
    assert state["epoch"] == 4
    np.testing.assert_array_equal(train.embed(m4, INPUTS), expected)
    np.testing.assert_array_equal(h4.centres[...], head.centres[...])

    other, other_head = _setup("adacos")
    with pytest.raises(ValueError, match="has an array of shape"):
        train.load_checkpoint(path, other, other_head)
    with pytest.raises(FileNotFoundError):
        train.load_checkpoint(tmp_path / "missing", m4, h4)


@pytest.mark.parametrize(("method", "config", "labels", "match"), [
    ("arcface", train.TrainConfig.tiny(mixup_alpha=0.2), LABELS, "mixup"),
    ("adacos", train.TrainConfig.tiny(batch_size=65), LABELS, "exceeds the 64"),
    ("adacos", train.TrainConfig.tiny(), LABELS + 1, r"\[0, 3\]"),
    ("adacos", train.TrainConfig.tiny(), LABELS[:10], r"shape \(64,\)"),
    ("adacos", train.TrainConfig.tiny(), None, "needs integer class labels"),
])
def test_bad_training_setups_fail_before_training(method, config, labels, match):
    model, head = _setup(method)
    before = [np.asarray(leaf) for leaf in _param_leaves(model, head)]
    with pytest.raises(ValueError, match=match):
        train.fit(model, head, INPUTS, labels, config=config, key=jax.random.key(0))
    assert all(np.array_equal(a, b)
               for a, b in zip(before, _param_leaves(model, head), strict=True))


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"epochs": 0}, "epochs"), ({"batch_size": 2.5}, "batch_size"),
    ({"learning_rate": -1.0}, "learning_rate"), ({"mixup_alpha": float("nan")}, "mixup_alpha"),
    ({"steps": -1}, "steps"), ({"steps": 2.5}, "steps"),
])
def test_train_config_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        train.TrainConfig(**kwargs)


_PARALLEL = textwrap.dedent("""
    import json, jax, numpy as np
    from flax import nnx
    from asdtheory import models, train
    assert jax.device_count() == 2, jax.devices()
    rng = np.random.default_rng(0)
    # 60 examples in batches of 16: the last batch of every epoch is topped up.
    y = rng.integers(0, 4, 60).astype(np.int32)
    x = rng.normal(size=(60, 3, 8)).astype(np.float32)
    out = {}
    # The CNN is fed batch by batch; the MLP runs each epoch as one compiled loop, or is fed
    # from the host by the stepwise loop.
    runs = (("cnn", "one", jax.devices()[:1], "auto"), ("cnn", "two", jax.devices(), "auto"),
            ("mlp", "one", jax.devices()[:1], "auto"), ("mlp", "two", jax.devices(), "auto"),
            ("mlp", "two, host-fed", jax.devices(), "stepwise"))
    for kind, name, devices, loop in runs:
        if kind == "cnn":
            model = models.CNNEmbedder(8, 6, channels=(4, 4), rngs=nnx.Rngs(0))
        else:
            model = models.MLPEmbedder(24, 6, hidden=(16,), rngs=nnx.Rngs(0))
        head = models.make_head("subcluster-adacos", embed_dim=6, num_classes=4,
                                num_subclusters=2, rngs=nnx.Rngs(1))
        config = train.TrainConfig.tiny(epochs=2, batch_size=16, mixup_alpha=0.3, loop=loop)
        inputs = x if kind == "cnn" else x.reshape(60, 24)
        train.fit(model, head, inputs, y, config=config, key=jax.random.key(0), devices=devices)
        leaves = jax.tree_util.tree_leaves(nnx.state((model, head)))
        out.setdefault(kind, {})[name] = [np.asarray(leaf).ravel().tolist() for leaf in leaves]
    print(json.dumps(out))
""")


def test_data_parallel_step_matches_single_device():
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
           "JAX_PLATFORMS": "cpu"}
    result = subprocess.run([sys.executable, "-c", _PARALLEL], env=env, capture_output=True,
                            text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    for kind, runs in out.items():
        one, *others = runs.values()
        assert len(one) > 4 and len(others) == (1 if kind == "cnn" else 2)
        for other in others:
            for want, got in zip(one, other, strict=True):
                np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("method", ["subcluster-adacos", "deep-svdd"])
def test_zero_steps_is_the_untrained_twin(method):
    model, head = _setup(method)
    before = [np.asarray(leaf) for leaf in _param_leaves(model, head)]
    labels = None if method == "deep-svdd" else LABELS
    history = train.fit(model, head, INPUTS, labels, config=train.TrainConfig.tiny(steps=0),
                        key=jax.random.key(0))
    assert history == {} and not head.needs_initial_pass
    assert all(np.array_equal(a, b)
               for a, b in zip(before, _param_leaves(model, head), strict=True))


# ------------------------------------------------------------------ batch-norm statistics

class _NormNet(nnx.Module):
    """Linear -> batch norm over (examples, 3 positions) -> ReLU -> batch norm of an affine
    map plus a residual -> mean over positions -> Linear -> batch norm: three batch-norm
    layers, each behind the ones before it."""

    convolutional = False

    def __init__(self, seed: int = 0):
        rngs = nnx.Rngs(seed)
        norm = lambda features: nnx.BatchNorm(features, use_running_average=True, rngs=rngs)
        self.lin = nnx.Linear(8, 12, rngs=rngs)
        self.norms = nnx.List([norm(4), norm(4)])
        self.out = nnx.Linear(4, 6, rngs=rngs)
        self.last = norm(6)
        draw = np.random.default_rng(seed)
        for layer in (*self.norms, self.last):  # non-trivial scales, offsets, stale statistics
            size = layer.num_features
            layer.scale[...] = jnp.asarray(draw.uniform(0.5, 2.0, size), jnp.float32)
            layer.bias[...] = jnp.asarray(draw.normal(size=size), jnp.float32)
            layer.mean[...] = jnp.asarray(draw.normal(size=size), jnp.float32)
            layer.var[...] = jnp.asarray(draw.uniform(0.1, 3.0, size), jnp.float32)

    def __call__(self, x):
        h = jax.nn.relu(self.norms[0](self.lin(x).reshape(x.shape[0], 3, 4)))
        h = self.norms[1](2.0 * h + 1.0) + h
        return self.last(self.out(h.mean(axis=1)))

    def embed(self, x):
        return self(x)


NORM_INPUTS = (3.0 + 2.0 * RNG.normal(size=(37, 8))).astype(np.float32)


def _naive_population_stats(net: _NormNet, x) -> list[tuple[np.ndarray, np.ndarray]]:
    """Layer after layer in float64: the mean and variance of each batch-norm layer's input
    over all examples (and positions), every earlier layer normalising with the statistics
    found for it."""
    f64 = lambda a: np.asarray(a[...], np.float64)
    stats = []

    def norm(layer, h, axes):
        mean, var = h.mean(axis=axes), h.var(axis=axes)
        stats.append((mean, var))
        return (h - mean) / np.sqrt(var + layer.epsilon) * f64(layer.scale) + f64(layer.bias)

    h = (np.asarray(x, np.float64) @ f64(net.lin.kernel) + f64(net.lin.bias)).reshape(-1, 3, 4)
    h = np.maximum(norm(net.norms[0], h, (0, 1)), 0.0)
    h = norm(net.norms[1], 2.0 * h + 1.0, (0, 1)) + h
    norm(net.last, h.mean(axis=1) @ f64(net.out.kernel) + f64(net.out.bias), 0)
    return stats


@pytest.mark.parametrize(("batch_size", "passes"), [(64, 1), (8, 4)])
def test_recompute_batch_stats_is_the_population_statistics_of_each_layer_input(
        batch_size, passes):
    # 64 >= 37 examples: one pass with the whole set as one batch; 8: passes over 5 batches
    # (the last padded) until the statistics stop changing, 3 layers deep = 4 passes.
    net = _NormNet()
    params = [np.asarray(leaf) for leaf in _param_leaves(net)]
    net.train()
    assert train.recompute_batch_stats(net, NORM_INPUTS, batch_size=batch_size) == passes
    want = _naive_population_stats(net, NORM_INPUTS)
    for layer, (mean, var) in zip((*net.norms, net.last), want, strict=True):
        assert layer.use_running_average  # left in evaluation mode
        np.testing.assert_allclose(layer.mean[...], mean, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(layer.var[...], var, rtol=1e-4, atol=1e-5)
    assert all(np.array_equal(a, b) for a, b in zip(params, _param_leaves(net), strict=True))


def test_recompute_batch_stats_leaves_a_network_without_batch_norm_untouched():
    model, _ = _setup()
    before = jax.tree_util.tree_leaves(nnx.state(model))
    assert train.recompute_batch_stats(model, INPUTS) == 0
    after = jax.tree_util.tree_leaves(nnx.state(model))
    assert all(np.array_equal(a, b) for a, b in zip(before, after, strict=True))


def _adacos_norm_net():
    return _NormNet(), models.make_head("adacos", embed_dim=6, num_classes=4,
                                        rngs=nnx.Rngs(1))


def _batch_stats(model) -> list[np.ndarray]:
    return [np.asarray(leaf) for leaf in jax.tree_util.tree_leaves(
        nnx.state(model, nnx.BatchStat))]


@pytest.mark.parametrize("recompute", [True, False])
def test_fit_ends_with_the_population_statistics_of_the_trained_weights(recompute):
    model, head = _adacos_norm_net()
    x, y = NORM_INPUTS[:32], LABELS[:32]
    train.fit(model, head, x, y, key=jax.random.key(0),
              config=train.TrainConfig.tiny(recompute_batch_stats=recompute))
    refreshed = nnx.clone(model)
    train.recompute_batch_stats(refreshed, x)
    same = all(np.array_equal(a, b)
               for a, b in zip(_batch_stats(model), _batch_stats(refreshed), strict=True))
    assert same == recompute  # without it: the running averages of the steps, far off


def test_resumed_training_ends_with_the_same_batch_statistics(tmp_path):
    x, y = NORM_INPUTS[:32], LABELS[:32]
    model, head = _adacos_norm_net()
    train.fit(model, head, x, y, config=train.TrainConfig.tiny(epochs=4),
              key=jax.random.key(0))
    path = tmp_path / "ckpt"
    m2, h2 = _adacos_norm_net()
    train.fit(m2, h2, x, y, config=train.TrainConfig.tiny(epochs=2), key=jax.random.key(0),
              checkpoint=path)
    m3, h3 = _NormNet(seed=5), models.make_head("adacos", embed_dim=6, num_classes=4,
                                                rngs=nnx.Rngs(6))
    train.fit(m3, h3, x, y, config=train.TrainConfig.tiny(epochs=4), key=jax.random.key(0),
              checkpoint=path)
    assert all(np.array_equal(a, b)
               for a, b in zip(_batch_stats(m3), _batch_stats(model), strict=True))
    np.testing.assert_array_equal(train.embed(m3, x), train.embed(model, x))


@pytest.mark.parametrize("steps", [0, 4])
def test_deep_svdd_centre_is_the_mean_embedding_in_the_scoring_mode(steps):
    # The scoring mode: evaluation mode with the statistics recomputed on the training
    # inputs. The centre is taken in it for the untrained network; with no step (the
    # untrained twin) the scored network is that network, and c its mean embedding.
    model = _NormNet()
    head = models.make_head("deep-svdd", embed_dim=6, rngs=nnx.Rngs(1), eps=0.0)
    untrained = nnx.clone(model)
    train.recompute_batch_stats(untrained, NORM_INPUTS)
    train.fit(model, head, NORM_INPUTS, key=jax.random.key(0),
              config=train.TrainConfig.tiny(steps=steps))
    centre = np.asarray(head.centre[...])
    np.testing.assert_allclose(centre, train.embed(untrained, NORM_INPUTS).mean(axis=0),
                               rtol=1e-5, atol=1e-6)
    if steps == 0:
        np.testing.assert_allclose(centre, train.embed(model, NORM_INPUTS).mean(axis=0),
                                   rtol=1e-5, atol=1e-6)


# -------------------------------------------------------------------------------- settling

def test_a_decaying_loss_settles_and_a_falling_ramp_does_not():
    epochs = np.arange(100)
    assert train.settling(3.0 * np.exp(-epochs / 10.0)) < train.SETTLED_BELOW
    assert train.settling(np.linspace(2.0, 1.0, 100)) > train.SETTLED_BELOW
    assert train.settling([5.0, 3.0, 2.0] + [1.0] * 20) == 0.0
    assert train.settling([1.0, 1.0]) == 0.0  # flat
    with pytest.raises(ValueError, match="2 epochs"):
        train.settling([1.0])
