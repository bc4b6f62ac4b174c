"""Log-mel spectrograms of 64 ten-second clips: asdtheory (JAX, after compilation) vs librosa.

The call users make -- ``audio.log_mel(waveforms)`` on the NumPy array ``audio.load`` gives --
is the headline; the jitted kernel on an array already on the device is shown beside it.

Run: ``python benchmarks/bench_logmel.py`` (data root from ``$ASDTHEORY_DATA``, else
``../shared/data`` beside the repository). Prints the speed ratio and how close the JAX
front-end gets to this CPU's FFT and matmul throughput, and writes
``benchmarks/results/logmel.json``. Both sides run in the same process on the same clips with
the same parameters; each time is the best of several runs (the machine may be shared).
"""

from __future__ import annotations

import functools
import json
import math
import os
import platform
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import librosa
import numpy as np

from asdtheory import audio
from asdtheory.data import dcase

REPO = Path(__file__).resolve().parents[1]
PARAMS = dict(sample_rate=16000, n_fft=1024, hop_length=512, n_mels=128)
NUM_CLIPS = 64
REPEATS = 7


def best_time(fn, repeats=REPEATS) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def librosa_log_mel(y):
    spec = librosa.feature.melspectrogram(y=y, sr=PARAMS["sample_rate"], n_fft=PARAMS["n_fft"],
                                          hop_length=PARAMS["hop_length"],
                                          n_mels=PARAMS["n_mels"])
    return librosa.power_to_db(spec, ref=1.0, amin=1e-10, top_db=None)


def main() -> dict:
    root = dcase.data_root(os.environ.get("ASDTHEORY_DATA") or REPO.parent / "shared" / "data")
    clips = dcase.index_dataset(root, machines=["valve"])[:NUM_CLIPS]
    waves = np.stack([audio.load(c.path) for c in clips])
    print(f"{len(clips)} clips x {waves.shape[1] / PARAMS['sample_rate']:.0f} s, "
          f"{PARAMS}, {os.cpu_count()} CPU(s), load average {os.getloadavg()[0]:.1f}")

    log_mel = jax.jit(functools.partial(audio.log_mel, **PARAMS))
    x = jax.device_put(waves)
    ours = np.asarray(log_mel(x).block_until_ready())  # compiles
    t_jax = best_time(lambda: log_mel(x).block_until_ready(), repeats=30)
    public = np.asarray(audio.log_mel(waves, **PARAMS))  # compiles the public call's kernel
    public_times = [best_time(lambda: audio.log_mel(waves, **PARAMS).block_until_ready(), 1)
                    for _ in range(30)]
    t_public = min(public_times)

    reference = librosa_log_mel(waves)  # warm-up (librosa caches its filterbank)
    t_librosa = best_time(lambda: librosa_log_mel(waves))
    t_librosa_loop = best_time(lambda: [librosa_log_mel(w) for w in waves], repeats=3)
    error = float(np.abs(ours - reference).max() / (reference.max() - reference.min()))
    if not np.array_equal(public, ours):
        raise AssertionError("the public call and the jitted kernel disagree")

    # This CPU's throughput on the two kernels that dominate the work: the FFTs of one chunk of
    # frames as log_mel cuts them, repeated in cache on one core (XLA's FFT kernel is
    # single-threaded), and a large matmul.
    frames = 1 + waves.shape[1] // PARAMS["hop_length"]
    n_fft = PARAMS["n_fft"]
    per_chunk = max(1, audio._CHUNK_SAMPLES // (frames * n_fft))
    chunk = jnp.ones((per_chunk * frames, n_fft), jnp.float32)
    rfft = jax.jit(lambda c: jnp.fft.rfft(c, axis=-1))
    rfft(chunk).block_until_ready()
    t_fft = best_time(lambda: rfft(chunk).block_until_ready(), repeats=50) * NUM_CLIPS / per_chunk
    fft_flops = NUM_CLIPS * frames * 2.5 * n_fft * math.log2(n_fft)  # real FFT convention
    a = jnp.ones((2048, 2048), jnp.float32)
    matmul = jax.jit(lambda m: m @ m)
    matmul(a).block_until_ready()
    matmul_gflops = 2 * 2048**3 / best_time(lambda: matmul(a).block_until_ready()) / 1e9
    bands = audio._mel_bands(sample_rate=PARAMS["sample_rate"], n_fft=n_fft,
                             n_mels=PARAMS["n_mels"], fmin=0.0, fmax=None)
    mel_flops = NUM_CLIPS * frames * sum(2 * w.size for _, _, w in bands)
    dense_mel_flops = NUM_CLIPS * frames * 2 * PARAMS["n_mels"] * (n_fft // 2 + 1)
    # The time the two kernels alone would take, the FFTs spread over as many cores as log_mel
    # runs streams of chunks: the floor for this design.
    cores = min(audio._STREAMS, os.cpu_count() or 1)
    t_floor = t_fft / cores + mel_flops / (matmul_gflops * 1e9)

    results = {
        "clips": NUM_CLIPS,
        "seconds_per_clip": waves.shape[1] / PARAMS["sample_rate"],
        "params": PARAMS,
        "public_numpy_seconds": t_public,
        "public_numpy_seconds_median": float(np.median(public_times)),
        "jax_seconds": t_jax,
        "librosa_batched_seconds": t_librosa,
        "librosa_loop_seconds": t_librosa_loop,
        "speedup_public_numpy_vs_librosa_batched": t_librosa / t_public,
        "speedup_vs_librosa_batched": t_librosa / t_jax,
        "speedup_vs_librosa_loop": t_librosa_loop / t_jax,
        "max_error_relative_to_dynamic_range": error,
        "fft_seconds_one_core": t_fft,
        "fft_gflops_one_core": fft_flops / t_fft / 1e9,
        "cores_used_for_floor": cores,
        "matmul_gflops": matmul_gflops,
        "mel_gflop_banded": mel_flops / 1e9,
        "mel_gflop_dense": dense_mel_flops / 1e9,
        "floor_seconds_fft_plus_mel_at_matmul_rate": t_floor,
        "fraction_of_floor": t_floor / t_jax,
        "cpu_count": os.cpu_count(),
        "load_average_1min": os.getloadavg()[0],
        "machine": platform.processor() or platform.machine(),
        "jax": jax.__version__,
        "librosa": librosa.__version__,
    }
    print(f"audio.log_mel(NumPy array), best:    {t_public * 1e3:8.1f} ms "
          f"(median {np.median(public_times) * 1e3:.1f} ms)")
    print(f"jitted kernel on a device array:      {t_jax * 1e3:8.1f} ms")
    print(f"librosa, one batched call:            {t_librosa * 1e3:8.1f} ms  "
          f"-> the public call is {t_librosa / t_public:.2f}x faster, the kernel "
          f"{t_librosa / t_jax:.2f}x (target >= 4x)")
    print(f"librosa, loop over clips:             {t_librosa_loop * 1e3:8.1f} ms  "
          f"-> JAX is {t_librosa_loop / t_jax:.2f}x faster")
    print(f"max |JAX - librosa| / dynamic range:  {error:.1e}")
    print(f"this CPU: rfft {results['fft_gflops_one_core']:.1f} GFLOP/s on one core (the FFTs "
          f"alone take {t_fft * 1e3:.1f} ms there), matmul {matmul_gflops:.1f} GFLOP/s; banded "
          f"mel projection {mel_flops / 1e9:.2f} GFLOP (dense {dense_mel_flops / 1e9:.2f})")
    print(f"floor (FFTs alone on {cores} core(s) + mel at matmul rate) {t_floor * 1e3:.1f} ms = "
          f"{t_floor / t_jax:.0%} of the JAX time")
    out = REPO / "benchmarks" / "results" / "logmel.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out.relative_to(REPO)}")
    case = f"log-mel, {NUM_CLIPS} x 10 s clips"
    return {"benchmark": "log-mel front-end", **results, "rows": [
        {"case": f"{case}, audio.log_mel on the NumPy array", "reference":
         "librosa, one batched call", "ratio": round(t_librosa / t_public, 2)},
        {"case": f"{case}, jitted kernel on a device array", "reference":
         "librosa, one batched call", "ratio": round(t_librosa / t_jax, 2)},
        {"case": case, "reference": "librosa, loop over clips",
         "ratio": round(t_librosa_loop / t_jax, 2)},
    ]}


if __name__ == "__main__":
    main()
