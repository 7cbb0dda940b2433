"""The ``cvd`` command: a thin layer over importable functions.

Every subcommand parses its arguments, calls one library function and prints
the result. Bad input (a :class:`~research.errors.UserError` or a usage error)
becomes one line on stderr and exit status 2, with nothing written.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from research.errors import UserError

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
    from research.config import load_config
    from research.pipeline import train_and_probe
    from research.rundir import FINISHED

    config = load_config(args.config, overrides)
    if args.print_config:
        from research.config import config_to_json

        print(json.dumps(config_to_json(config), indent=2))
        return 0
    before = Path(args.workdir) / "summary.json"
    finished_before = not args.overwrite and before.exists() and json.loads(before.read_text()).get("status") in FINISHED
    summary = train_and_probe(config, args.workdir, overwrite=args.overwrite, progress=not args.no_progress)
    if finished_before:
        print(f"{args.workdir}: already finished; nothing ran (pass --overwrite to train it again). Its summary:")
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
    from research.sweep import run_sweep

    index = run_sweep(
        args.config,
        Path(args.workdir),
        launcher=args.launcher,
        workers=args.workers,
        options=_launch_options(args),
        retries=args.retries,
        dry_run=args.dry_run or args.print_config,
        progress=not args.no_progress,
        overrides=overrides,
    )
    runs = index["runs"]
    if args.print_config:
        from research.config import config_to_json
        from research.sweep.jobs import build_config

        for rid, entry in runs.items():
            print(f"# {rid}\n{json.dumps(config_to_json(build_config(args.config, entry['overrides'])), indent=2)}")
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
    from research.probes import ProbeOptions, applicable_probes, expand, run_probes
    from research.train.trained import load_trained

    for run_dir in args.run_dirs:
        run = load_trained(run_dir)
        names = args.probe or applicable_probes(run)
        options = ProbeOptions.from_config(run.config)
        if args.examples is not None:
            options = ProbeOptions(examples=args.examples, max_shift=options.max_shift)
        results = run_probes(run_dir, names, options=options, run=run)
        done = expand(names)
        print(f"{run_dir}: " + ", ".join(f"{n} ({results[n]['seconds']:.1f} s)" for n in done))
        print(f"  -> {Path(run_dir) / 'probes.json'}")
    return 0


def cmd_analyze(args, overrides: list[str]) -> int:
    from analysis import analyze

    result = analyze(args.directories, args.out, progress=not args.no_progress)
    print(f"{len(result.figures)} figures, report: {result.report_md} and {result.report_html}")
    for claim in result.claims:
        print(f"  {claim.id} {claim.verdict}: {claim.statement}")
    if result.skipped:
        print(f"  no data for: {', '.join(result.skipped)}")
    return 0


def cmd_bench(args, overrides: list[str]) -> int:
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
    from research.reproduce import reproduce

    outcome = reproduce(
        args.profile,
        Path(args.workdir),
        launcher=args.launcher,
        workers=args.workers,
        options=_launch_options(args),
        progress=not args.no_progress,
    )
    return 1 if outcome["failed"] else 0


def _add_launcher_arguments(parser: argparse.ArgumentParser) -> None:
    from research.sweep.launchers import LAUNCHERS

    group = parser.add_argument_group("launcher", "where the runs train (ray and slurm need a filesystem every node shares)")
    group.add_argument(
        "--launcher", choices=LAUNCHERS, default="local", help="local worker processes (default), Ray tasks or SLURM jobs"
    )
    group.add_argument(
        "--workers",
        type=int,
        default=None,
        help="runs at once (default: local one per GPU, on CPU one; ray the cluster's GPUs or CPUs; slurm all)",
    )
    group.add_argument("--ray-address", default=None, help="an existing Ray cluster, host:port (default: start a local Ray)")
    group.add_argument("--slurm-partition", default=None, help="SLURM partition (default: the cluster's default)")
    group.add_argument("--slurm-time", type=int, default=60, help="time limit of each run's SLURM job, minutes (default 60)")
    group.add_argument("--slurm-gpus", type=int, default=0, help="GPUs per run's SLURM job (default 0)")
    group.add_argument("--slurm-cpus", type=int, default=2, help="CPUs per run's SLURM job (default 2)")
    group.add_argument(
        "--slurm-cluster",
        choices=("slurm", "local"),
        default="slurm",
        help="local: submitit's local executor, to try it without SLURM",
    )


def _launch_options(args):
    from research.sweep.launchers import LaunchOptions

    return LaunchOptions(
        ray_address=args.ray_address,
        slurm_partition=args.slurm_partition,
        slurm_time_min=args.slurm_time,
        slurm_gpus=args.slurm_gpus,
        slurm_cpus=args.slurm_cpus,
        slurm_cluster=args.slurm_cluster,
    )


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("conv-vs-dense")
    except PackageNotFoundError:
        return "(not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="conv-vs-dense: what convolutions buy over dense layers, measured.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    train = sub.add_parser(
        "train",
        help="train one config (all its seeds in one program)",
        description="Train config.seeds replicas of one config together; resumes from the workdir's checkpoints. "
        "Override any config key with --config.section.key=value.",
        epilog="example: cvd train --config experiments/mnist1d.py:cnn --config.train.epochs=10 --workdir runs/cnn",
    )
    train.add_argument("--config", required=True, help="study file and variant, e.g. experiments/mnist1d.py:cnn")
    train.add_argument("--workdir", help="run directory (config.json, metrics.jsonl, summary.json, checkpoints/)")
    train.add_argument("--print-config", action="store_true", help="print the resolved config and exit (trains nothing)")
    train.add_argument("--overwrite", action="store_true", help="replace a run in the workdir that has a different config")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    train.set_defaults(func=cmd_train)

    lister = sub.add_parser("list", help="list registered models, datasets, layer families or probes")
    lister.add_argument("kind", choices=("models", "datasets", "families", "probes"))
    lister.set_defaults(func=cmd_list)

    sweep = sub.add_parser(
        "sweep",
        help="run every run of a study's sweep (resumable, failure-isolated)",
        description="Expand a study's get_sweep(variant) and train every run into DIR/runs/<id>, indexed in DIR/sweep.json. "
        "The same command again skips finished runs, resumes interrupted ones and retries failed ones. "
        "--config.section.key=value overrides apply to every run (recorded in sweep.json).",
        epilog="example: cvd sweep --config experiments/weight_sharing.py:quick --config.train.epochs=1 --workdir runs/ws",
    )
    sweep.add_argument("--config", required=True, help="study file and variant, e.g. experiments/pooling.py:quick")
    sweep.add_argument("--workdir", required=True, help="sweep directory")
    _add_launcher_arguments(sweep)
    sweep.add_argument("--retries", type=int, default=1, help="times to retry a failed run in this invocation (default 1)")
    sweep.add_argument("--dry-run", action="store_true", help="list the runs and their status; train nothing")
    sweep.add_argument("--print-config", action="store_true", help="print every run's resolved config and exit")
    sweep.add_argument("--no-progress", action="store_true", help="no progress bar")
    sweep.set_defaults(func=cmd_sweep)

    probe = sub.add_parser(
        "probe",
        help="run probes on trained runs' final checkpoints",
        description="Load each run's newest checkpoint (all replicas at once), run the probes and merge the results "
        "into RUN_DIR/probes.json (and probes.npz for large arrays). `cvd list probes` names them.",
        epilog="example: cvd probe runs/translation/runs/* --probe translation",
    )
    probe.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run directories (with config.json and checkpoints/)")
    probe.add_argument(
        "--probe", action="append", default=None, help="a probe or group (repeatable; default: every probe that applies)"
    )
    probe.add_argument("--examples", type=int, default=None, help="test examples per probe (default: config probes.examples)")
    probe.set_defaults(func=cmd_probe)

    analyze = sub.add_parser(
        "analyze",
        help="figures F1-F11 and the claims report from sweep directories",
        description="Load every run under the directories (sweeps or directories of sweeps), draw each figure that has data "
        "(PNG and PDF) and write report.md and a self-contained report.html with a verdict per claim.",
        epilog="example: cvd analyze runs/reproduce --out runs/reproduce/report",
    )
    analyze.add_argument("directories", nargs="+", metavar="DIR", help="sweep directories, or directories holding sweeps")
    analyze.add_argument("--out", default=None, help="where figures and the report go (default: DIR/report)")
    analyze.add_argument("--no-progress", action="store_true", help="no progress bar")
    analyze.set_defaults(func=cmd_analyze)

    bench = sub.add_parser(
        "bench",
        help="the benchmark suite: strategies, sweep vs PyTorch, conv speed, fraction of peak, compile",
        description="Measure every figure of benchmarks/README.md in this one process, as ratios. "
        "The PyTorch comparisons need the torch extra (pip install -e '.[torch]').",
        epilog="example: cvd bench --json > bench.json",
    )
    bench.add_argument("--json", action="store_true", help="print every number as JSON (default: a summary)")
    bench.add_argument("--section", action="append", default=None, help="run only this section (repeatable)")
    bench.add_argument("--reproduce-dir", default=None, help="include the stage timing of a cvd reproduce workdir")
    bench.set_defaults(func=cmd_bench)

    repro = sub.add_parser(
        "reproduce",
        help="every study's sweep, probes, reference models, figures and the claims report",
        description="Run every study's sweep for the profile (with their probes), the reference models, then the analysis "
        "(figures F1-F11, report.md, report.html). Resumable: the same command again skips what is done. "
        "quick: 2 CPU cores, no download, about 15 minutes; paper: the same studies at the budgets the README publishes "
        "(5 seeds x 4 learning rates, trained to convergence; hours on 2 cores); full: the GPU profile (adds TFDS data sets).",
    )
    repro.add_argument(
        "--profile",
        choices=("quick", "paper", "full"),
        default="quick",
        help="quick: 2 CPU cores, no download, a smoke test (default); paper: the CPU profile the README publishes (hours); full: GPU",
    )
    repro.add_argument("--workdir", default="runs/reproduce", help="where the runs go (default: runs/reproduce)")
    _add_launcher_arguments(repro)
    repro.add_argument("--no-progress", action="store_true", help="no progress bars")
    repro.set_defaults(func=cmd_reproduce)
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


if __name__ == "__main__":
    sys.exit(main())
