"""The ``cvd`` command: a thin layer over importable functions.

Every subcommand parses its arguments, calls one library function and prints
the result. Bad input (a :class:`~research.errors.UserError` or a usage error)
becomes one line on stderr and exit status 2, with nothing written; so does a
full or read-only disk (:func:`~research.errors.disk_error`), the run left to resume.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import sys
from pathlib import Path

from research.errors import UserError, disk_error

PROG = "cvd"


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors."""

    def error(self, message: str):
        raise UserError(f"{self.prog}: {message} (see {self.prog} --help)")


def _split_overrides(argv: list[str]) -> tuple[list[str], list[str]]:
    """Separate ``--config.a.b=value`` overrides (or ``--config.a.b value``, as absl
    takes them) from the other arguments."""
    overrides, rest = [], []
    argv = list(argv)
    while argv:
        arg = argv.pop(0)
        if arg.startswith("--config.") and "=" not in arg and argv and not argv[0].startswith("--"):
            arg = f"{arg}={argv.pop(0)}"
        (overrides if arg.startswith("--config.") else rest).append(arg)
    return rest, overrides


def cmd_train(args, overrides: list[str]) -> int:
    """Train one config (all its seeds in one program).

    Train config.seeds replicas of one config together; resumes from the workdir's checkpoints.
    Override any config key with --config.section.key=value.

    example: cvd train --config experiments/mnist1d.py:cnn --config.train.epochs=10 --workdir runs/cnn"""
    from research.config import load_config
    from research.pipeline import train_and_probe
    from research.rundir import RunDir

    config = load_config(args.config, overrides)
    if args.print_config:
        from research.config import config_to_json

        print(json.dumps(config_to_json(config), indent=2))
        return 0
    finished_before = not args.overwrite and RunDir(args.workdir).finished_summary() is not None
    summary = train_and_probe(config, args.workdir, overwrite=args.overwrite, progress=not args.no_progress)
    if finished_before:
        print(f"{args.workdir}: already finished; nothing ran (pass --overwrite to train it again). Its summary:")
    if summary.get("task") == "kernel_regression":
        (fit,) = summary["replicas"]
        print(f"{args.workdir}: infinite-width kernel regression, {summary['wall_time_s']:.1f} s")
        for kind, prefix in (("NNGP", ""), ("NTK", "ntk_")):
            if f"{prefix}test_accuracy" in fit:  # runs before the NTK have the NNGP's only
                val, test = 100 * fit[f"{prefix}val_accuracy"], 100 * fit[f"{prefix}test_accuracy"]
                print(f"  {kind}: val {val:.2f}%, test {test:.2f}% (ridge chosen on val: kernel.json)")
        return 0
    print(f"{args.workdir}: {summary['status']}, {summary['num_params']} params, {summary['wall_time_s']:.1f} s")
    for rate in sorted({r["learning_rate"] for r in summary["replicas"]}):
        replicas = [r for r in summary["replicas"] if r["learning_rate"] == rate]
        parts = [
            f"{split} {100 * sum(r[key] for r in replicas) / len(replicas):.2f}%"
            for split, key in (("val", "val_accuracy"), ("test", "test_accuracy"))
            if all(key in r for r in replicas)
        ]
        print(f"  learning rate {rate:g}: " + ", ".join(parts) + f" (mean over {len(replicas)} seeds)")
    return 0 if summary["status"] == "done" else 1


def cmd_list(args, overrides: list[str]) -> int:
    """List registered models, datasets, layer families or probes."""
    from research.data import dataset_names
    from research.models import FAMILIES, MODELS, model_defaults, model_fields
    from research.probes import GROUPS, PROBES

    if args.kind == "probes":
        for name in PROBES.names():
            doc = (PROBES.get(name).__doc__ or "").strip().splitlines()
            print(f"{name:13s} {doc[0] if doc else ''}")
        for name, members in GROUPS.items():
            print(f"{name:13s} group: {', '.join(members)}")
    elif args.kind == "models":
        for name in MODELS.names():
            defaults = model_defaults(name)
            fields = [f"{f}={defaults[f]!r}" if f in defaults else f"{f} (required)" for f in model_fields(name)]
            print(f"{name}\n  " + "\n  ".join(fields))
    elif args.kind == "datasets":
        print("\n".join(dataset_names()))
    else:
        print("\n".join(FAMILIES))
    return 0


def cmd_sweep(args, overrides: list[str]) -> int:
    """Run every run of a study's sweep (resumable, failure-isolated).

    Expand a study's get_sweep(variant) and train every run into DIR/runs/<id>, indexed in
    DIR/sweep.json. The same command again skips finished runs, resumes interrupted ones and retries
    failed ones. --config.section.key=value overrides apply to every run (recorded in sweep.json).

    example: cvd sweep --config experiments/weight_sharing.py:quick --config.train.epochs=1 --workdir runs/ws"""
    from research.sweep import run_sweep
    from research.sweep.launchers import launch_keywords

    dry_run = args.dry_run or args.print_config
    index = run_sweep(
        args.config,
        Path(args.workdir),
        **launch_keywords(args),
        retries=args.retries,
        dry_run=dry_run,
        overrides=overrides,
        extend_grids=not args.no_grid_extension,
    )
    runs = index["runs"]
    if args.print_config:
        from research.config import config_to_json, load_config

        for rid, entry in runs.items():
            print(f"# {rid}\n{json.dumps(config_to_json(load_config(args.config, entry['overrides'])), indent=2)}")
        return 0
    if args.dry_run:
        for rid, entry in runs.items():
            print(f"{entry['status']:11s} {rid}  {json.dumps(entry['overrides'])}")
        print(f"{len(runs)} runs in {args.config} (dry run: nothing trained)")
        return 0
    counts = index["counts"]
    print(f"{args.workdir}: {len(runs)} runs: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
    for rid, entry in runs.items():
        if entry["status"] == "failed":
            print(f"  failed {rid}: {entry['error']}")
    return 0 if counts.get("failed", 0) == 0 and counts.get("interrupted", 0) == 0 else 1


def cmd_probe(args, overrides: list[str]) -> int:
    """Run probes on trained runs' final checkpoints.

    Load each run's newest checkpoint (all replicas at once), run the probes and merge the results
    into RUN_DIR/probes.json (and probes.npz for large arrays). `cvd list probes` names them.

    example: cvd probe runs/translation/runs/* --probe translation"""
    from research.probes import ProbeOptions, applicable_probes, expand, run_probes
    from research.rundir import RunDir
    from research.train.trained import load_trained

    for run_dir in args.run_dirs:
        with RunDir(run_dir).lock("probe"):  # not beside a run training there, nor another probe
            run = load_trained(run_dir)
            names = args.probe or applicable_probes(run)
            options = ProbeOptions.from_config(run.config)
            if args.examples is not None:
                options = ProbeOptions(examples=args.examples, max_shift=options.max_shift)
            results = run_probes(run_dir, names, options=options, run=run)
        done = expand(names)
        print(f"{run_dir}: " + ", ".join(f"{n} ({results[n]['seconds']:.1f} s)" for n in done))
        print(f"  -> {RunDir(run_dir).probes_file}")
    return 0


def cmd_analyze(args, overrides: list[str]) -> int:
    """Figures F1-F15 and the claims report from sweep directories.

    Load every run under the directories (sweeps or directories of sweeps), draw each figure that
    has data (PNG and PDF) and write report.md and a self-contained report.html with a verdict per
    claim.

    example: cvd analyze runs/reproduce --out runs/reproduce/report"""
    from analysis import analyze

    result = analyze(args.directories, args.out, progress=not args.no_progress)
    print(f"{len(result.figures)} figures, report: {result.report_md} and {result.report_html}")
    for claim in result.claims:
        print(f"  {claim.id} {claim.verdict}: {claim.statement}")
    if result.skipped:
        print(f"  no data for: {', '.join(result.skipped)}")
    return 0


def cmd_bench(args, overrides: list[str]) -> int:
    """The benchmark suite: strategies, sweep vs PyTorch, CIFAR-shape convs, conv speed, peak, compile, options.

    Measure every figure of benchmarks/README.md in this one process, as ratios (about
    10 minutes on 2 CPU cores; --section picks some). The PyTorch comparisons (a plain
    loop and a torch.func ensemble) need the torch extra (pip install -e '.[torch]').

    example: cvd bench --json > bench.json"""
    from benchmarks.suite import SECTIONS, run_suite, summary_lines

    unknown_sections = [s for s in args.section or [] if s not in SECTIONS]
    if unknown_sections:
        from research.errors import unknown

        raise unknown("benchmark section", unknown_sections[0], SECTIONS)
    results = run_suite(args.section, args.reproduce_dir, progress=lambda line: print(line, file=sys.stderr))
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print("\n".join(summary_lines(results)))
    return 0


def cmd_reproduce(args, overrides: list[str]) -> int:
    """Every study's sweep, probes, reference models, figures and the claims report.

    Run every study's sweep for the profile (with their probes), the reference models, then the
    analysis (figures F1-F15, report.md, report.html). Resumable: the same command again skips what
    is done. quick: 2 CPU cores, no download, about 15 minutes; paper: the same studies at the
    budgets the README publishes (4 seeds x a 4-rate grid halved to 2, early stopping on
    validation; about 2.5 hours on 2 cores); full: the GPU profile (adds TFDS data sets);
    gpu-smoke: the pipeline on a GPU in minutes."""
    from research.reproduce import reproduce
    from research.sweep.launchers import launch_keywords

    if args.plan:
        from research.reproduce import plan

        plan(args.profile, Path(args.workdir), memory_gb=args.device_memory_gb, disk_gb=args.disk_gb)
        return 0
    outcome = reproduce(args.profile, Path(args.workdir), **launch_keywords(args))
    return 1 if outcome["failed"] else 0


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("conv-vs-dense")
    except PackageNotFoundError:
        return "(not installed)"


# Every subcommand: the function it runs (whose docstring is its --help: the first line, then the
# description, then an example) and its arguments, ((flags), {options}); "launcher" adds the launcher group.
COMMANDS = {
    "train": (
        cmd_train,
        [
            (("--config",), {"required": True, "help": "study file and variant, e.g. experiments/mnist1d.py:cnn"}),
            (("--workdir",), {"help": "run directory (config.json, metrics.jsonl, summary.json, checkpoints/)"}),
            (("--print-config",), {"action": "store_true", "help": "print the resolved config and exit (trains nothing)"}),
            (("--overwrite",), {"action": "store_true", "help": "replace a run in the workdir that has a different config"}),
            (("--no-progress",), {"action": "store_true", "help": "no progress bar"}),
        ],
    ),
    "list": (
        cmd_list,
        [
            (("kind",), {"choices": ("models", "datasets", "families", "probes")}),
        ],
    ),
    "sweep": (
        cmd_sweep,
        [
            (("--config",), {"required": True, "help": "study file and variant, e.g. experiments/pooling.py:quick"}),
            (("--workdir",), {"required": True, "help": "sweep directory"}),
            "launcher",
            (("--retries",), {"type": int, "default": 1, "help": "times to retry a failed run in this invocation (default 1)"}),
            (
                ("--no-grid-extension",),
                {
                    "action": "store_true",
                    "help": "train only each run's own learning-rate grid (default: when the best rate is at an edge, "
                    "also train the next rate past it, until it is interior or at the optimizer's limit)",
                },
            ),
            (("--dry-run",), {"action": "store_true", "help": "list the runs and their status; train nothing"}),
            (("--print-config",), {"action": "store_true", "help": "print every run's resolved config and exit"}),
            (("--no-progress",), {"action": "store_true", "help": "no progress bar"}),
        ],
    ),
    "probe": (
        cmd_probe,
        [
            (("run_dirs",), {"nargs": "+", "metavar": "RUN_DIR", "help": "run directories (with config.json and checkpoints/)"}),
            (
                ("--probe",),
                {"action": "append", "default": None, "help": "a probe or group (repeatable; default: every probe that applies)"},
            ),
            (
                ("--examples",),
                {"type": int, "default": None, "help": "test examples per probe (default: config probes.examples)"},
            ),
        ],
    ),
    "analyze": (
        cmd_analyze,
        [
            (("directories",), {"nargs": "+", "metavar": "DIR", "help": "sweep directories, or directories holding sweeps"}),
            (("--out",), {"default": None, "help": "where figures and the report go (default: DIR/report)"}),
            (("--no-progress",), {"action": "store_true", "help": "no progress bar"}),
        ],
    ),
    "bench": (
        cmd_bench,
        [
            (("--json",), {"action": "store_true", "help": "print every number as JSON (default: a summary)"}),
            (("--section",), {"action": "append", "default": None, "help": "run only this section (repeatable)"}),
            (("--reproduce-dir",), {"default": None, "help": "include the stage timing of a cvd reproduce workdir"}),
        ],
    ),
    "reproduce": (
        cmd_reproduce,
        [
            (
                ("--profile",),
                {
                    "choices": ("quick", "paper", "full", "gpu-smoke"),
                    "default": "quick",
                    "help": "quick: 2 CPU cores, no download, a smoke test (default); paper: the CPU profile the README publishes (hours); full: GPU (see --plan); gpu-smoke: every study for 2 epochs, to check a GPU machine",
                },
            ),
            (("--workdir",), {"default": "runs/reproduce", "help": "where the runs go (default: runs/reproduce)"}),
            "launcher",
            (("--no-progress",), {"action": "store_true", "help": "no progress bars"}),
            (
                ("--plan",),
                {
                    "action": "store_true",
                    "help": "print what each study costs (runs, FLOPs, memory, checkpoints, missing data) and exit",
                },
            ),
            (("--device-memory-gb",), {"type": float, "default": None, "help": "with --plan: check against this device memory"}),
            (("--disk-gb",), {"type": float, "default": None, "help": "with --plan: check against this much free disk"}),
        ],
    ),
}


def build_parser() -> argparse.ArgumentParser:
    from research.sweep.launchers import add_launcher_arguments

    parser = _Parser(prog=PROG, description="conv-vs-dense: what convolutions buy over dense layers, measured.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name, (func, arguments) in COMMANDS.items():
        summary, _, rest = inspect.getdoc(func).partition("\n\n")
        description, _, example = rest.rpartition("\n\n") if "example:" in rest else (rest, "", "")
        command = sub.add_parser(
            name,
            help=summary.rstrip(".")[0].lower() + summary.rstrip(".")[1:],
            description=" ".join(description.split()) or None,
            epilog=example or None,
        )
        for argument in arguments:
            if argument == "launcher":
                add_launcher_arguments(command)
            else:
                flags, options = argument
                command.add_argument(*flags, **options)
        command.set_defaults(func=func)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        rest, overrides = _split_overrides(argv)
        args = build_parser().parse_args(rest)
        if overrides and args.command not in ("train", "sweep"):
            raise UserError(f"{PROG} {args.command} takes no --config.* overrides")
        if args.command == "train" and not args.workdir and not args.print_config:
            raise UserError(f"{PROG} train needs --workdir (or --print-config)")
        if args.command in ("sweep", "reproduce"):  # the driver must not take the GPU memory its workers need
            os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
        return args.func(args, overrides)
    except UserError as e:
        print(f"{PROG}: error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    except Exception as e:  # a full or read-only disk is the machine's problem: one line, not a traceback
        problem = disk_error(e)
        if problem is None:
            raise
        print(
            f"{PROG}: error: {problem}; free space (or choose another directory) and run the same command again", file=sys.stderr
        )
        return 2


if __name__ == "__main__":
    sys.exit(main())
