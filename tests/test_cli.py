"""The ``cvd`` command and config overrides: help, listings, and bad input as one line, exit 2, nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest

from research.cli import main
from research.config import load_config

ROOT = Path(__file__).resolve().parent.parent
MNIST1D = str(ROOT / "experiments/mnist1d.py")


def test_overrides_keep_types():
    c = load_config(
        f"{MNIST1D}:cnn",
        [
            "--config.optimizer.learning_rate=3",
            "--config.train.epochs=2",
            "--config.data.permute_pixels=true",
            "--config.model.widths=(8, 8, 8)",
            "--config.model.padding=CIRCULAR",
            "--config.optimizer.learning_rates=(0.1, 0.2)",
        ],
    )
    assert c.optimizer.learning_rate == 3.0 and isinstance(c.optimizer.learning_rate, float)
    assert c.train.epochs == 2 and c.data.permute_pixels is True
    assert c.model.widths == (8, 8, 8) and c.model.padding == "CIRCULAR"
    assert tuple(c.optimizer.learning_rates) == (0.1, 0.2)


@pytest.mark.parametrize("argv", [["--help"], ["train", "--help"], ["list", "--help"], ["reproduce", "--help"]])
def test_every_command_has_help(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 0
    assert "usage:" in capsys.readouterr().out


def test_list(capsys):
    assert main(["list", "models"]) == 0
    out = capsys.readouterr().out
    assert "mnist1d_cnn" in out and "fashion_mlp" in out
    assert main(["list", "datasets"]) == 0
    assert "mnist1d" in capsys.readouterr().out


def test_train_prints_accuracy_per_learning_rate_and_says_when_nothing_ran(tmp_path, capsys):
    argv = [
        "train",
        "--config",
        f"{MNIST1D}:mlp,quick",
        "--config.data.n_per_class=10",
        "--config.train.batch_size",  # the space form absl users type
        "20",
        "--config.optimizer.learning_rates=(1e-3, 1e-2)",
        "--workdir",
        str(tmp_path / "r"),
        "--no-progress",
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "done" in out and "learning rate 0.01: val" in out and "mean over 2 seeds" in out
    assert "already finished" not in out
    assert (tmp_path / "r" / "summary.json").exists()
    assert main(argv) == 0
    assert "already finished; nothing ran" in capsys.readouterr().out
