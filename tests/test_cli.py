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


BAD_TRAIN = [
    (["--config", "experiments/nope.py:cnn"], "does not exist"),
    (["--config", f"{MNIST1D}:cnnn"], "raised ValueError"),
    (["--config", f"{MNIST1D}:cnn", "--config.train.epoch=3"], "Did you mean 'epochs'"),
    (["--config", f"{MNIST1D}:cnn", "--config.trian.epochs=3"], "Did you mean 'train'"),
    (["--config", f"{MNIST1D}:cnn", "--config.train.epochs=three"], "expected a int"),
    (["--config", f"{MNIST1D}:cnn", "--config.train.epochs=0"], "epochs must be an integer >= 1"),
    (["--config", f"{MNIST1D}:cnn", "--config.train.batch_size=-5"], "batch_size must be"),
    (["--config", f"{MNIST1D}:cnn", "--config.train.batch_size=100000"], "larger than the training set"),
    (["--config", f"{MNIST1D}:cnn", "--config.seeds=0"], "seeds must be"),
    (["--config", f"{MNIST1D}:cnn", "--config.model.name=mnist1d_cnnn"], "Did you mean 'mnist1d_cnn'"),
    (["--config", f"{MNIST1D}:cnn", "--config.model.family=dense_conv"], "unknown layer family"),
    (
        ["--config", f"{MNIST1D}:cnn", "--config.model.kernel_sizes=99", "--config.model.padding=VALID"],
        "larger than the padded input",
    ),
    (["--config", f"{MNIST1D}:cnn", "--config.data.name=mnist_1d"], "Did you mean 'mnist1d'"),
    (
        ["--config", f"{MNIST1D}:cnn", "--config.data.name=fashion_mnist", "--config.data.dir=/nonexistent"],
        "dataset-fashion-mnist",
    ),
    (["--config", f"{MNIST1D}:cnn", "--config.optimizer.name=adamm"], "unknown optimizer.name"),
    (["--config", f"{MNIST1D}:cnn", "--config.optimizer.learning_rates=(0.1,)"], "learning_rates has 1 entries"),
    (["--config", f"{MNIST1D}:cnn", "--config.train.strategy=fastest"], "unknown train.strategy"),
    (["--config", f"{MNIST1D}:cnn", "--config.train"], "cannot read override"),
    (["--config", f"{MNIST1D}:cnn", "--bogus"], "unrecognized arguments"),
]


@pytest.mark.parametrize("extra,message", BAD_TRAIN)
def test_bad_train_input_is_one_line_exit_2_nothing_written(extra, message, tmp_path, capsys):
    workdir = tmp_path / "run"
    assert main(["train", *extra, "--workdir", str(workdir), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("cvd: error:") and len(err.splitlines()) == 1 and "Traceback" not in err
    assert message in err, err
    assert not workdir.exists()


def test_unwritable_workdir(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert main(["train", "--config", f"{MNIST1D}:mlp,quick", "--workdir", str(blocker / "run"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "cannot write to workdir" in err and len(err.strip().splitlines()) == 1
    assert blocker.read_text() == "not a directory"


def test_a_config_file_that_raises(tmp_path, capsys):
    bad = tmp_path / "bad.py"
    bad.write_text("def get_config(arg=None):\n    raise RuntimeError('broken study')\n")
    assert main(["train", "--config", str(bad), "--workdir", str(tmp_path / "run")]) == 2
    assert "broken study" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_train_prints_accuracy(tmp_path, capsys):
    argv = [
        "train",
        "--config",
        f"{MNIST1D}:mlp,quick",
        "--config.data.n_per_class=10",
        "--config.train.batch_size=20",
        "--workdir",
        str(tmp_path / "r"),
        "--no-progress",
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "done" in out and "mean over 2 seeds" in out
    assert (tmp_path / "r" / "summary.json").exists()
