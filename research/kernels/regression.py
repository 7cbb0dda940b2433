"""Kernel regression with the infinite-width kernels: the NNGP's GP posterior mean and the
NTK's gradient-descent limit.

``kernel_regression(config, workdir)`` is what a run with ``config.task =
"kernel_regression"`` does instead of training: it loads the config's data set
(with its validation split), computes the NNGP and NTK kernels of ``config.model``
from one walk (``research.kernels.kernels_fn``) between the training examples and
every split, and for each kernel fits the regression of centred one-hot targets for a
grid of ridges (relative to the mean of the training kernel's diagonal), picks the
ridge with the best validation accuracy, and reports test accuracy at it. With the
NNGP that is the GP posterior mean; with the NTK, the mean prediction of an infinitely
wide net trained by gradient descent on the MSE to convergence (Jacot et al. 2018;
Lee et al. 2019, https://arxiv.org/abs/1902.06720), the ridge standing for early
stopping and label noise. It writes ``config.json``, ``kernel.json`` (family, head,
dataset, n_train, wall_time_s, the NNGP's test_accuracy, val_accuracy, ridge and
ridge_grid, and the same four under ``ntk``) and a ``summary.json`` shaped like a
trained run's (its replica: the NNGP's accuracies, and the NTK's as
``ntk_test_accuracy`` / ``ntk_val_accuracy``), so sweeps, resume and the analysis
treat it as one.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from research.atomic import atomic_write_json
from research.data import load_dataset, model_inputs
from research.errors import UserError
from research.kernels import kernels_fn
from research.rundir import RunDir, run_config_json

RIDGES = (1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0)  # times the mean of the training kernel's diagonal


def posterior_accuracies(k_train: np.ndarray, k_eval: dict[str, np.ndarray], y_train: np.ndarray, labels: dict, classes: int):
    """Per ridge: accuracy of the kernel regression (the GP posterior mean, for the NNGP) on every evaluated split."""
    targets = np.eye(classes)[y_train] - 1.0 / classes
    eigvals, eigvecs = np.linalg.eigh(k_train)
    projected = eigvecs.T @ targets
    scale = float(np.mean(np.diag(k_train)))
    results = {}
    for ridge in RIDGES:
        alpha = eigvecs @ (projected / (eigvals + ridge * scale)[:, None])
        results[ridge] = {name: float(np.mean((k @ alpha).argmax(1) == labels[name])) for name, k in k_eval.items()}
    return results


def _chosen(accuracies: dict) -> dict:
    """The ridge with the best validation accuracy (ties: the larger ridge), its accuracies and the grid."""
    ridge = max(RIDGES, key=lambda r: (accuracies[r]["val"], -r))
    return {
        "test_accuracy": accuracies[ridge]["test"],
        "val_accuracy": accuracies[ridge]["val"],
        "ridge": ridge,
        "ridge_grid": {f"{r:g}": accuracies[r] for r in RIDGES},
    }


def kernel_regression(config, workdir: str | Path) -> dict:
    """Compute (or reuse) one kernel-regression run, holding its directory's lock; returns its summary."""
    with RunDir(workdir).lock("train"):
        return _fit(config, workdir)


def _fit(config, workdir: str | Path) -> dict:
    """:func:`kernel_regression` under the lock."""
    start = time.perf_counter()
    run_dir = RunDir(workdir)
    dataset = load_dataset(config.data)
    if "val" not in dataset.splits:
        raise UserError("kernel regression chooses its ridge on the validation split; set data.n_val to -1 or a count")
    kernel = kernels_fn(config.model, dataset.input_shape)
    config_json = run_config_json(config)
    finished = run_dir.start(config_json)
    if finished is not None:
        return finished
    inputs = model_inputs(dataset, config.data.standardize)
    labels = {"val": dataset.y_val, "test": dataset.y_test}
    k_train = kernel(inputs["train"])
    k_eval = {name: kernel(inputs[name], inputs["train"]) for name in labels}
    fits = {}
    for i, kind in enumerate(("nngp", "ntk")):
        evaluated = {name: k[i] for name, k in k_eval.items()}
        fits[kind] = _chosen(posterior_accuracies(k_train[i], evaluated, dataset.y_train, labels, dataset.num_classes))
    record = {
        "family": config.model.get("family", "mlp"),
        "head": config.model.get("head", "flatten"),
        "dataset": dataset.name,
        "n_train": int(dataset.splits["train"]),
        **fits["nngp"],
        "ntk": fits["ntk"],
        "wall_time_s": time.perf_counter() - start,
    }
    atomic_write_json(run_dir.kernel_file, record)
    nngp, ntk = fits["nngp"], fits["ntk"]
    summary = {
        "status": "done",
        "task": "kernel_regression",
        "num_params": None,  # infinitely wide
        "wall_time_s": record["wall_time_s"],
        "model": config.model.name,
        "dataset": dataset.metadata(),
        "replicas": [
            {
                "seed": None,
                "learning_rate": None,
                "test_accuracy": nngp["test_accuracy"],
                "val_accuracy": nngp["val_accuracy"],
                "ntk_test_accuracy": ntk["test_accuracy"],
                "ntk_val_accuracy": ntk["val_accuracy"],
                "diverged": False,
            }
        ],
        "test_accuracy_mean": nngp["test_accuracy"],
    }
    run_dir.write_summary(summary)
    return summary
