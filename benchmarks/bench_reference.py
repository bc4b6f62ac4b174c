"""Training throughput of the reference two-branch network: JAX (asdtheory) vs PyTorch.

What is timed, side by side in one process, interleaved (the machine may be shared):

* **JAX**: the call users make -- ``train.fit(model, head, x, y, config=TrainConfig(steps=k))``
  on the model and head that ``Detector.fit`` builds for the ``reference`` system
  (``detect.build_network``: ``models.TwoBranchEmbedder`` defaults, sub-cluster AdaCos with 16
  fixed sub-centres per class, mixup alpha 1, Adam lr 1e-3 with coupled L2 2e-5) on ``k``
  batches of random 10-s waveforms (160 000 samples); wall time / k. The timed calls set
  ``recompute_batch_stats=False``: the pass over the training set that ``fit`` ends with is
  not part of a step (the PyTorch side has none). A first call compiles (reported on its
  own); a second, identical call shows what is left once the step is compiled; no XLA
  compilation of the step may happen in it or in the timed calls (checked through
  ``jax.monitoring``'s compile events). The host work of every step (gathering the batch
  rows from the NumPy arrays, placing them on the device) is part of it and also timed on
  its own.
* **PyTorch**: ``_reference_torch.TorchTwoBranch``, the same network with the JAX weights
  copied in, the same head (sub-cluster AdaCos, "faithful" adaptive scale, the same
  centres), the same mixup, Adam(weight_decay=2e-5); one step = batch gather + mixup +
  forward + loss + backward + Adam, median over steps, ``torch.set_num_threads(cores)``.
* **Peak**: a float32 2048^3 matmul in each framework; the work of one training step is
  counted from the layer shapes (:func:`step_flops`), so each side's share of the CPU's
  matmul throughput is reported.

Where the step's time goes, part by part and layer by layer: ``profile_reference.py``.

On a GPU host both run on the accelerator (JAX by default; PyTorch on ``cuda`` with TF32
allowed, as XLA's default precision there).

    pip install -c constraints.txt -e ".[dev,bench]"
    python benchmarks/bench_reference.py          # writes benchmarks/results/reference.json
    python benchmarks/bench_reference.py --quick  # 1-s clips, batch 4: checks that it runs
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
import time
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from asdtheory import models, train

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the shared _reference_*.py
import _reference_setup as shared


class Sizes(NamedTuple):
    samples: int  # per clip
    batches: tuple[int, ...]  # batch sizes measured
    fit_steps: int  # optimiser steps per timed train.fit call
    repeats: dict  # timed train.fit calls per batch size
    torch_steps: int  # PyTorch steps after each of them
    matmul: int  # n of the n^3 matmul of the peak


FULL = Sizes(shared.SAMPLES, (32, 64), 3, {32: 3, 64: 2}, 3, 2048)  # the run takes < 5 min
QUICK = Sizes(shared.QUICK_SAMPLES, (4,), 2, {4: 1}, 1, 256)


# --- the JAX side: train.fit, as users call it ---------------------------------------------

def fit_seconds(model, head, inputs, labels, config, steps: int, seed: int) -> float:
    """Wall time of one train.fit call of ``steps`` optimiser steps (one partial epoch when
    ``inputs`` holds ``steps`` batches); fit ends with a host sync (the epoch's loss)."""
    tc = dataclasses.replace(config.train_config(), steps=steps, recompute_batch_stats=False)
    start = time.perf_counter()
    train.fit(model, head, inputs, labels, config=tc, key=jax.random.key(seed))
    return time.perf_counter() - start


def host_batch_seconds(inputs: np.ndarray, labels: np.ndarray, batch: int,
                       repeats: int = 5) -> float:
    """The host work of every train.fit step in one process: gather the batch rows (inputs
    and labels) from the NumPy arrays and place them on the device(s), sharded over the
    batch (inside fit the jitted step places the rows as its call starts)."""
    devices = jax.devices()
    mesh = jax.make_mesh((len(devices),), ("data",), (jax.sharding.AxisType.Auto,),
                         devices=devices)
    sharded = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data"))
    order = np.random.default_rng(0).permutation(len(inputs))
    times = []
    for i in range(repeats):
        start = time.perf_counter()
        idx = order[(np.arange(batch) + i * batch) % len(inputs)]
        jax.block_until_ready(jax.device_put((inputs[idx], labels[idx]), sharded))
        times.append(time.perf_counter() - start)
    return float(np.median(times))


BACKEND_COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"
STEP = "jit(step)"  # the name XLA compiles train.fit's step under


class CompileLog:
    """Counts XLA compilations (jax.monitoring's backend-compile events) and their time."""

    def __init__(self):
        self.events: list[tuple[str, float]] = []
        jax.monitoring.register_event_duration_secs_listener(self._record)

    def _record(self, event: str, duration: float, **kwargs) -> None:
        if event == BACKEND_COMPILE_EVENT:
            self.events.append((str(kwargs.get("fun_name", "?")), duration))

    def mark(self) -> int:
        return len(self.events)

    def since(self, mark: int) -> tuple[list[str], float]:
        """Names of the functions compiled since ``mark`` and the total compile time."""
        new = self.events[mark:]
        return [name for name, _ in new], sum(d for _, d in new)


# --- work and peak ------------------------------------------------------------------------

def step_flops(ref, torch_model, num_samples: int) -> dict:
    """FLOPs per clip of one training step, counted from the layer shapes (forward hooks on
    every conv and dense layer of a 1-clip training-mode pass): forward 2 MACs-worth, backward
    2 more for the weight gradient and 2 more for the input gradient -- except where the
    layer's input needs no gradient (the first conv of each branch sees the waveform's
    spectra), which XLA and autograd both skip. FFTs (forward only: the input needs no
    gradient) counted as 2.5 N log2 N per real FFT."""
    import torch

    macs, first = [], []

    def hook(module, inputs, output):
        x = inputs[0]
        if isinstance(module, ref.SameConv):
            per_out = module.weight[0].numel()  # c_in x kernel
        else:
            per_out = module.in_features
        macs.append(output[0].numel() * per_out)
        first.append(not x.requires_grad)

    handles = [m.register_forward_hook(hook) for m in torch_model.modules()
               if isinstance(m, ref.SameConv | torch.nn.Linear)]
    was_training = torch_model.training
    torch_model.train()
    try:
        torch_model(torch.zeros(2, num_samples))  # batch 2 for the batch norms; per clip below
    finally:
        for h in handles:
            h.remove()
        torch_model.train(was_training)
    fwd = 2 * sum(macs)
    bwd = sum(2 * m * (1 if f else 2) for m, f in zip(macs, first, strict=True))
    n_fft, hop = ref.N_FFT, ref.HOP
    frames = 1 + (num_samples - n_fft) // hop
    fft = 2.5 * num_samples * math.log2(num_samples) + frames * 2.5 * n_fft * math.log2(n_fft)
    return {"forward_gflop_per_clip": fwd / 1e9, "backward_gflop_per_clip": bwd / 1e9,
            "train_gflop_per_clip": (fwd + bwd) / 1e9,
            "naive_3x_forward_gflop_per_clip": 3 * fwd / 1e9,
            "fft_gflop_per_clip": fft / 1e9, "layers_counted": len(macs)}


def matmul_gflops(ref, device, n: int, rounds: int = 3, repeats: int = 5) -> dict:
    """Best float32 n x n x n matmul throughput of each framework, the two interleaved in
    ``rounds`` rounds of ``repeats`` products each (the machine is shared)."""
    import torch

    a = jax.device_put(np.ones((n, n), np.float32))
    mm = jax.jit(lambda m: m @ m)
    mm(a).block_until_ready()
    b = torch.ones(n, n, device=device)

    def torch_mm():
        torch.mm(b, b)
        ref.sync(device)

    torch_mm()
    t_jax, t_torch = [], []
    for _ in range(rounds):
        t_jax.append(best([lambda: mm(a).block_until_ready()] * repeats))
        t_torch.append(best([torch_mm] * repeats))
    return {"jax": 2 * n**3 / min(t_jax) / 1e9, "torch": 2 * n**3 / min(t_torch) / 1e9, "n": n}


def best(fns) -> float:
    times = []
    for fn in fns:
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


# --- measurements -------------------------------------------------------------------------

def random_data(batches: int, batch: int, samples: int, seed: int = 0):
    x = shared.random_clips(batches * batch, samples, seed)
    y = np.random.default_rng(seed + 1).integers(0, shared.NUM_CLASSES, len(x)).astype(np.int32)
    return x, y


def check_equivalence(ref, samples: int, seed: int = 0) -> dict:
    """The JAX network and its PyTorch twin with copied weights on 4 random clips: largest
    output difference in evaluation mode (running statistics) and in training mode (batch
    statistics, which also checks every batch norm's axes)."""
    import torch

    model = models.TwoBranchEmbedder(samples, rngs=nnx.Rngs(seed))
    twin = ref.TorchTwoBranch(samples)
    ref.copy_weights(twin, model)
    # 4 clips: with batch statistics over only 2, the dense layers' variances are tiny and
    # float32 rounding differences get amplified
    x = shared.random_clips(4, samples, seed)
    out = {}
    for mode in ("eval", "train"):
        getattr(model, mode)()
        twin.train(mode == "train")
        z = np.asarray(model(jnp.asarray(x)))
        with torch.no_grad():
            zt = twin(torch.from_numpy(x)).numpy()
        out[f"max_abs_diff_{mode}"] = float(np.abs(z - zt).max())
        out[f"max_abs_output_{mode}"] = float(np.abs(z).max())
    out["output_shape"] = list(z.shape)
    return out


def measure_batch(ref, batch: int, sizes: Sizes, *, device, log: CompileLog) -> dict:
    """One batch size: warm-up of both, then ``sizes.repeats[batch]`` rounds of [one
    train.fit call of ``sizes.fit_steps`` steps, ``sizes.torch_steps`` PyTorch steps],
    interleaved so that a busy moment of the shared machine hurts both alike."""
    import torch

    config, model, head = shared.reference_network(batch, sizes.samples)
    twin = ref.TorchTwoBranch(sizes.samples).to(device)
    ref.copy_weights(twin, model)  # the same initial weights (not needed for the timing)
    twin_head = ref.TorchSubclusterAdaCos(np.asarray(head.centres[...]),
                                          float(head.scale[...])).to(device)
    steps = sizes.fit_steps
    x, y = random_data(steps, batch, sizes.samples)
    inputs, labels = torch.from_numpy(x), torch.from_numpy(y.astype(np.int64))
    if device.type == "cuda":
        inputs, labels = inputs.pin_memory(), labels.pin_memory()

    # The first call compiles the step (and the epoch's small helpers for this data size);
    # the same call again shows what a call costs once they are compiled.
    mark = log.mark()
    first = fit_seconds(model, head, x, y, config, 1, seed=0)
    warm_compiles, warm_compile_s = log.since(mark)
    mark = log.mark()
    second = fit_seconds(model, head, x, y, config, 1, seed=0)
    second_compiles, _ = log.since(mark)
    step = ref.trainer(twin, twin_head, inputs, labels, batch=batch,
                       config=config.train_config(), device=device)
    start = time.perf_counter()
    step(0)
    ref.sync(device)
    torch_first = time.perf_counter() - start

    jax_times, torch_times, mark = [], [], log.mark()
    for r in range(sizes.repeats[batch]):
        jax_times.append(fit_seconds(model, head, x, y, config, steps, seed=r + 1) / steps)
        for i in range(sizes.torch_steps):
            start = time.perf_counter()
            step(1 + r * sizes.torch_steps + i)
            ref.sync(device)
            torch_times.append(time.perf_counter() - start)
    timed_compiles, _ = log.since(mark)
    if STEP in second_compiles + timed_compiles:
        raise AssertionError("train.fit compiled its step again in a call after the first: "
                             f"{second_compiles} then {timed_compiles}")
    t_jax, t_torch = float(np.median(jax_times)), float(np.median(torch_times))
    return {
        "batch": batch,
        "jax_step_s": t_jax, "torch_step_s": t_torch,
        "jax_clips_per_s": batch / t_jax, "torch_clips_per_s": batch / t_torch,
        "ratio_jax_over_torch": t_torch / t_jax,
        "jax_step_s_per_call": jax_times, "torch_step_s_all": torch_times,
        "jax_fit_calls": sizes.repeats[batch], "jax_steps_per_fit_call": steps,
        "jax_first_fit_call_s": first,
        "jax_second_fit_call_s": second,
        "jax_compile_s_estimate": first - second,
        "jax_xla_compiled_in_warmup": warm_compiles,
        "jax_xla_compile_s_in_warmup": warm_compile_s,
        # e.g. the stack of the losses of a longer epoch; the step itself must not appear
        "jax_xla_compiled_in_second_call": second_compiles,
        "jax_xla_compiled_in_timed_calls": timed_compiles,
        "jax_host_batch_s": host_batch_seconds(x, y, batch),
        "torch_first_step_s": torch_first,
    }


def main(quick: bool = False) -> dict:
    ref = shared.require_torch("bench_reference.py")  # before any work
    import torch

    sizes = QUICK if quick else FULL
    start_all = time.perf_counter()
    device, threads = ref.setup_device()
    log = CompileLog()
    machine = shared.machine()
    load_before = machine.pop("load_average_1min")
    _, model, _ = shared.reference_network(sizes.batches[0], sizes.samples)
    twin = ref.TorchTwoBranch(sizes.samples)
    counts = {"jax_nnx_params_of_model": shared.param_count(model),
              "torch_parameters": ref.param_count(twin)}
    if counts["jax_nnx_params_of_model"] != counts["torch_parameters"]:
        raise AssertionError(f"parameter counts differ: {counts}")
    equivalence = check_equivalence(ref, sizes.samples)
    flops = step_flops(ref, twin, sizes.samples)
    peak = matmul_gflops(ref, device, sizes.matmul)
    del model, twin
    print(f"parameters: JAX {counts['jax_nnx_params_of_model']:,}, PyTorch "
          f"{counts['torch_parameters']:,}; outputs {equivalence['output_shape']}, max |JAX - "
          f"PyTorch| {equivalence['max_abs_diff_train']:.1e} (training mode), "
          f"{equivalence['max_abs_diff_eval']:.1e} (evaluation mode)", flush=True)
    print(f"work per clip: {flops['train_gflop_per_clip']:.2f} GFLOP per training step "
          f"(forward {flops['forward_gflop_per_clip']:.2f}), FFTs "
          f"{flops['fft_gflop_per_clip'] * 1e3:.0f} MFLOP; {peak['n']}^3 matmul: JAX "
          f"{peak['jax']:.0f} GFLOP/s, PyTorch {peak['torch']:.0f} GFLOP/s "
          f"({threads} threads)", flush=True)
    best_peak = max(peak["jax"], peak["torch"])

    batches = []
    for batch in sizes.batches:
        r = measure_batch(ref, batch, sizes, device=device, log=log)
        for side in ("jax", "torch"):
            achieved = flops["train_gflop_per_clip"] * r[f"{side}_clips_per_s"]
            r[f"{side}_gflops_achieved"] = achieved
            r[f"{side}_share_of_own_matmul_peak"] = achieved / peak[side]
            r[f"{side}_share_of_best_matmul_peak"] = achieved / best_peak
        batches.append(r)
        print(f"batch {batch}: JAX train.fit {r['jax_clips_per_s']:.1f} clips/s "
              f"({r['jax_step_s']:.2f} s/step, host batch gather {r['jax_host_batch_s'] * 1e3:.0f}"
              f" ms of it), PyTorch {r['torch_clips_per_s']:.1f} clips/s "
              f"({r['torch_step_s']:.2f} s/step) -> JAX/PyTorch x{r['ratio_jax_over_torch']:.2f} "
              f"(target >= 1.5); share of matmul peak JAX "
              f"{r['jax_share_of_own_matmul_peak']:.0%}, PyTorch "
              f"{r['torch_share_of_own_matmul_peak']:.0%}; first fit call "
              f"{r['jax_first_fit_call_s']:.1f} s ({r['jax_xla_compile_s_in_warmup']:.1f} s XLA "
              f"compilation), the same call again {r['jax_second_fit_call_s']:.1f} s; compiled "
              f"in the timed calls: {r['jax_xla_compiled_in_timed_calls']}", flush=True)

    result = {
        "benchmark": "two-branch reference network: training step, JAX vs PyTorch",
        "setup": {
            "network": "models.TwoBranchEmbedder defaults = the reference system (channels "
                       "16/16/32/64/128, spectrum 128/128, 2 x 128-d embedding), built by "
                       "detect.build_network; PyTorch twin TorchTwoBranch with the same weights",
            "head": f"sub-cluster AdaCos, {shared.NUM_CLASSES} classes x "
                    f"{shared.REFERENCE.num_subclusters} fixed random sub-centres, adaptive "
                    "scale ('faithful' update), identical centres in both",
            "step": "mixup (alpha 1) on device, forward in training mode, loss, backward, "
                    "Adam lr 1e-3 with coupled L2 2e-5 on every parameter",
            "input": f"random float32 waveforms, {sizes.samples} samples "
                     f"({sizes.samples / 16_000:g} s at 16 kHz)",
            "jax_timed_call": f"train.fit(model, head, x, y, TrainConfig(steps="
                              f"{sizes.fit_steps}, recompute_batch_stats=False)) on "
                              f"{sizes.fit_steps} batches of data (one partial epoch), wall "
                              "time / steps, after a first call that compiles and a second "
                              "identical one; median over calls",
            "torch_timed_call": "one step (batch gather from the host tensor, mixup, "
                                "forward, backward, Adam), median over steps",
            "interleaved": f"{sizes.repeats} (per batch size) rounds of [one JAX fit call, "
                           f"{sizes.torch_steps} PyTorch steps]",
        },
        "machine": {**machine, "torch_threads": threads, "torch_device": str(device),
                    "load_average_1min_before": load_before,
                    "load_average_1min_after": os.getloadavg()[0]},
        "versions": {**shared.versions(), "torch": torch.__version__},
        "parameters": counts,
        "equivalence_with_copied_weights": equivalence,
        "flops": flops,
        "matmul_gflops": peak,
        "batches": batches,
        "wall_s": time.perf_counter() - start_all,
    }
    shared.write("reference.json", result, skip="--quick" if quick else None)
    print(f"({result['wall_s']:.0f} s)")
    return {**result, "rows": [
        {"case": f"two-branch training step, batch {r['batch']}, train.fit "
                 f"({r['jax_clips_per_s']:.1f} vs {r['torch_clips_per_s']:.1f} clips/s)",
         "reference": f"PyTorch {torch.__version__}, same network and step",
         "ratio": round(r["ratio_jax_over_torch"], 2)} for r in batches]}


if __name__ == "__main__":
    shared.run(main, __doc__)
