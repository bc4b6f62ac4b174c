"""The ``asdtheory`` command: every subcommand's arguments and the glue that calls the library.

``asdtheory verify`` (:mod:`asdtheory.repro.verify`), ``asdtheory run``
(:func:`asdtheory.detect.dcase.run`), ``asdtheory score`` (:mod:`asdtheory.detect.store`),
``asdtheory evaluate`` (:mod:`asdtheory.data.submission`, :mod:`asdtheory.evaluation`),
``asdtheory data fetch|info`` (:mod:`asdtheory.data`) and
``asdtheory bench`` (:mod:`asdtheory.repro.bench`). The science modules import nothing from
here.

A user error (a missing folder, a bad value) ends in one line ``asdtheory: error: ...`` and
exit status 2, never in a traceback; messages name the command-line flags that fix them.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import re
import sys
import time
import warnings
from pathlib import Path

from asdtheory import __version__
from asdtheory.repro.experiment_cli import add_parser as _add_experiment


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="asdtheory",
        description="Check why angular margin losses work for anomalous sound detection "
        "(Wilkinghoff & Kurth, TASLP 2024).",
    )
    parser.add_argument("--version", action="version", version=f"asdtheory {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in (_add_verify, _add_run, _add_score, _add_evaluate, _add_data, _add_bench,
                _add_experiment):
        add(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
    shown: set[str] = set()

    def show_warning(message, category, filename, lineno, file=None, line=None) -> None:
        # A user reads what to know, not where in the library it was noticed, and each thing
        # once (a run computes its table three times: system, untrained twin, level detector).
        text = f"asdtheory: warning: {in_flags(str(message))}"
        if text not in shown:
            shown.add(text)
            print(text, file=sys.stderr)

    with warnings.catch_warnings():
        warnings.showwarning = show_warning
        try:
            return int(args.func(args) or 0)
        except BrokenPipeError:
            # The reader of a pipe stopped reading (`asdtheory ... | head`): nothing went
            # wrong here. Output still buffered goes nowhere, so that the interpreter's own
            # flush at exit does not fail again; the status is a shell's for SIGPIPE.
            _silence_stdout()
            return 141
        except (ValueError, OSError) as err:
            # The library's checks describe user errors completely, and the operating
            # system's (a file where a folder goes, a full disk) name the path; a traceback
            # adds nothing.
            print(f"asdtheory: error: {_error_text(err)}", file=sys.stderr)
            return 2


def _silence_stdout() -> None:
    try:
        target = sys.stdout.fileno()
    except (AttributeError, ValueError, io.UnsupportedOperation):
        return  # a stdout without a file descriptor (a test's capture) has nothing to flush
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, target)
    os.close(devnull)


def _error_text(err: Exception) -> str:
    if isinstance(err, OSError) and err.filename is not None and err.strerror:
        return f"{err.filename}: {err.strerror}"
    return in_flags(str(err))


def _number(kind: type = float, *, low: float | None = None, above: float | None = None):
    """An argparse ``type``: a finite ``kind`` (int or float) >= ``low`` or > ``above``; a bad
    value is reported as ``argument --flag: ...`` before any work."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected {'an integer' if kind is int else 'a number'}, got {text!r}"
            ) from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
        if low is not None and value < low:
            raise argparse.ArgumentTypeError(f"must be >= {low:g}, got {text}")
        if above is not None and value <= above:
            raise argparse.ArgumentTypeError(f"must be > {above:g}, got {text}")
        return value

    return parse


# The library's messages name the Python arguments that fix a problem; on the command line
# the same fixes are flags, or steps outside the program where no flag exists.
FLAG_WORDING = (
    (r"lower RunConfig\.seconds", "pass a smaller --seconds"),
    (r"\(use protocol='full' for the other machines\)",
     "(pass --protocol full for the other machines)"),
    (r"; lower it \(systems\.get\(name\)\.config\(\.\.\., small_data=True\) does\)",
     "; pass a smaller --batch-size (32 suits the 60 clips of the mini protocol)"),
    (r"lower batch_size", "pass a smaller --batch-size"),
    (r"\bbatch_size=", "--batch-size "),
    (r"\bn_resamples must be", "--resamples must be"),
    (r"^data root (.+?) does not exist; pass the folder",
     r"--data \1 does not exist; pass the folder"),
    (r"^noise and snr go together", "--noise and --snr go together"),
    (r"^machines is empty", "--machines is empty"),
    (r"^machines='all' found", "--machines all found"),
    (r"not sample_rate=(\d+) Hz; pass resample=True to resample it or sample_rate= the file's "
     r"rate", r"not \1 Hz; resample the file, e.g. `sox in.wav -r \1 out.wav`"),
    (r"choose one with channel=0\.\.\d+ or average them with mix='mean'",
     "keep one channel, e.g. `sox in.wav -c 1 out.wav`"),
    (r"\bwith channel= \(", "with --channel N ("),
    (r"\bchannel=(\d+)", r"--channel \1"),
    (r"\bchannel=None", "no --channel"),
    (r"^fold=", "--fold "),
    (r"; lower window_frames \(context_frames for the autoencoder\)\.",
     "; pass a larger --seconds (every clip is cut to its first --seconds)."),
)


def in_flags(message: str) -> str:
    """``message`` with the Python argument names of :data:`FLAG_WORDING` in command-line
    terms."""
    for pattern, replacement in FLAG_WORDING:
        message = re.sub(pattern, replacement, message)
    return message


# Advice for clips that `run` cannot use (data.audit), in terms of this command line.
CLIP_FIXES = {
    "unreadable": "replace or remove the file",
    "sample_rate": "resample the recordings to 16 kHz mono, e.g. `sox in.wav -r 16000 -c 1 "
                   "out.wav` (DCASE Task 2 clips are 16 kHz)",
    "channels": "keep one channel, e.g. `sox in.wav -c 1 out.wav` (DCASE Task 2 clips are mono)",
    "channel": "pass --channel N, the microphone to keep (MIMII recordings hold 8, numbered from "
               "0; a mono file has only channel 0)",
    "length": "pass a smaller --seconds (every clip is cut to its first --seconds) or remove "
              "the short clips",
    "name": "rename the file to a DCASE clip name or MIMII clip path (see `asdtheory data info "
            "--help`) or move it out of the train/, test/, normal/ and abnormal/ folders",
}


# --- asdtheory verify -------------------------------------------------------------------------

def _add_verify(subparsers) -> None:
    from asdtheory.repro import verify
    from asdtheory.repro.runmode import MODES

    parser = subparsers.add_parser(
        "verify", help="execute the notebooks and write the claims report",
        description=verify.__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=MODES, default=os.environ.get("ASDTHEORY_MODE", "ci"),
                        help="ci: minutes on a CPU (what the stored outputs show); full: the "
                        "real protocol (default: $ASDTHEORY_MODE or ci)")
    parser.add_argument("--notebooks", metavar="NN,NN",
                        help="comma-separated notebook numbers, e.g. 01,02 (default: all)")
    parser.add_argument("--output", default=str(verify.DEFAULT_OUTPUT),
                        help="directory for claims.md, executed notebooks and HTML "
                        "(default: results/)")
    parser.add_argument("--notebook-dir", default="notebooks",
                        help="where the NN_name.py sources are (default: ./notebooks)")
    parser.add_argument("--data", metavar="ROOT",
                        help="data root (default: $ASDTHEORY_DATA or the per-user cache)")
    parser.add_argument("--no-fetch", action="store_true",
                        help="do not download missing DCASE archives; report them instead")
    parser.add_argument("--readme", metavar="README.md",
                        help="only rewrite the findings and the claims table of this README "
                        "from the stored notebook outputs (no execution)")
    parser.add_argument("--timeout", type=int, default=3600,
                        help="seconds allowed per cell (default: 3600)")
    parser.set_defaults(func=_verify)


def _verify(args: argparse.Namespace) -> int:
    from asdtheory.data.dcase import data_root
    from asdtheory.repro import verify

    if args.readme:
        if not Path(args.readme).is_file():
            raise FileNotFoundError(f"--readme {args.readme}: no such file; pass the "
                                    "repository's README.md.")
        verify.update_readme(Path(args.readme), Path(args.notebook_dir))
        print(f"updated the findings and claims table of {args.readme} from the stored "
              "notebook outputs")
        return 0
    selection = [s.strip() for s in args.notebooks.split(",")] if args.notebooks else None
    notebooks = verify.find_notebooks(Path(args.notebook_dir), selection)
    if not notebooks:
        print(f"no notebooks found in {args.notebook_dir}", file=sys.stderr)
        return 1
    os.environ["ASDTHEORY_MODE"] = args.mode
    root = data_root(args.data)
    problems = verify.missing_data(notebooks, mode=args.mode, root=root,
                                   fetch=not args.no_fetch)
    if problems:
        print("Not running: the notebooks need real recordings that are not there.\n  "
              + "\n  ".join(problems), file=sys.stderr)
        return 1
    return verify.verify(notebooks, output=Path(args.output), mode=args.mode, data=root,
                         timeout=args.timeout)


# --- asdtheory run ----------------------------------------------------------------------------

def _add_run(subparsers) -> None:
    from asdtheory import methods
    from asdtheory.detect import systems
    from asdtheory.detect.dcase import PROTOCOLS, RunConfig

    defaults = RunConfig()
    parser = subparsers.add_parser(
        "run", help="train and evaluate one anomalous sound detection system",
        description="Features -> training -> embeddings -> anomaly scores -> DCASE table "
        "(official 2023 rules) for one method, trained once on the clips of every machine "
        "given (the joint auxiliary task). Prints the table per machine and section and the "
        "official score; --json writes the results (keys official_score, rows).")
    parser.add_argument("--data", type=Path, default=None,
                        help="dataset root holding dcase2023t2/ and noise/, or the "
                        "dcase2023t2 folder itself (default: $ASDTHEORY_DATA or the user cache)")
    parser.add_argument("--machines", default=None,
                        help="comma-separated machine types trained on together, or 'all' "
                        "(every one present); default: valve for the mini and full "
                        "protocols, all for at-hand and mimii")
    parser.add_argument("--protocol", choices=sorted(PROTOCOLS), default=None,
                        help="mini (the DCASE 2023 valve test clips, cross-validated), full "
                        "(the official DCASE 2023 split), at-hand (the real recordings of "
                        "../shared/data: valve mini, DCASE 2020 slider training clips, MIMII "
                        "fan) or mimii (<data>/mimii/<machine>/id_NN/normal|abnormal, "
                        "2-fold cross-validation); default from ASDTHEORY_MODE: mini in ci, "
                        "full in full mode")
    parser.add_argument("--fold", type=_number(int, low=0), default=defaults.fold,
                        help="cross-validation fold of the mini, at-hand and mimii protocols: "
                        f"0 or 1 (default: {defaults.fold})")
    parser.add_argument("--channel", type=_number(int, low=0), default=None, metavar="N",
                        help="the channel kept from multi-channel MIMII recordings (the "
                        "public archives hold 8, numbered from 0; not needed for mono files)")
    parser.add_argument("--method", choices=methods.names(), default=None,
                        help="training objective (default: the system's own); "
                        + "; ".join(f"{m.name}: {m.summary}" for m in methods.METHODS.values()))
    parser.add_argument("--system", choices=systems.names(), default=systems.DEFAULT,
                        help=f"default {systems.DEFAULT}; "
                        + "; ".join(f"{s.name}: {s.summary}" for s in systems.SYSTEMS.values()))
    parser.add_argument("--noise", default=None, help="background recording in <data>/noise")
    parser.add_argument("--snr", type=_number(), default=None, help="SNR in dB for --noise")
    parser.add_argument("--seed", type=_number(int, low=0), default=defaults.seed,
                        help="seeds initialisation, training, k-means and noise offsets "
                        f"(default: {defaults.seed})")
    parser.add_argument("--seconds", type=_number(above=0), default=defaults.seconds,
                        help="every clip is cut to its first SECONDS; a shorter clip is an "
                        f"error (default: {defaults.seconds:g})")
    parser.add_argument("--epochs", type=_number(int, low=1), default=None,
                        help="training epochs (default: the system's: "
                        + ", ".join(f"{s.name} {s.detector.epochs}"
                                    + (f", {s.small_data_epochs} in the mini protocol"
                                       if s.small_data_epochs else "")
                                    for s in systems.SYSTEMS.values())
                        + "; the run reports whether the loss settled)")
    parser.add_argument("--batch-size", type=_number(int, low=1), default=None,
                        help="examples per optimiser step (default: the system's; reference: "
                        "64, 32 in the mini protocol)")
    parser.add_argument("--backend", default=None,
                        help="score back-end (default: the method's first; class-centre "
                        "methods: kmeans, nearest-centre, knn)")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    parser.add_argument("--output", type=Path, default=None, metavar="DIR",
                        help="write the DCASE submission files of the test clips here: "
                        "anomaly_score_<machine>_section_<NN>_test.csv and decision_result_..."
                        " (threshold: 90th percentile of a gamma distribution fitted to the "
                        "normal training clips' scores, as the DCASE 2023 baseline); default "
                        "with --json: the folder <json without .json>/ beside it")
    parser.add_argument("--save", type=Path, default=None, metavar="DIR",
                        help="keep the trained system in this new folder (network, back-end, "
                        "front-end, decision thresholds) for `asdtheory score --model DIR`")
    parser.add_argument("--checkpoint", type=Path, default=None, metavar="DIR",
                        help="folder of the training state (orbax), written after every "
                        "epoch")
    parser.add_argument("--resume", action="store_true",
                        help="continue the training saved in --checkpoint")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    hosts = parser.add_argument_group(
        "several hosts", "one process per host, each started with the same arguments and its "
        "own --process-id; every process reads the data, the batches are split over all "
        "hosts' devices, process 0 prints and writes the results (jax.distributed)")
    hosts.add_argument("--coordinator", default=None, metavar="HOST:PORT",
                       help="address of process 0, reachable from every host")
    hosts.add_argument("--num-processes", type=_number(int, low=1), default=None,
                       help="number of processes")
    hosts.add_argument("--process-id", type=_number(int, low=0), default=None,
                       help="this process's index, 0 .. num-processes - 1")
    parser.set_defaults(func=_run)


def _start_distributed(args: argparse.Namespace) -> str | None:
    """Joins the processes of a multi-host run (before anything touches JAX's devices);
    returns an error message for an incomplete or inconsistent set of flags."""
    given = [args.coordinator, args.num_processes, args.process_id]
    if all(value is None for value in given):
        return None
    if any(value is None for value in given):
        return "--coordinator, --num-processes and --process-id go together."
    if args.num_processes < 1 or not 0 <= args.process_id < args.num_processes:
        return (f"--process-id must lie in 0 .. {args.num_processes - 1} for "
                f"--num-processes {args.num_processes}, got {args.process_id}.")
    host, _, port = args.coordinator.rpartition(":")
    if not host or not port.isdigit():
        return f"--coordinator must be HOST:PORT, got {args.coordinator!r}."
    import jax

    jax.distributed.initialize(coordinator_address=args.coordinator,
                               num_processes=args.num_processes, process_id=args.process_id)
    return None


def _run(args: argparse.Namespace) -> int:
    import dataclasses

    from asdtheory.data.audit import ClipProblems, describe
    from asdtheory.detect import systems
    from asdtheory.detect.dcase import RunConfig, run
    from asdtheory.repro.runmode import run_mode

    protocol = args.protocol or ("mini" if run_mode() == "ci" else "full")
    output = args.output
    if output is None and args.json is not None:  # r.json -> r/, beside it
        output = (args.json.with_suffix("") if args.json.suffix
                  else args.json.with_name(args.json.name + "_scores"))
    start = time.perf_counter()
    error = _start_distributed(args)
    if error is not None:
        print(f"asdtheory run: error: {error}", file=sys.stderr)
        return 2
    holds_state = args.checkpoint is not None and args.checkpoint.is_dir() and any(
        args.checkpoint.iterdir())
    if args.resume and args.checkpoint is None:
        print("asdtheory run: error: --resume needs --checkpoint DIR, the folder of the "
              "training to continue.", file=sys.stderr)
        return 2
    if args.resume and not holds_state:
        print(f"asdtheory run: error: nothing to resume: --checkpoint {args.checkpoint} does "
              "not exist.", file=sys.stderr)
        return 2
    if not args.resume and args.checkpoint is not None and args.checkpoint.exists() and (
            holds_state or not args.checkpoint.is_dir()):
        print(f"asdtheory run: error: checkpoint {args.checkpoint} exists: pass --resume to "
              "continue its training, or remove it to start afresh.", file=sys.stderr)
        return 2
    if args.save is not None and args.save.exists() and any(args.save.iterdir()):
        print(f"asdtheory run: error: --save {args.save} exists and is not empty; pass a new "
              "folder to keep the trained system in.", file=sys.stderr)
        return 2
    try:
        detector = systems.get(args.system).config(args.method,
                                                   small_data=protocol != "full")
        detector = dataclasses.replace(
            detector, backend=args.backend, progress=not args.no_progress,
            **{name: value for name, value in (("epochs", args.epochs),
                                               ("batch_size", args.batch_size))
               if value is not None})
        named = args.machines or ("all" if protocol in ("at-hand", "mimii") else
                                  ",".join(RunConfig().machines))
        machines = ("all" if named.strip() == "all"
                    else tuple(m.strip() for m in named.split(",") if m.strip()))
        config = RunConfig(data=args.data, machines=machines, protocol=protocol,
                           fold=args.fold, channel=args.channel, noise=args.noise,
                           snr=args.snr, seed=args.seed, seconds=args.seconds,
                           detector=detector)
        result = run(config, checkpoint=args.checkpoint)
    except ClipProblems as err:
        print(f"asdtheory run: error: {describe(err.problems, CLIP_FIXES)}", file=sys.stderr)
        return 2
    except (ValueError, FileNotFoundError) as err:
        print(f"asdtheory run: error: {in_flags(str(err))}", file=sys.stderr)
        return 2
    if args.process_id:  # process 0 of a multi-host run reports for all
        return 0
    print(f"{detector.method} ({args.system} system) on {', '.join(result.machines)} "
          f"({config.protocol} protocol"
          + (f", {config.noise} at {config.snr:g} dB" if config.noise else "")
          + f", seed {config.seed}, back-end {detector.score_backend})")
    if detector.spec.uses_labels:
        print(result.class_summary)
    print(result.table)
    print(f"untrained twin, the same network, back-end and seed without training "
          f"(DetectorConfig.twin): official score {result.twin_official_score:.4f}")
    print(f"reference without a model, clip level vs the normal training level "
          f"(scoring.level_score): official score {result.level_official_score:.4f}")
    print(_loss_summary(result))
    print(f"elapsed: {time.perf_counter() - start:.1f} s", file=sys.stderr)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result.to_json(), indent=2) + "\n")
    if output is not None:
        from asdtheory.data.submission import write_submission

        written = write_submission(output, result.test_clips, result.test_scores,
                                   train_clips=result.train_clips,
                                   train_scores=result.train_scores)
        print(f"wrote {len(written)} DCASE submission files (anomaly scores, decision results) "
              f"to {output}")
    if args.save is not None:
        from asdtheory.detect.store import save_system

        print(f"saved the trained system to {save_system(args.save, result)}")
    return 0


def _loss_summary(result) -> str:
    """One line on the training loss: where it went and whether it settled (train.settling)."""
    from asdtheory.train import SETTLED_BELOW

    loss = result.history["loss"]
    line = f"training loss {loss[0]:.3f} -> {loss[-1]:.3f} over {len(loss)} epoch(s): "
    if result.settling is None:
        return line + "too short to tell whether it settled (pass --epochs 2 or more)"
    moved = (f"the mean of its last 10 % of epochs differs from that of the 10 % before by "
             f"{result.settling:.3f} of its range (train.settling; settled below "
             f"{SETTLED_BELOW})")
    if result.settling < SETTLED_BELOW:
        return line + f"settled: {moved}"
    return line + f"NOT settled: {moved}; pass more --epochs"


# --- asdtheory score --------------------------------------------------------------------------

def _add_score(subparsers) -> None:
    parser = subparsers.add_parser(
        "score", help="score new clips with a system saved by `run --save`",
        description="Load a system that `asdtheory run ... --save DIR` kept, score every clip "
        "with a DCASE name in the test/ folders under --data (development or evaluation "
        "names; the machine type is the folder above test/) and write the DCASE submission "
        "files: anomaly scores and decision results (the thresholds fitted when the system "
        "was trained). Every clip's header is checked first.")
    parser.add_argument("--model", type=Path, required=True, metavar="DIR",
                        help="folder written by `asdtheory run ... --save DIR`")
    parser.add_argument("--data", type=Path, required=True, metavar="PATH",
                        help="folder holding <machine>/test/ clips (a data root, a machine "
                        "folder or a test folder)")
    parser.add_argument("--output", type=Path, required=True, metavar="DIR",
                        help="where to write anomaly_score_*.csv and decision_result_*.csv")
    parser.set_defaults(func=_score)


def _score(args: argparse.Namespace) -> int:
    from asdtheory.data.audit import ClipProblems, describe
    from asdtheory.data.dcase import index_folder
    from asdtheory.data.submission import write_submission
    from asdtheory.detect.store import load_system, score_clips

    if not args.data.is_dir():
        raise FileNotFoundError(f"--data {args.data} does not exist; pass the folder holding "
                                "<machine>/test/ clips.")
    system = load_system(args.model)
    clips = [c for c in index_folder(args.data, skip_unknown=True)
             if c.split == "test" and c.machine is not None]
    if not clips:
        raise ValueError(f"no DCASE test clips under --data {args.data} (names such as "
                         "section_00_0000.wav in <machine>/test/).")
    try:
        scores = score_clips(system, clips)
    except ClipProblems as err:
        print(f"asdtheory score: error: {describe(err.problems, CLIP_FIXES)}", file=sys.stderr)
        return 2
    written = write_submission(args.output, clips, scores, thresholds=system.thresholds)
    print(f"scored {len(clips)} clips; wrote {len(written)} DCASE submission files to "
          f"{args.output}")
    return 0


# --- asdtheory evaluate -----------------------------------------------------------------------

def _add_evaluate(subparsers) -> None:
    parser = subparsers.add_parser(
        "evaluate", help="score folders of DCASE submission files against the ground truth",
        description="Read the anomaly_score_<machine>_section_<NN>_test.csv files that any "
        "system wrote (one row '<clip file name>,<score>' per test clip), take the labels and "
        "domains from the clip names under --truth, and print the official DCASE 2023 table "
        "per system; with two or more systems also every pair's difference of official scores "
        "with a paired bootstrap interval over the clips. A folder with a missing, duplicated "
        "or unknown clip or a score that is not a finite number is rejected with the file and "
        "line.")
    parser.add_argument("systems", nargs="+", type=Path, metavar="SYSTEM_DIR",
                        help="folder of one system's anomaly_score_*.csv files")
    parser.add_argument("--truth", type=Path, default=None, metavar="ROOT",
                        help="data root or test folders whose clip names give the ground truth "
                        "(default: $ASDTHEORY_DATA or the per-user cache)")
    parser.add_argument("--protocol", choices=("all", "mini"), default="all",
                        help="all: every labelled test clip under ROOT (default); mini: the 140 "
                        "test clips of the valve mini protocol (what `run --protocol mini` "
                        "scores)")
    parser.add_argument("--resamples", type=int, default=1000,
                        help="bootstrap resamples of the paired comparisons (default: 1000)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the bootstrap resampling (default: 0)")
    parser.set_defaults(func=_evaluate)


def _evaluate(args: argparse.Namespace) -> int:
    import jax
    import numpy as np

    from asdtheory import evaluation
    from asdtheory.data.dcase import data_root
    from asdtheory.data.submission import read_scores, truth_clips

    if len(args.systems) > 1 and args.resamples < 100:  # before any table is printed
        raise ValueError(f"--resamples must be an integer >= 100, got {args.resamples}.")
    missing = [folder for folder in args.systems if not Path(folder).is_dir()]
    if missing:
        raise FileNotFoundError(f"SYSTEM_DIR {missing[0]}: no such folder; pass the folders "
                                f"that hold each system's anomaly_score_*.csv files.")
    truth_root = data_root(args.truth)
    if not truth_root.is_dir():
        raise FileNotFoundError(
            f"{'--truth' if args.truth is not None else '$ASDTHEORY_DATA (no --truth given)'} "
            f"{truth_root}: no such folder; pass --truth, the data root or the test folders "
            f"the scores were computed on.")
    truth = truth_clips(truth_root, protocol=args.protocol)
    labels = dict(machine=[c.machine for c in truth], section=[c.section for c in truth],
                  domain=[c.domain for c in truth], is_anomaly=[c.is_anomaly for c in truth])
    # Every folder is read before anything is printed: a bad one fails the command at once.
    systems = [(folder, read_scores(folder, truth)) for folder in args.systems]
    for folder, scores in systems:
        rows = evaluation.dcase_table(**labels, scores=scores, unscorable="n/a")
        print(f"{folder} ({len(truth)} test clips)")
        print(evaluation.format_table(rows))
        print()
    if len(systems) < 2:
        return 0
    # The comparisons cover the scorable sections (the labels are the same for every system).
    scorable = {(r.machine, r.section) for r in rows if r.unscorable is None}
    keep = np.array([(c.machine, f"{c.section:02d}") in scorable for c in truth])
    labels = {name: np.asarray(values)[keep] for name, values in labels.items()}
    systems = [(folder, scores[keep]) for folder, scores in systems]
    print(f"paired comparisons: official score of A minus B, 95 % paired bootstrap interval "
          f"over the clips ({args.resamples} resamples, seed {args.seed})")
    for i, (first, first_scores) in enumerate(systems):
        for second, second_scores in systems[i + 1:]:
            diff = evaluation.paired_difference(
                first_scores, second_scores, **labels, metric="official",
                key=jax.random.key(args.seed), n_resamples=args.resamples)
            print(f"  {first} - {second}: {diff.estimate:+.4f} "
                  f"[{diff.low:+.4f}, {diff.high:+.4f}]")
    return 0


# --- asdtheory data fetch|info ----------------------------------------------------------------

def _add_data(subparsers) -> None:
    from asdtheory.data.dcase import DEV_MACHINES_2023

    parser = subparsers.add_parser(
        "data", help="download DCASE archives and inspect datasets",
        description="Download DCASE archives, summarise a dataset folder.")
    commands = parser.add_subparsers(dest="data_command", metavar="{fetch,info}", required=True)

    fetch = commands.add_parser(
        "fetch", help="download and unpack DCASE 2023 Task 2 development archives",
        description="Download (resumably, with a size check) and unpack "
        "dev_<machine>.zip into <root>/dcase2023t2/dev_data/raw/<machine>/. The data root is "
        "--root, else $ASDTHEORY_DATA, else the per-user cache directory. The recordings are "
        "CC BY 4.0 (MIMII DG, ToyADMOS2; cite the DCASE 2023 Task 2 description).")
    fetch.add_argument("--year", type=int, default=2023, choices=[2023],
                       help="challenge year (2023, the only one downloadable so far)")
    fetch.add_argument("--machine", action="append", required=True,
                       choices=[*DEV_MACHINES_2023, "all"],
                       help="repeatable; 'all' for the seven")
    fetch.add_argument("--root", type=Path, default=None, help="data root directory")
    fetch.add_argument("--base-url", default=None, help="folder URL holding dev_<machine>.zip "
                       "(default: Zenodo record 7882613)")
    fetch.add_argument("--keep-archive", action="store_true",
                       help="keep the zip after unpacking")
    fetch.add_argument("--quiet", action="store_true", help="no progress bar")
    fetch.set_defaults(func=_reported(_data_fetch))

    info = commands.add_parser("info", help="count the clips of a DCASE or MIMII folder and "
                               "check them",
                               description="Count clips per machine, section, split, domain "
                               "and label, with their attributes, below PATH (any level of the "
                               "layouts <machine>/<train|test>/<DCASE clip name> and "
                               "<machine>/id_<NN>/<normal|abnormal>/<NNNNNNNN>.wav (MIMII; "
                               "the machine ID is shown as the section); default: the data "
                               "root), and report every file `asdtheory run` would reject "
                               "(sample rate other than 16 kHz, more than one channel where "
                               "none is chosen, shorter than --seconds, a name in train/, "
                               "test/, normal/ or abnormal/ that is not a clip name) with the "
                               "reason; exit status 1 when there is any. Reads the WAV headers "
                               "only.")
    info.add_argument("path", nargs="?", default=None, metavar="PATH",
                      help="folder to inspect (default: $ASDTHEORY_DATA or the per-user cache)")
    info.add_argument("--seconds", type=_number(above=0), default=10.0,
                      help="the length `run --seconds` cuts every clip to (default: 10)")
    info.add_argument("--channel", type=_number(int, low=0), default=None, metavar="N",
                      help="the channel (microphone) to keep of MIMII recordings, which the "
                      "public archives store with 8 (default: none; a MIMII file with several "
                      "channels is then reported)")
    info.set_defaults(func=_reported(_data_info))


def _data_info(args) -> int:
    from asdtheory.data.audit import describe, folder_problems
    from asdtheory.data.dcase import data_root, index_folder, summary

    path = Path(args.path) if args.path else data_root()
    clips = index_folder(path, skip_unknown=True)
    problems = folder_problems(path, seconds=args.seconds, channel=args.channel)
    if not clips and not problems:
        print(f"asdtheory data info: no DCASE clips (*.wav) under {path}", file=sys.stderr)
        return 1
    print(f"{path}")
    if clips:
        print(summary(clips))
    others = (sum(1 for _ in path.rglob("*.wav")) - len(clips)
              - sum(p.kind == "name" for p in problems))
    if others:
        print(f"({others} other .wav file(s) outside the clip folders not counted)")
    if problems:
        listing = describe(problems, CLIP_FIXES).split("\n", 1)[1]  # without its heading
        print(f"asdtheory data info: `asdtheory run --seconds {args.seconds:g}` would reject "
              f"{len({p.path for p in problems})} file(s):\n{listing}", file=sys.stderr)
        return 1
    return 0


def _data_fetch(args) -> int:
    from asdtheory.data.dcase import DEV_MACHINES_2023
    from asdtheory.data.download import fetch

    machines = DEV_MACHINES_2023 if "all" in args.machine else tuple(dict.fromkeys(args.machine))
    for machine in machines:
        folder = fetch(machine, year=args.year, root=args.root, base_url=args.base_url,
                       progress=not args.quiet, keep_archive=args.keep_archive)
        print(f"{machine}: {folder}")
    return 0


def _reported(func):
    # Expected failures (missing folders, network, bad archives) are reported in one line.
    def run(args) -> int:
        try:
            return func(args)
        except BrokenPipeError:
            raise  # main's: not an error of the command
        except (OSError, ValueError) as err:
            print(f"asdtheory data {args.data_command}: error: {_error_text(err)}",
                  file=sys.stderr)
            return 1

    return run


# --- asdtheory bench --------------------------------------------------------------------------

def _add_bench(subparsers) -> None:
    parser = subparsers.add_parser(
        "bench", help="run the benchmarks side by side and print a table of ratios",
        description="Run every benchmarks/bench_*.py in one process (this library vs its "
        "reference, measured in the same run) and print one table of speed ratios.")
    parser.add_argument("--benchmark-dir", default="benchmarks",
                        help="folder of the bench_*.py scripts (default: ./benchmarks)")
    parser.add_argument("--output", default="results/bench.json",
                        help="JSON with every measurement (default: results/bench.json)")
    parser.set_defaults(func=_bench)


def _bench(args: argparse.Namespace) -> int:
    from asdtheory.repro.bench import ratio_table, run_benchmarks

    folder = Path(args.benchmark_dir)
    scripts = sorted(folder.glob("bench_*.py"))
    if not scripts:
        print(f"no bench_*.py scripts in {folder}: run from the repository root or pass "
              "--benchmark-dir.", file=sys.stderr)
        return 1
    results = run_benchmarks(scripts)
    print(ratio_table(results))
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
