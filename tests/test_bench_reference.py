"""benchmarks/_reference_torch.py (the PyTorch side of bench_reference.py and
profile_reference.py): its network is the library's TwoBranchEmbedder."""

import importlib.util
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

torch = pytest.importorskip("torch")  # only in the bench extra

from asdtheory import models  # noqa: E402

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
SAMPLES = 16_000  # 1 s: the default layers, shorter flattened sizes


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def ref():
    return _load("_reference_torch")


def _abstract(cls, **kwargs):
    """The network's structure without running its initialisers (seconds of compilation)."""
    return nnx.eval_shape(lambda: cls(SAMPLES, **kwargs, rngs=nnx.Rngs(0)))


def _random_model(seed=0):
    """A TwoBranchEmbedder with random weights and batch statistics."""
    graphdef, state = nnx.split(_abstract(models.TwoBranchEmbedder))
    rng = np.random.default_rng(seed)

    def fill(path, leaf):
        name = path[-1].key
        if name == "kernel":
            values = rng.normal(size=leaf.shape) / np.sqrt(np.prod(leaf.shape[:-1]))
        elif name in ("scale", "var"):
            values = rng.uniform(0.5, 1.5, leaf.shape)
        else:  # bias, mean
            values = 0.1 * rng.normal(size=leaf.shape)
        return jnp.asarray(values, leaf.dtype)

    pure = jax.tree_util.tree_map_with_path(fill, nnx.to_pure_dict(state))
    nnx.replace_by_pure_dict(state, pure)
    return nnx.merge(graphdef, state)


_forward = nnx.jit(lambda model, x: model(x))


@pytest.fixture(scope="module")
def pair(ref):
    model = _random_model()
    twin = ref.TorchTwoBranch(SAMPLES)
    ref.copy_weights(twin, model)
    return model, twin


def test_same_parameter_count(ref, pair):
    model, twin = pair
    assert _load("_reference_setup").param_count(model) == ref.param_count(twin) > 0


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_same_outputs_with_copied_weights(pair, mode):
    model, twin = pair
    x = np.random.default_rng(0).normal(size=(3, SAMPLES)).astype(np.float32)
    getattr(model, mode)()
    twin.train(mode == "train")
    try:
        z = np.asarray(_forward(model, jnp.asarray(x)))
    finally:
        model.eval()
    with torch.no_grad():
        zt = twin(torch.from_numpy(x)).numpy()
    assert z.shape == zt.shape == (3, 256)
    np.testing.assert_allclose(zt, z, rtol=1e-3, atol=1e-3 * np.abs(z).max())
