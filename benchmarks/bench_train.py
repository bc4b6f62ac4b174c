"""Training throughput of the reference CNN, and the data-parallel path on 2 forced devices.

The reference model is what ``asdtheory run`` trains: ``models.CNNEmbedder`` (64 mel bands,
channels 16/32/64, embedding size 64) with a sub-cluster AdaCos head (4 classes x 4
sub-centres), batch 32 windows of 64 frames (~2 s; 8 windows per 10-s clip), Adam. Inputs are
random (throughput does not depend on them). Each time is the best of several ``train.fit``
epochs after a compilation epoch -- the machine may be shared, so the best run is the one
least disturbed.

Second part, in a subprocess with ``XLA_FLAGS=--xla_force_host_platform_device_count=2``:
the same training with the batch sharded over both forced host devices vs. on one of them.
On a CPU both "devices" share the same cores, so no speed-up is expected; the ratio shows the
cost of the sharded path (there is no target).

Third part, interleaved in one process: ``train.fit`` of a small MLP (the notebooks'
synthetic-data networks) with the training data on the device, each epoch one compiled loop
(the default for networks without convolutions and data below ``train.DEVICE_DATA_BYTES``),
against the same steps fed from the host one by one (``DEVICE_DATA_BYTES = 0``, what the
CNN above always gets); reported as the host-fed time over the on-device time.

    python benchmarks/bench_train.py        # writes benchmarks/results/train.json
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
from flax import nnx

from asdtheory import models, train

REPO = Path(__file__).resolve().parents[1]
N_MELS, FRAMES, WINDOWS_PER_CLIP = 64, 64, 8
EXAMPLES, BATCH, REPEATS = 480, 32, 3  # 480 windows = the 60 training clips of "valve mini"


def reference(seed: int = 0):
    rngs = nnx.Rngs(seed)
    model = models.CNNEmbedder(N_MELS, 64, channels=(16, 32, 64), rngs=rngs)
    head = models.make_head("subcluster-adacos", embed_dim=64, num_classes=4, num_subclusters=4,
                            rngs=rngs)
    return model, head


def epoch_seconds(devices=None) -> float:
    """Best wall time of one training epoch (EXAMPLES windows), after compilation."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(EXAMPLES, FRAMES, N_MELS)).astype(np.float32)
    y = rng.integers(0, 4, EXAMPLES).astype(np.int32)
    config = train.TrainConfig(epochs=1, batch_size=BATCH, progress=False)
    model, head = reference()
    train.fit(model, head, x, y, config=config, key=jax.random.key(0), devices=devices)
    times = []
    for i in range(REPEATS):
        start = time.perf_counter()
        train.fit(model, head, x, y, config=config, key=jax.random.key(i), devices=devices)
        times.append(time.perf_counter() - start)
    return min(times)


def feeding_seconds() -> dict:
    """Best wall time of 50 epochs of 8 steps (512 examples, batch 64) of a small MLP
    (32 -> 64 -> 64 -> 16, sub-cluster AdaCos 8 x 4) with the data on the device and fed
    from the host, interleaved, after one compiling round."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(512, 32)).astype(np.float32)
    y = rng.integers(0, 8, 512).astype(np.int32)
    config = train.TrainConfig(epochs=50, batch_size=64, progress=False)
    default, times = train.DEVICE_DATA_BYTES, {"device": [], "host": []}
    try:
        for repeat in range(REPEATS + 1):
            for feed, limit in (("device", default), ("host", 0)):
                train.DEVICE_DATA_BYTES = limit
                rngs = nnx.Rngs(0)
                model = models.MLPEmbedder(32, 16, hidden=(64, 64), rngs=rngs)
                head = models.make_head("subcluster-adacos", embed_dim=16, num_classes=8,
                                        num_subclusters=4, rngs=rngs)
                start = time.perf_counter()
                train.fit(model, head, x, y, config=config, key=jax.random.key(repeat))
                if repeat:
                    times[feed].append(time.perf_counter() - start)
    finally:
        train.DEVICE_DATA_BYTES = default
    return {f"mlp_{feed}_s": min(t) for feed, t in times.items()}


def worker() -> None:
    """Runs inside the 2-device subprocess; prints one JSON line."""
    assert jax.device_count() == 2, jax.devices()
    one = epoch_seconds(jax.devices()[:1])
    two = epoch_seconds(jax.devices())
    print(json.dumps({"one_device_s": one, "two_devices_s": two}))


def main() -> dict:
    steps = -(-EXAMPLES // BATCH)  # train.fit: ceil(n / batch) steps per epoch
    seconds = epoch_seconds()
    windows_per_s = steps * BATCH / seconds
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
           "JAX_PLATFORMS": "cpu"}
    out = subprocess.run([sys.executable, __file__, "--worker"], env=env, check=True,
                         capture_output=True, text=True).stdout
    parallel = json.loads(out.strip().splitlines()[-1])
    feeding = feeding_seconds()
    result = {
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(),
                    "jax": jax.__version__, "backend": jax.default_backend()},
        "model": "CNNEmbedder(64 mels, channels 16/32/64, D=64) + sub-cluster AdaCos 4x4",
        "batch": BATCH, "window_frames": FRAMES, "steps_per_epoch": steps,
        "epoch_seconds": round(seconds, 3),
        "windows_per_second": round(windows_per_s, 1),
        "clips_per_second": round(windows_per_s / WINDOWS_PER_CLIP, 2),
        "data_parallel_2_forced_devices": {
            "one_device_epoch_s": round(parallel["one_device_s"], 3),
            "two_devices_epoch_s": round(parallel["two_devices_s"], 3),
            "speedup": round(parallel["one_device_s"] / parallel["two_devices_s"], 3),
        },
        "small_mlp_data_on_device_vs_host_fed": {
            **{name: round(value, 3) for name, value in feeding.items()},
            "speedup": round(feeding["mlp_host_s"] / feeding["mlp_device_s"], 2),
        },
    }
    print(f"reference CNN: {windows_per_s:.1f} windows/s = "
          f"{windows_per_s / WINDOWS_PER_CLIP:.2f} ten-second clips/s "
          f"({steps} steps of {BATCH} in {seconds:.2f} s)")
    dp = result["data_parallel_2_forced_devices"]
    print(f"2 forced CPU devices vs 1: epoch {dp['two_devices_epoch_s']:.2f} s vs "
          f"{dp['one_device_epoch_s']:.2f} s, speed-up x{dp['speedup']:.2f}")
    feed = result["small_mlp_data_on_device_vs_host_fed"]
    print(f"small MLP, 400 steps: data on the device (one compiled loop per epoch) "
          f"{feed['mlp_device_s']:.2f} s vs fed from the host step by step "
          f"{feed['mlp_host_s']:.2f} s, x{feed['speedup']:.2f}")
    path = REPO / "benchmarks" / "results" / "train.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {path.relative_to(REPO)}")
    return {"benchmark": "training", **result, "rows": [{
        "case": f"CNN training ({result['clips_per_second']} clips/s), 2 forced CPU devices",
        "reference": "the same step on 1 device", "ratio": dp["speedup"]}, {
        "case": "small MLP training (400 steps), data on the device",
        "reference": "the same steps fed from the host", "ratio": feed["speedup"]}]}


if __name__ == "__main__":
    worker() if "--worker" in sys.argv else main()
