"""``asdtheory experiment run|status|audit``: the runner on the command line.

Registered by :func:`add_parser` in :func:`asdtheory.repro.cli.build_parser`. Bad input (an
unknown experiment or size, ``--jobs 0``, a results folder of another library version, a
corrupt record) is reported in one line with exit code 2 before any work.
"""

from __future__ import annotations

import argparse
import sys

from asdtheory.experiments.core import SIZES


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "experiment", help="compute, list and audit the records of the experiments",
        description="Each experiment is a grid of units (method x condition x seed); a unit's "
        "record (per-clip DCASE score files, arrays, provenance) lives in "
        "<results>/<experiment>/<size>/<unit id>/.")
    commands = parser.add_subparsers(dest="experiment_command", metavar="{run,status,audit}",
                                     required=True)

    run = commands.add_parser(
        "run", help="compute the missing and stale units of an experiment",
        description="Compute the missing and stale units, one process per unit pinned to one "
        "CPU; each record is written atomically, so an interrupted run resumes.")
    run.add_argument("name", metavar="NAME", help="experiment name")
    run.add_argument("--size", choices=SIZES, required=True,
                     help="smoke: seconds; standard: the size that decides the claim; full: "
                     "the full DCASE data")
    run.add_argument("--jobs", type=int, default=1,
                     help="units computed at once, job j on the j-th CPU this command may use "
                     "(default 1; a second run at the same time: taskset -c 1 asdtheory ...)")
    run.add_argument("--replace-corrupt", action="store_true",
                     help="recompute records whose files do not match their hashes")
    run.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    _results(run)
    run.set_defaults(func=_reported(_run))

    status = commands.add_parser("status", help="list present, missing, stale, corrupt units",
                                 description="Every declared unit's state and the time to "
                                 "compute the rest (from the wall times of present records).")
    status.add_argument("name", metavar="NAME", nargs="?", help="experiment (default: all)")
    status.add_argument("--size", choices=SIZES, default=None, help="default: every size")
    _results(status)
    status.set_defaults(func=_reported(_status))

    audit = commands.add_parser(
        "audit", help="recompute a few units and compare them with their records",
        description="Recompute K present units chosen from the git commit; bit for bit when "
        "the record's CPU model is this machine's, else within the spread of the seeds "
        "(asdtheory.experiments.audit).")
    audit.add_argument("name", metavar="NAME", help="experiment name")
    audit.add_argument("--units", type=int, required=True, metavar="K",
                       help="how many units to recompute (chosen from the git commit)")
    audit.add_argument("--size", choices=SIZES, default="standard",
                       help="which records to audit (default: standard)")
    _results(audit)
    audit.set_defaults(func=_reported(_audit))


def _results(parser) -> None:
    parser.add_argument("--results", metavar="DIR", default=None,
                        help="results folder (default: $ASDTHEORY_RESULTS or ./results)")


def _reported(func):
    """Expected failures (bad names, foreign or corrupt records) in one line, exit code 2."""
    def command(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except (ValueError, FileNotFoundError) as err:
            print(f"asdtheory experiment {args.experiment_command}: error: {err}",
                  file=sys.stderr)
            return 2

    return command


def _run(args) -> int:
    from asdtheory import experiments

    summary = experiments.run(args.name, args.size, jobs=args.jobs, results_dir=args.results,
                              replace_corrupt=args.replace_corrupt,
                              progress=not args.no_progress)
    print(summary.report())
    print(experiments.status(args.name, args.size, results_dir=args.results).report())
    return 1 if summary.failed else 0


def _status(args) -> int:
    from asdtheory import experiments

    names = [experiments.get(args.name).name] if args.name else experiments.names()
    for name in names:
        for size in [args.size] if args.size else SIZES:
            print(experiments.status(name, size, results_dir=args.results).report())
    return 0


def _audit(args) -> int:
    from asdtheory import experiments

    results = experiments.audit(args.name, args.size, units=args.units,
                                results_dir=args.results)
    for result in results:
        print(f"{'ok  ' if result.passed else 'FAIL'} {result.unit} ({result.rule}): "
              f"{result.detail}")
    return 0 if all(r.passed for r in results) else 1
