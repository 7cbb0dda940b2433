"""``cvd reproduce``: every study's sweep, their probes, the reference models,
then the figures and the claims report, resumably, in one command.

Stages, each into ``workdir``:

1. ``<study>/``: ``cvd sweep`` of ``experiments/<study>.py:<profile>`` for
   every study in :data:`STUDIES` (probes run at the end of each run), all
   studies' runs in one queue (:func:`research.sweep.run_sweeps`: no worker
   waits for a study's slowest run; the compute study, which times its runs,
   goes last and alone). Every run trains in ``runs/<training key>``, which
   ``<study>/runs/<id>`` links to: runs of different studies that train the
   same are trained once (each study still lists its own, with its own tag,
   and runs its own final probes on it);
2. ``reference/<name>/``: the reference models of DESIGN.md (MNIST-1D MLP
   and CNN; the full profile adds Fashion-MNIST), tabulated in
   ``reference/results.md`` against the published numbers;
3. ``report/``: ``cvd analyze`` of the whole directory.

The same command again skips whatever is done. ``timing.json`` records the
wall time of each stage (``sweeps``, ``reference``, ``analysis``), summed over
the invocations that built the workdir, and each study's worker seconds (its
jobs' time, from its ``sweep.json``).
The ``quick`` profile needs no download: Fashion-MNIST joins when Debian's
``dataset-fashion-mnist`` files are present; without them it says so and goes
on with MNIST-1D.
"""

from __future__ import annotations

import math
import statistics
import time
from pathlib import Path

import jax

from analysis import analyze
from analysis.load import missing_data
from research import plan as planning
from research.atomic import atomic_write_json, atomic_write_text, read_json
from research.config import load_config
from research.data.sources import FASHION_MNIST_DIR, fashion_mnist_available
from research.errors import UserError
from research.pipeline import train_and_probe
from research.provenance import provenance
from research.rundir import FINISHED
from research.sweep import run_sweeps
from research.sweep.launchers import check_launcher, default_workers

EXPERIMENTS = Path(__file__).resolve().parent.parent / "experiments"

EXTENDS_GRIDS = {"quick": False, "gpu-smoke": False, "paper": True, "full": True}
"""Whether a profile extends a learning-rate grid whose best rate is at an edge
(:mod:`research.sweep.extend`). The smoke profiles do not: at their few epochs and two
rates nearly every pick is at an edge, and following each would double their time; the
extension is tested in ``tests/test_grids.py``."""

STUDIES = (
    "weight_sharing",
    "locality",
    "sample_efficiency",
    "permuted_pixels",
    "pooling",
    "translation",
    "position",
    "compute",
    "embedding",
    "infinite_width",
    "learned_locality",
    "data_scaling",
)

# name -> (study file, variant, overrides, published accuracy %). The reference models train
# on the published split (data.n_val=0): they reproduce a number, they choose nothing.
REFERENCE: dict[str, dict[str, tuple[str, str, list[str], str]]] = {
    "quick": {
        "mnist1d_mlp": ("mnist1d.py", "mlp", ["data.n_val=0"], "68 (Greydanus & Kobak)"),
        "mnist1d_cnn": ("mnist1d.py", "cnn", ["data.n_val=0"], "94 (Greydanus & Kobak)"),
    },
}
REFERENCE["paper"] = REFERENCE["quick"]
REFERENCE["gpu-smoke"] = {name: (s, v, [*o, "train.epochs=2"], p) for name, (s, v, o, p) in REFERENCE["quick"].items()}
REFERENCE["full"] = {
    **REFERENCE["quick"],
    "mnist1d_mlp_permuted": ("mnist1d.py", "mlp", ["data.n_val=0", "data.permute_pixels=True"], "68"),
    "mnist1d_cnn_permuted": ("mnist1d.py", "cnn", ["data.n_val=0", "data.permute_pixels=True"], "56"),
    "fashion_mlp": ("fashion_mnist.py", "mlp", ["data.n_val=0"], "88.3 (dataset README, MLP 256-128-100)"),
    "fashion_cnn": ("fashion_mnist.py", "cnn", ["data.n_val=0"], "91.6 (dataset README, 2 conv + pooling)"),
}


def run_reference(profile: str, workdir: Path, progress: bool) -> list[dict]:
    rows = []
    for name, (study, variant, overrides, published) in REFERENCE[profile].items():
        if name.startswith("fashion") and not fashion_mnist_available():
            print(f"skipping {name}: Fashion-MNIST not found in {FASHION_MNIST_DIR} (apt-get install dataset-fashion-mnist)")
            continue
        config = load_config(f"{EXPERIMENTS / study}:{variant}", [f"--config.{o}" for o in overrides])
        summary = train_and_probe(config, workdir / name, progress=progress)
        accs = [100 * r["test_accuracy"] for r in summary["replicas"]]
        rows.append(
            {
                "run": name,
                "params": summary["num_params"],
                "seeds": len(accs),
                "mean": statistics.fmean(accs),
                "std": statistics.stdev(accs) if len(accs) > 1 else 0.0,
                "published": published,
                "wall_s": summary["wall_time_s"],
            }
        )
    lines = ["| run | params | seeds | test accuracy % (mean ± std) | published % | wall time s |", "|---|---|---|---|---|---|"]
    lines += [
        f"| {r['run']} | {r['params']} | {r['seeds']} | {r['mean']:.2f} ± {r['std']:.2f} | {r['published']} | {r['wall_s']:.1f} |"
        for r in rows
    ]
    workdir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(workdir / "results.md", "\n".join(lines) + "\n")
    print("\n".join(lines))
    return rows


def plan(profile: str, workdir: Path, *, memory_gb: float | None = None, disk_gb: float | None = None, show=print) -> list[str]:
    """``cvd reproduce --plan``: the profile's cost per study and in all (:mod:`research.plan`),
    checked against the device memory and the free disk (``memory_gb``, ``disk_gb`` override
    what this machine says). The table goes to ``show`` line by line; then a profile that
    does not fit raises a one-line UserError."""
    for flag, value in (("--device-memory-gb", memory_gb), ("--disk-gb", disk_gb)):
        if value is not None and not (math.isfinite(value) and value > 0):  # 0 or NaN must not mean "not given"
            raise UserError(f"{flag} must be a number > 0 (GB), got {value:g}")
    costs = planning.plan_profile(profile, [(study, f"{EXPERIMENTS / study}.py:{profile}") for study in STUDIES])
    device, memory = planning.device_memory(profile)
    if memory_gb is not None:
        device, memory = f"{memory_gb:g} GB (--device-memory-gb)", memory_gb * 1e9
    disk = disk_gb * 1e9 if disk_gb is not None else planning.free_disk(workdir)
    on_gpu = profile == "full" or jax_backend() != "cpu"
    workers = 1 if on_gpu else default_workers()  # local CPU workers train side by side in the host's memory
    if workers > 1 and memory_gb is None:
        device, memory = f"{device} shared by {workers} workers", memory / workers
    lines = planning.plan_lines(costs, profile, device, memory, disk, on_gpu, workers, EXTENDS_GRIDS.get(profile, True))
    if profile != "full" and not fashion_mnist_available():
        lines.append(f"Fashion-MNIST not found in {FASHION_MNIST_DIR}: this profile's studies run on MNIST-1D only")
    for line in lines:
        show(line)
    planning.check_fits(costs, device, memory, disk)
    return lines


def jax_backend() -> str:
    return jax.default_backend()


def summed_timing(earlier: dict, seconds: dict[str, float]) -> dict:
    """``timing.json``'s ``seconds`` (per stage and ``total``) and ``invocations``: this
    invocation's ``seconds`` added to what the ``earlier`` invocations that built the same
    workdir recorded, so a reproduction stopped and resumed reports the time it took in all
    (a stage found done adds the second or so it takes to see that)."""
    before = earlier.get("seconds") or {}
    summed = {stage: before.get(stage, 0.0) + spent for stage, spent in seconds.items()}
    summed.update({stage: spent for stage, spent in before.items() if stage not in seconds})
    return {"seconds": summed, "invocations": int(earlier.get("invocations", 1 if before else 0)) + 1}


def worker_seconds(workdir: Path) -> dict[str, float]:
    """Per study, the seconds its jobs took on the workers, every invocation (its ``sweep.json``)."""
    seconds = {}
    for study in STUDIES:
        index = read_json(workdir / study / "sweep.json")
        runs = index.get("runs") if isinstance(index, dict) else None
        if isinstance(runs, dict):
            seconds[study] = round(sum(e.get("seconds", 0.0) for e in runs.values() if isinstance(e, dict)), 1)
    return seconds


def reproduce(
    profile: str,
    workdir: Path,
    *,
    launcher: str = "local",
    workers: int | None = None,
    options=None,
    progress: bool = True,
) -> dict:
    """Run every stage of ``profile``, every study's sweep through ``launcher`` (local, ray,
    slurm; see :mod:`research.sweep.launchers`); returns ``{"timing": seconds per stage,
    "failed": unfinished runs per study, "analysis": the analysis result}``."""
    check_launcher(launcher, options)

    workdir = Path(workdir)
    if profile != "full" and not fashion_mnist_available():
        print(
            f"Fashion-MNIST not found in {FASHION_MNIST_DIR}: the quick studies run on MNIST-1D only "
            "(apt-get install dataset-fashion-mnist to add it)"
        )
    if not EXTENDS_GRIDS.get(profile, True):
        print(
            f"the {profile} profile does not extend learning-rate grids past an edge (a smoke test; the report counts edge picks)"
        )
    workdir.mkdir(parents=True, exist_ok=True)
    about = {"profile": profile, "launcher": launcher, "provenance": provenance()}
    earlier = read_json(workdir / "timing.json")  # None when missing or unreadable: start afresh
    earlier = earlier if isinstance(earlier, dict) else {}
    timing: dict[str, float] = {}
    failed: dict[str, int] = {}
    start = time.perf_counter()

    def stage_done(stage: str, began: float) -> None:
        """Record ``stage``'s seconds at once, so a reproduction stopped later keeps them."""
        timing[stage] = time.perf_counter() - began
        timing["total"] = time.perf_counter() - start
        atomic_write_json(workdir / "timing.json", {**about, **summed_timing(earlier, timing), "failed_runs": failed})

    t0 = time.perf_counter()
    print(f"== {len(STUDIES)} studies' sweeps ({profile}), one queue")
    try:
        indexes = run_sweeps(
            [(f"{EXPERIMENTS / study}.py:{profile}", workdir / study) for study in STUDIES],
            launcher=launcher,
            workers=workers,
            options=options,
            progress=progress,
            cache_dir=workdir / ".jax_cache",
            store=workdir / "runs",
            extend_grids=EXTENDS_GRIDS.get(profile, True),
        )
        for study, index in zip(STUDIES, indexes):
            bad = {s: n for s, n in index["counts"].items() if s not in FINISHED}
            if bad:
                failed[study] = sum(bad.values())
                print(
                    f"   {study}: " + ", ".join(f"{n} {s}" for s, n in bad.items()) + f" (see {workdir / study / 'sweep.json'})"
                )
    finally:  # a stopped reproduction keeps the time it spent
        about["worker_seconds"] = worker_seconds(workdir)
        stage_done("sweeps", t0)
    t0 = time.perf_counter()
    print("== reference models")
    run_reference(profile, workdir / "reference", progress)
    stage_done("reference", t0)  # the report reads the stages so far
    for name, record in sorted(missing_data([workdir]).items()):
        studies = ", ".join(f"{n} in {study}" for study, n in sorted(record["studies"].items()))
        print(f"missing data: {name}: {studies} runs left out ({record['error']})")
    t0 = time.perf_counter()
    print("== analysis")
    result = analyze([workdir], workdir / "report", progress=progress)
    stage_done("analysis", t0)
    print(f"\n{len(result.figures)} figures and the report in {workdir / 'report'} (report.md, report.html)")
    for claim in result.claims:
        print(f"  {claim.id} {claim.verdict}: {claim.statement}")
    print(
        f"wall time of this invocation {timing['total']:.0f} s: "
        + ", ".join(f"{k} {v:.0f}" for k, v in timing.items() if k != "total")
    )
    return {"timing": timing, "failed": failed, "analysis": result}
