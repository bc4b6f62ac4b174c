"""The CPU-tuned kernels compute XLA's functions: values and gradients against the plain XLA
operations, the per-platform selection on both sides of its switch, the initialisers bit for
bit against flax's."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from asdtheory import kernels


def test_same_padding_is_flax_same():
    # 'SAME': ceil(n / s) outputs, the odd padding element on the high side
    assert kernels.same_padding(77, 3, 2) == (1, 1)
    assert kernels.same_padding(128, 3, 2) == (0, 1)
    assert kernels.same_padding(80_000, 256, 64) == (96, 96)
    assert kernels.same_padding(5, 1, 1) == (0, 0)


@pytest.mark.parametrize("length, kernel, stride", [(1250, 64, 32), (40, 16, 4), (37, 8, 4)])
def test_strided_conv1d_is_xla_same_convolution(length, kernel, stride):
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(2, length, 3)), jnp.float32)
    w = jnp.asarray(rng.normal(size=(kernel, 3, 5)) / np.sqrt(3 * kernel), jnp.float32)
    cot = jnp.asarray(rng.normal(size=(2, -(-length // stride), 5)), jnp.float32)

    def xla(x, w):
        return jax.lax.conv_general_dilated(x, w, (stride,), "SAME",
                                            dimension_numbers=("NWC", "WIO", "NWC"))

    def ours(x, w):
        return kernels.strided_conv1d(x, w, stride)

    np.testing.assert_allclose(ours(x, w), xla(x, w), rtol=1e-5, atol=1e-5)
    for a, b in zip(jax.grad(lambda x, w: jnp.sum(ours(x, w) * cot), (0, 1))(x, w),
                    jax.grad(lambda x, w: jnp.sum(xla(x, w) * cot), (0, 1))(x, w), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="multiple of the stride"):
        kernels.strided_conv1d(x, w[:-1], stride)


@pytest.mark.parametrize("window, same", [(3, False), (2, True)])
def test_max_pool2d_is_nnx_max_pool(window, same):
    x = jnp.asarray(np.random.default_rng(1).normal(size=(2, 13, 10, 3)), jnp.float32)
    padding = "SAME" if same else "VALID"

    def ref(x):
        return nnx.max_pool(x, (window, window), strides=(2, 2), padding=padding)

    out = kernels.sliced_max_pool2d(x, window, 2, same=same)
    np.testing.assert_array_equal(out, ref(x))
    cot = jnp.asarray(np.random.default_rng(2).normal(size=out.shape), jnp.float32)
    np.testing.assert_allclose(  # no ties in random data: the gradients agree exactly
        jax.grad(lambda x: jnp.sum(kernels.sliced_max_pool2d(x, window, 2, same=same) * cot))(x),
        jax.grad(lambda x: jnp.sum(ref(x) * cot))(x), rtol=0, atol=1e-6)


@pytest.mark.parametrize("shape, kernel, stride", [((2, 31, 52, 1), 7, 2), ((2, 13, 10, 3), 3, 2),
                                                   ((2, 12, 9, 2), 5, 3)])
def test_strided_conv2d_is_xla_same_convolution(shape, kernel, stride):
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=shape), jnp.float32)
    w = jnp.asarray(rng.normal(size=(kernel, kernel, shape[-1], 4)) / kernel, jnp.float32)

    def xla(x, w):
        return jax.lax.conv_general_dilated(x, w, (stride, stride), "SAME",
                                            dimension_numbers=("NHWC", "HWIO", "NHWC"))

    out = kernels.strided_conv2d(x, w, stride)
    np.testing.assert_allclose(out, xla(x, w), rtol=1e-5, atol=1e-5)
    cot = jnp.asarray(rng.normal(size=out.shape), jnp.float32)
    for a, b in zip(jax.grad(lambda x, w: jnp.sum(kernels.strided_conv2d(x, w, stride) * cot),
                             (0, 1))(x, w),
                    jax.grad(lambda x, w: jnp.sum(xla(x, w) * cot), (0, 1))(x, w), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("shape, dtype", [((3, 3, 2, 4), jnp.float32), ((16, 1, 8), jnp.float32),
                                          ((5, 7), jnp.float32), ((3, 3, 2, 4), jnp.bfloat16)])
def test_glorot_uniform_draws_the_numbers_of_nnx_glorot_uniform(shape, dtype):
    key = jax.random.key(5)
    ours = kernels.glorot_uniform(key, shape, dtype)
    assert ours.shape == shape and ours.dtype == dtype
    np.testing.assert_array_equal(ours, nnx.initializers.glorot_uniform()(key, shape, dtype))


@pytest.mark.parametrize("cpu", [True, False])
def test_the_selected_kernels_compute_the_same_function_on_both_sides_of_the_switch(
        cpu, monkeypatch):
    # Off the CPU the science modules get XLA's own operations; both sides agree.
    monkeypatch.setattr(kernels, "use_cpu_kernels", lambda: cpu)
    rng = np.random.default_rng(3)
    x1 = jnp.asarray(rng.normal(size=(2, 40, 3)), jnp.float32)
    w1 = jnp.asarray(rng.normal(size=(16, 3, 5)) / 7, jnp.float32)
    np.testing.assert_allclose(kernels.conv1d_same(x1, w1, 4),
                               kernels.strided_conv1d(x1, w1, 4), rtol=1e-5, atol=1e-5)
    x2 = jnp.asarray(rng.normal(size=(2, 13, 10, 3)), jnp.float32)
    w2 = jnp.asarray(rng.normal(size=(7, 7, 3, 4)) / 7, jnp.float32)
    np.testing.assert_allclose(kernels.conv2d_same(x2, w2, 2),
                               kernels.strided_conv2d(x2, w2, 2), rtol=1e-5, atol=1e-5)
    for same in (True, False):
        np.testing.assert_array_equal(kernels.max_pool2d(x2, 3, 2, same=same),
                                      kernels.sliced_max_pool2d(x2, 3, 2, same=same))


def test_the_switch_follows_the_default_backend():
    assert kernels.use_cpu_kernels() == (jax.default_backend() == "cpu")


@pytest.mark.parametrize("shape, dtype", [((3, 3, 2, 400), jnp.float32),
                                          ((4000, 7), jnp.bfloat16)])
def test_lecun_normal_has_the_variance_of_its_fan_in(shape, dtype):
    draws = kernels.lecun_normal(jax.random.key(2), shape, dtype)
    fan_in = np.prod(shape[:-1])
    assert draws.shape == shape and draws.dtype == dtype
    assert float(jnp.var(draws.astype(jnp.float32))) * fan_in == pytest.approx(1.0, rel=0.1)
