"""``asdtheory bench``: run every benchmark script in one process and print one table of ratios.

Each ``benchmarks/bench_*.py`` defines ``main() -> dict`` that measures this library side by
side with its reference in the same run and returns ``{"benchmark": str, "rows": [row, ...]}``
where every row has ``case``, ``reference`` and ``ratio`` (how many times faster this library
is than the reference; above 1 is faster). Other row keys are details kept in the JSON.
"""

from __future__ import annotations

import runpy
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

ROW_KEYS = ("case", "reference", "ratio")


def median_seconds(fn, repeats: int) -> float:
    """Median wall time of ``repeats`` calls of ``fn`` after one warm-up call (compilation,
    allocator); ``fn`` must block until its result is ready."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run_benchmarks(scripts: Sequence[Path]) -> list[dict]:
    """Runs each script's ``main()`` and checks the shape of what it returns."""
    results = []
    for script in scripts:
        print(f"== {script.name}", file=sys.stderr)
        result = runpy.run_path(str(script), run_name="asdtheory_bench")["main"]()
        if not isinstance(result, dict) or not isinstance(result.get("rows"), list):
            raise ValueError(f"{script.name}: main() must return a dict with a 'rows' list.")
        for row in result["rows"]:
            missing = [k for k in ROW_KEYS if k not in row]
            if missing:
                raise ValueError(f"{script.name}: a row lacks {missing}: {row}")
        results.append({"script": script.name, **result})
    return results


def ratio_table(results: Sequence[dict]) -> str:
    """One fixed-width table: benchmark, case, reference, ratio."""
    rows = [(r["script"].removeprefix("bench_").removesuffix(".py"), row["case"],
             row["reference"], f"{row['ratio']:.2f}x") for r in results for row in r["rows"]]
    header = ("benchmark", "case", "reference", "ratio")
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]
    lines = ["  ".join(str(x).ljust(w) for x, w in zip(line, widths, strict=True)).rstrip()
             for line in (header, *rows)]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
