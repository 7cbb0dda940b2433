"""Fit the plan's CPU time constants to finished ``cvd reproduce`` workdirs.

    python -m benchmarks.plan_fit runs/paper [runs/quick ...] [--workers 2]

Every finished training of the workdir (grid-extension pieces included) is costed by :func:`research.plan.run_cost` from its own ``config.json`` and
counted in the study that trained it (the first in :data:`research.reproduce.STUDIES` that
lists it). A non-negative least-squares fit of each study's worker seconds (``timing.json``;
a workdir from before the one queue has each study's wall time, times the workers) to its
runs' FLOPs, sequential steps and number gives the effective
FLOP/s, the seconds a step and the seconds a run (compilation, data, checkpoints, probes)
that ``research/plan.py`` plans with, and the share of runs with a grid that extended
(:data:`research.plan.EXTENSION_SHARE`). The table shows each study's fitted time beside
the measured one: how far to trust the constants.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from scipy.optimize import nnls

from analysis.load import find_runs
from research.config import config_from_json
from research.plan import run_cost
from research.reproduce import STUDIES
from research.rundir import RunDir


def trained_by_study(workdir: Path) -> dict[str, list[dict]]:
    """Per study, the finished training runs it trained first: their FLOPs, steps and whether
    each is a grid piece (its sweep entry ``extends`` a run) or has a grid of its own."""
    by_home: dict[Path, tuple[str, Path, dict]] = {}
    studied = [found for found in find_runs([workdir]) if found[0] in STUDIES]
    for study, run_dir, entry in sorted(studied, key=lambda found: STUDIES.index(found[0])):
        by_home.setdefault(run_dir.resolve(), (study, run_dir, entry))  # reproduce trains it in its first study
    by_study: dict[str, list[dict]] = {}
    for study, run_dir, entry in by_home.values():
        run = RunDir(run_dir)
        stored = run.config_json()
        if run.finished_summary() is None or stored is None:
            continue
        config = config_from_json(stored)
        if config.task != "train":
            continue
        cost = run_cost(study, run_dir.name, config)
        row = {"flops": cost.train_flops, "steps": cost.steps, "piece": bool(entry.get("extends")), "grid": cost.piece_steps > 0}
        by_study.setdefault(study, []).append(row)
    return {study: by_study[study] for study in STUDIES if study in by_study}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "workdirs", type=Path, nargs="+", help="the --workdir of finished cvd reproduce runs (profiles may differ)"
    )
    parser.add_argument(
        "--workers", type=int, default=2, help="runs trained side by side, for a workdir without worker seconds (default 2)"
    )
    args = parser.parse_args(argv)
    stages = []  # (label, runs, measured worker seconds)
    for workdir in args.workdirs:
        timing_path = workdir / "timing.json"
        if not timing_path.exists():
            raise SystemExit(f"error: no {timing_path}: has cvd reproduce finished?")
        timing = json.loads(timing_path.read_text())
        label = timing.get("profile", workdir.name)
        worker_seconds = timing.get("worker_seconds") or {}
        for study, rows in trained_by_study(workdir).items():
            if study in worker_seconds:
                stages.append((f"{label} {study}", rows, worker_seconds[study]))
            elif study in timing["seconds"]:  # one stage per study, each on every worker
                stages.append((f"{label} {study}", rows, timing["seconds"][study] * args.workers))
    if len(stages) < 3:
        raise SystemExit(f"error: {len(stages)} timed studies with trained runs; need at least 3 to fit")
    features = np.array([[sum(r["flops"] for r in rows), sum(r["steps"] for r in rows), len(rows)] for _, rows, _ in stages])
    measured = np.array([seconds for _, _, seconds in stages])
    scale = features.max(axis=0)
    coef, _ = nnls(features / scale, measured)
    coef = coef / scale
    fitted = features @ coef
    pieces = sum(r["piece"] for _, rows, _ in stages for r in rows)
    grids = sum(r["grid"] for _, rows, _ in stages for r in rows)
    flops_per_s = f"{1 / coef[0]:.3g}" if coef[0] > 0 else "unbounded"
    print(
        f"{int(features[:, 2].sum())} runs in {len(stages)} studies: {flops_per_s} FLOP/s, {coef[1] * 1e3:.2f} ms a step, "
        f"{coef[2]:.1f} s a run (worker time); {pieces} grid pieces for {grids} runs with a grid (share {pieces / max(grids, 1):.2f})"
    )
    print("| study | runs (pieces) | measured worker s | fitted worker s | fitted / measured |")
    print("|---|---|---|---|---|")
    for (label, rows, _), m, f in zip(stages, measured, fitted):
        n_pieces = sum(r["piece"] for r in rows)
        print(f"| {label} | {len(rows)} ({n_pieces}) | {m:.0f} | {f:.0f} | {f / m:.2f} |")
    total = f"| all | {int(features[:, 2].sum())} ({pieces}) | {measured.sum():.0f} | {fitted.sum():.0f}"
    print(f"{total} | {fitted.sum() / measured.sum():.2f} |")


if __name__ == "__main__":
    main()
