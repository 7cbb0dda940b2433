"""``cvd reproduce``: train the reference experiments and print the table.

Each entry is a (study file, variant, overrides) triple trained with
:func:`research.train.train_and_evaluate` into ``workdir/<name>``; finished
runs are reused, interrupted ones resume. The table is printed and written to
``workdir/results.md``.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from research.config import load_config
from research.data.sources import FASHION_MNIST_DIR, _find_idx
from research.train import train_and_evaluate
from research.train.metrics import atomic_write_text

EXPERIMENTS = Path(__file__).resolve().parent.parent / "experiments"

# name -> (study file, variant, overrides)
PROFILES: dict[str, dict[str, tuple[str, str, list[str]]]] = {
    "quick": {
        "mnist1d_mlp": ("mnist1d.py", "mlp", []),
        "mnist1d_cnn": ("mnist1d.py", "cnn", []),
        "mnist1d_mlp_permuted": ("mnist1d.py", "mlp", ["data.permute_pixels=True"]),
        "mnist1d_cnn_permuted": ("mnist1d.py", "cnn", ["data.permute_pixels=True"]),
        "fashion_mlp": ("fashion_mnist.py", "mlp", []),
        "fashion_cnn": ("fashion_mnist.py", "cnn", []),
    },
}
PROFILES["full"] = {
    **PROFILES["quick"],
    **{f"{k}_5seeds": (f, v, [*o, "seeds=5"]) for k, (f, v, o) in PROFILES["quick"].items() if k.startswith("fashion")},
}


def fashion_mnist_available() -> bool:
    return _find_idx(Path(FASHION_MNIST_DIR), "train-images-idx3-ubyte") is not None


def reproduce(profile: str, workdir: Path, progress: bool = True) -> list[dict]:
    rows = []
    for name, (study, variant, overrides) in PROFILES[profile].items():
        if name.startswith("fashion") and not fashion_mnist_available():
            print(f"skipping {name}: Fashion-MNIST not found in {FASHION_MNIST_DIR} (apt-get install dataset-fashion-mnist)")
            continue
        config = load_config(f"{EXPERIMENTS / study}:{variant}", overrides)
        summary = train_and_evaluate(config, workdir / name, progress=progress)
        accs = [100 * r["test_accuracy"] for r in summary["replicas"]]
        rows.append(
            {
                "run": name,
                "params": summary["num_params"],
                "seeds": len(accs),
                "mean": statistics.fmean(accs),
                "std": statistics.stdev(accs) if len(accs) > 1 else 0.0,
                "wall_s": summary["wall_time_s"],
            }
        )
    lines = ["| run | params | seeds | test accuracy % (mean ± std) | wall time s |", "|---|---|---|---|---|"]
    lines += [
        f"| {r['run']} | {r['params']} | {r['seeds']} | {r['mean']:.2f} ± {r['std']:.2f} | {r['wall_s']:.1f} |" for r in rows
    ]
    table = "\n".join(lines)
    workdir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(workdir / "results.md", table + "\n")
    print(table)
    print(f"\nwritten to {workdir / 'results.md'}")
    return rows
