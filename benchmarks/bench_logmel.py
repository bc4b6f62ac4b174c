"""Log-mel spectrograms of 64 ten-second clips: asdtheory (JAX, after compilation) vs librosa.

The call users make -- ``audio.log_mel(waveforms)`` on the NumPy array ``audio.load`` gives,
the result returned -- is the headline; the jitted kernel on an array already on the device is
shown beside it. Both are measured against librosa's batched call in the same process, in
interleaved rounds (librosa, public call, kernel, in a rotating order), so that a busy spell on
the shared machine hits all of them alike; a process's time for each is its best round.

Run: ``python benchmarks/bench_logmel.py`` (data root from ``$ASDTHEORY_DATA``, else
``../shared/data`` beside the repository). It runs PROCESSES fresh worker processes (timings
move between processes by more than within one: compilation, memory layout, other load) and
reports each ratio's median and its spread (min, max) over them, plus how close the JAX
front-end gets to this CPU's FFT and matmul throughput, and writes
``benchmarks/results/logmel.json``.
"""

from __future__ import annotations

import functools
import json
import math
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import librosa
import numpy as np

from asdtheory import audio, kernels
from asdtheory.data import dcase

REPO = Path(__file__).resolve().parents[1]
PARAMS = dict(sample_rate=16000, n_fft=1024, hop_length=512, n_mels=128)
NUM_CLIPS = 64
PROCESSES = 3
ROUNDS = 15  # interleaved rounds per process
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


def interleaved(fns: dict, rounds: int = ROUNDS) -> dict[str, list[float]]:
    """Seconds of each function in every round, the order rotating from round to round."""
    names = list(fns)
    times = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            start = time.perf_counter()
            fns[name]()
            times[name].append(time.perf_counter() - start)
    return times


def worker() -> dict:
    """One process's measurements (printed as JSON by ``--worker``)."""
    root = dcase.data_root(os.environ.get("ASDTHEORY_DATA") or REPO.parent / "shared" / "data")
    clips = dcase.index_dataset(root, machines=["valve"])[:NUM_CLIPS]
    waves = np.stack([audio.load(c.path) for c in clips])
    load_before = os.getloadavg()[0]

    kernel = jax.jit(functools.partial(audio.log_mel, **PARAMS))
    x = jax.device_put(waves)
    ours = np.asarray(kernel(x).block_until_ready())  # compiles the kernel
    public = np.asarray(audio.log_mel(waves, **PARAMS))  # compiles the public call's kernel
    reference = librosa_log_mel(waves)  # warm-up (librosa caches its filterbank)
    if not np.array_equal(public, ours):
        raise AssertionError("the public call and the jitted kernel disagree")
    error = float(np.abs(ours - reference).max() / (reference.max() - reference.min()))
    times = interleaved({
        "librosa": lambda: librosa_log_mel(waves),
        "public": lambda: audio.log_mel(waves, **PARAMS).block_until_ready(),
        "kernel": lambda: kernel(x).block_until_ready(),
    })
    t_librosa_loop = best_time(lambda: [librosa_log_mel(w) for w in waves], repeats=3)

    # This CPU's throughput on the two kernels that dominate the work: the FFTs of one chunk of
    # frames as log_mel cuts them, repeated in cache on one core (XLA's FFT kernel is
    # single-threaded at that size), and a large matmul.
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
    # The time the two kernels alone would take, the FFTs spread over as many cores as log_mel
    # runs parts of the batch (one per usable CPU): the floor for this design.
    cores = kernels.usable_cpus()
    t_floor = t_fft / cores + mel_flops / (matmul_gflops * 1e9)

    best = {name: min(t) for name, t in times.items()}
    return {
        "seconds_per_clip": waves.shape[1] / PARAMS["sample_rate"],
        "public_numpy_seconds": best["public"],
        "jax_seconds": best["kernel"],
        "librosa_batched_seconds": best["librosa"],
        "librosa_loop_seconds": t_librosa_loop,
        "round_seconds": times,
        "speedup_public_numpy_vs_librosa_batched": best["librosa"] / best["public"],
        "speedup_vs_librosa_batched": best["librosa"] / best["kernel"],
        "speedup_vs_librosa_loop": t_librosa_loop / best["kernel"],
        "public_over_kernel": best["public"] / best["kernel"],
        "max_error_relative_to_dynamic_range": error,
        "fft_seconds_one_core": t_fft,
        "fft_gflops_one_core": fft_flops / t_fft / 1e9,
        "cores_used_for_floor": cores,
        "matmul_gflops": matmul_gflops,
        "mel_gflop_banded": mel_flops / 1e9,
        "floor_seconds_fft_plus_mel_at_matmul_rate": t_floor,
        "fraction_of_floor": t_floor / best["kernel"],
        "load_average_1min": [load_before, os.getloadavg()[0]],
    }


def spread(values) -> dict:
    return {"min": float(np.min(values)), "median": float(np.median(values)),
            "max": float(np.max(values))}


SUMMARISED = ("public_numpy_seconds", "jax_seconds", "librosa_batched_seconds",
              "librosa_loop_seconds", "speedup_public_numpy_vs_librosa_batched",
              "speedup_vs_librosa_batched", "speedup_vs_librosa_loop", "public_over_kernel",
              "fft_seconds_one_core", "matmul_gflops", "floor_seconds_fft_plus_mel_at_matmul_rate",
              "fraction_of_floor")


def main() -> dict:
    runs = []
    for i in range(PROCESSES):
        done = subprocess.run([sys.executable, __file__, "--worker"], capture_output=True,
                              text=True, cwd=REPO)
        if done.returncode:
            raise RuntimeError(f"worker process {i + 1} failed:\n{done.stderr[-3000:]}")
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(f"process {i + 1}/{PROCESSES}: public {runs[-1]['public_numpy_seconds'] * 1e3:.1f} "
              f"ms, kernel {runs[-1]['jax_seconds'] * 1e3:.1f} ms, librosa "
              f"{runs[-1]['librosa_batched_seconds'] * 1e3:.1f} ms", file=sys.stderr)
    summary = {key: spread([r[key] for r in runs]) for key in SUMMARISED}
    med = {key: value["median"] for key, value in summary.items()}
    results = {
        "clips": NUM_CLIPS,
        "seconds_per_clip": runs[0]["seconds_per_clip"],
        "params": PARAMS,
        "processes": PROCESSES,
        "rounds_per_process": ROUNDS,
        "timing": "per process: best of interleaved rounds; here: median over processes",
        **med,
        "spread_over_processes": summary,
        "max_error_relative_to_dynamic_range": max(
            r["max_error_relative_to_dynamic_range"] for r in runs),
        "cpu_count": os.cpu_count(),
        "load_average_1min": [r["load_average_1min"] for r in runs],
        "machine": platform.processor() or platform.machine(),
        "jax": jax.__version__,
        "librosa": librosa.__version__,
        "per_process": [{k: v for k, v in r.items() if k != "round_seconds"} for r in runs],
    }

    def row(key, scale=1.0, fmt=".2f"):
        s = summary[key]
        return (f"{s['median'] * scale:{fmt}} (min {s['min'] * scale:{fmt}}, max "
                f"{s['max'] * scale:{fmt}})")

    print(f"{NUM_CLIPS} clips x {results['seconds_per_clip']:.0f} s, {PARAMS}, "
          f"{os.cpu_count()} CPU(s); median over {PROCESSES} processes (min, max):")
    print(f"audio.log_mel(NumPy array):         {row('public_numpy_seconds', 1e3, '.1f')} ms")
    print(f"jitted kernel on a device array:    {row('jax_seconds', 1e3, '.1f')} ms")
    print(f"librosa, one batched call:          {row('librosa_batched_seconds', 1e3, '.1f')} ms")
    print(f"librosa, loop over clips:           {row('librosa_loop_seconds', 1e3, '.1f')} ms")
    print(f"public call vs librosa batched:     {row('speedup_public_numpy_vs_librosa_batched')}x"
          " (target >= 4x)")
    print(f"kernel vs librosa batched:          {row('speedup_vs_librosa_batched')}x")
    print(f"kernel vs librosa loop:             {row('speedup_vs_librosa_loop')}x")
    print(f"public call / kernel time:          {row('public_over_kernel')}")
    print(f"max |JAX - librosa| / dynamic range:  "
          f"{results['max_error_relative_to_dynamic_range']:.1e}")
    print(f"floor (FFTs alone on {runs[0]['cores_used_for_floor']} core(s) + mel at matmul "
          f"rate) {med['floor_seconds_fft_plus_mel_at_matmul_rate'] * 1e3:.1f} ms = "
          f"{med['fraction_of_floor']:.0%} of the kernel time")
    out = REPO / "benchmarks" / "results" / "logmel.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out.relative_to(REPO)}")
    case = f"log-mel, {NUM_CLIPS} x 10 s clips"

    def ratio(key):
        s = summary[key]
        return {"ratio": round(s["median"], 2), "ratio_min": round(s["min"], 2),
                "ratio_max": round(s["max"], 2)}

    return {"benchmark": "log-mel front-end", **results, "rows": [
        {"case": f"{case}, audio.log_mel on the NumPy array", "reference":
         "librosa, one batched call", **ratio("speedup_public_numpy_vs_librosa_batched")},
        {"case": f"{case}, jitted kernel on a device array", "reference":
         "librosa, one batched call", **ratio("speedup_vs_librosa_batched")},
        {"case": case, "reference": "librosa, loop over clips",
         **ratio("speedup_vs_librosa_loop")},
    ]}


if __name__ == "__main__":
    if sys.argv[1:] == ["--worker"]:
        print(json.dumps(worker()))
    else:
        main()
