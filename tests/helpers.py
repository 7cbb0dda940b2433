"""Tiny configs shared by the training tests, and a writer of synthetic run trees."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from types import SimpleNamespace
from unittest import mock

from research.atomic import atomic_write_json, atomic_write_text
from research.config import default_config
from research.rundir import RunDir


def tiny_config(model: str = "cnn", **train):
    c = default_config()
    c.seeds = 2
    c.data.name = "mnist1d"
    c.data.n_per_class = 8  # 80 training examples
    if model == "cnn":
        c.model.name = "lattice"
        c.model.family = "conv"
        c.model.widths = (4, 4)
        c.model.kernel_sizes = 3
        c.model.strides = 2
    else:
        c.model.name = "mlp"
        c.model.hidden = (16,)
    c.optimizer.learning_rate = 1e-2
    c.train.batch_size = 10
    c.train.epochs = 3
    c.train.eval_batch_size = 300
    c.train.checkpoint_every_steps = 8
    for key, value in train.items():
        c.train[key] = value
    return c


def read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


TINY_STUDY = """
from research.config import default_config
from research.sweep import axis, product


def get_config(variant=None):
    c = default_config()
    c.seeds = 2
    c.model.name = "lattice"
    c.model.widths = (2, 2)
    c.model.strides = 2
    c.data.n_per_class = 5
    c.train.batch_size = 10
    c.train.epochs = 2
    c.optimizer.learning_rate = 1e-2
    return c


def get_sweep(variant=None):
    runs = product(axis("model.family", ["conv", "locally_connected", "dense"]), axis("model.kernel_sizes", [3, 5]),
                   axis("optimizer.learning_rate", [1e-2, 3e-3]))
    if variant in ("few", "pair"):  # 4 runs; "pair": 2, one a node of a 2-node cluster
        runs = [r for r in runs if r["optimizer.learning_rate"] == 1e-2 and r["model.family"] != "dense"]
        runs = runs[::2] if variant == "pair" else runs
    if variant == "faulty":
        runs = runs[:1] + [
            {"model.family": "conv", "model.kernel_sizes": 99, "model.padding": "VALID"},  # invalid: kernel > input
            {"train.batch_size": 10_000},  # invalid: batch larger than the training set (the run spec says so)
            {"probes.final": ("position",)},  # raises when it runs: its final probe needs a canvas
            {"optimizer.name": "sgd", "optimizer.learning_rate": 1e30},  # every replica diverges
        ]
    return runs
"""


def mlp_study(sweep: str, *, seeds: int = 2, hidden: int = 4, extra: str = "") -> str:
    """The text of a study file training a tiny MLP on MNIST-1D (10 examples a class), with
    ``extra`` config lines (indented statements on ``c``) and ``sweep``, the body of its
    ``get_sweep(variant)``."""
    return f"""
from research.config import default_config


def get_config(variant=None):
    c = default_config()
    c.seeds = {seeds}
    c.model.name = "mlp"
    c.model.hidden = ({hidden},)
    c.data.n_per_class = 5
    c.train.batch_size = 10
{extra}    return c


def get_sweep(variant=None):
{sweep}
"""


# -- synthetic run trees ---------------------------------------------------------------
# Analysis and verdict tests build results trees without training. The files are written
# through RunDir (and in the sweep's index format), so the on-disk layout lives in
# research.rundir, not in the tests.


SYNTHETIC_PROVENANCE = {
    "commit": "0123456789abcdef0123",
    "dirty": False,
    "versions": {"jax": "0.10.2", "flax": "0.12.0"},
    "machine": {"backend": "cpu", "devices": "1 x cpu", "cpu_cores": 2, "platform": "Linux", "python": "3.11.7"},
    "date": "2026-11-29 12:00 UTC",
}


def done_summary(replicas: list[dict], num_params: int = 1000, train_examples: int = 4000, **extra) -> dict:
    """The ``summary.json`` of a finished run: its replicas and the numbers the analysis reads."""
    return {
        "status": "done",
        "num_params": num_params,
        "replicas": replicas,
        "dataset": {"splits": {"train": train_examples}},
        **extra,
    }


def write_run(
    path: Path,
    config: dict,
    summary: dict | None = None,
    *,
    probes: dict | None = None,
    metrics: list[dict] = (),
    provenance: dict = SYNTHETIC_PROVENANCE,
) -> RunDir:
    """A run directory as training leaves it: ``config.json`` (stamped with ``provenance``
    in place of this machine's), ``summary.json`` when ``summary`` is given (else the run
    is unfinished), ``probes.json`` and ``metrics.jsonl`` records."""
    run = RunDir(path)
    run.make()
    with mock.patch("research.rundir.provenance", lambda: provenance):
        run.write_config(config)
    if summary is not None:
        run.write_summary(summary)
    if probes:
        atomic_write_json(run.probes_file, probes)
    if metrics:
        atomic_write_text(run.metrics_file, "".join(json.dumps(record) + "\n" for record in metrics))
    return run


def write_sweep_index(sweep: Path, study: str, runs: dict[str, dict]) -> None:
    """``sweep.json`` of a sweep directory whose runs are ``runs/<id>``: ``study`` is the
    spec it ran (``path/<study>.py:variant``), ``runs`` maps ids to entries (status, ...)."""
    entries = {rid: {"workdir": f"runs/{rid}", **entry} for rid, entry in runs.items()}
    counts: dict[str, int] = {}
    for entry in entries.values():
        counts[entry.get("status", "pending")] = counts.get(entry.get("status", "pending"), 0) + 1
    atomic_write_json(Path(sweep) / "sweep.json", {"study": study, "runs": entries, "counts": counts})


def report_only(directories, out: Path, save: tuple[str, ...] = (), build_all: bool = False) -> SimpleNamespace:
    """What ``analysis.analyze`` does, without rendering figures a test does not look at:
    loads the runs, saves the figures named in ``save`` (PNG and PDF), with ``build_all``
    builds every other figure without saving it (what could crash on the data), and
    writes ``report.md`` and ``report.html``. Returns ``report_md``, ``claims``,
    ``figures`` (saved: name -> PNG) and ``built`` (every figure that had data)."""
    import matplotlib.pyplot as plt

    from analysis import load_results, style
    from analysis.figures import FIGURES
    from analysis.report import write_report

    directories = [Path(d) for d in directories]
    out = Path(out)
    results = load_results(directories)
    out.mkdir(parents=True, exist_ok=True)
    saved, built = {}, []
    for name in FIGURES.names():
        if name not in save and not build_all:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # empty CI groups, as analyze does
            fig = FIGURES.get(name)(results)
        if fig is None:
            continue
        built.append(name)
        if name in save:
            saved[name] = style.save(fig, out, name)[0]
        else:
            plt.close(fig)
    md, _, claims = write_report(results, saved, out, ", ".join(map(str, directories)))
    return SimpleNamespace(report_md=md, claims=claims, figures=saved, built=built)


# -- the reliability suite's small run --------------------------------------------------
ROOT = Path(__file__).resolve().parents[1]
SMALL_TRAIN = [
    "train",
    "--config",
    f"{ROOT / 'experiments/mnist1d.py'}:mlp",
    "--config.seeds=1",
    "--config.data.n_per_class=10",  # 100 training examples: 10 steps an epoch
    "--config.train.batch_size=10",
    "--config.train.epochs=2",
    "--config.train.checkpoint_every_steps=5",  # checkpoints at steps 10 and 20
    "--no-progress",
]
"""``cvd train`` argv of issue 29's M (MNIST-1D MLP, one seed, 10 examples a class), 2 epochs and a
batch that fits; tests add ``--workdir``, and later ``--config.*`` overrides win."""
