"""The bad-input catalog: every entry is refused with one line on stderr that says
what is wrong (and what would be right), exit status 2, no traceback, and
nothing written or overwritten."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from research.cli import main
from research.config import load_config
from research.pipeline import train_and_probe
from tests.helpers import TINY_STUDY

ROOT = Path(__file__).resolve().parents[2]
MNIST1D = str(ROOT / "experiments/mnist1d.py")
CNN = ["train", "--config", f"{MNIST1D}:cnn"]

# (argv with {tmp} for the test's directory, expected text). Train commands get
# "--workdir {tmp}/run" appended unless they name a workdir themselves.
CATALOG = [
    # config files and variants
    (["train", "--config", "experiments/nope.py:cnn"], "does not exist"),
    (["train", "--config", f"{MNIST1D}:cnnn"], "unknown variant 'cnnn'. Did you mean 'cnn'"),
    (["train", "--config", f"{MNIST1D}:cnn,quik"], "unknown flag of variant 'cnn' 'quik'"),
    (["train", "--config", "{tmp}/raises.py"], "broken study"),
    (["train", "--config", "{tmp}/no_get_config.py"], "has no get_config"),
    # config keys and values
    ([*CNN, "--config.train.epoch=3"], "Did you mean 'epochs'"),
    ([*CNN, "--config.trian.epochs=3"], "Did you mean 'train'"),
    ([*CNN, "--config.train.epochs=three"], "expected an int"),
    ([*CNN, "--config.optimizer.b1=5.0"], "optimizer.b1 must be >= 0 and < 1"),
    ([*CNN, "--config.optimizer.weight_decay=-3.0"], "optimizer.weight_decay must be >= 0"),
    ([*CNN, "--config.optimizer.warmup_steps=-10"], "optimizer.warmup_steps must be >= 0"),
    ([*CNN, "--config.optimizer.learning_rate=fast"], "expected a float"),
    ([*CNN, "--config.train"], "cannot read override"),
    ([*CNN, "--config.train.epochs=0"], "epochs must be an integer >= 1"),
    ([*CNN, "--config.train.batch_size=-5"], "batch_size must be"),
    ([*CNN, "--config.seeds=0"], "seeds must be"),
    ([*CNN, "--config.train.batch_size=100000"], "larger than the training set"),
    ([*CNN, "--config.optimizer.learning_rates=(0.1, -1.0)"], "learning_rates must be > 0"),
    ([*CNN, "--config.optimizer.name=adamm"], "unknown optimizer.name"),
    ([*CNN, "--config.train.strategy=fastest"], "unknown train.strategy"),
    # models and shapes
    ([*CNN, "--config.model.name=mnist1d_cnnn"], "Did you mean 'mnist1d_cnn'"),
    ([*CNN, "--config.model.name=lattice", "--config.model.family=dense_conv"], "unknown layer family"),
    ([*CNN, "--config.model.name=lattice", "--config.model.widths=(0, 4)"], "widths must be positive integers"),
    (
        [*CNN, "--config.model.name=lattice", "--config.model.kernel_sizes=99", "--config.model.padding=VALID"],
        "larger than the padded input",
    ),
    (
        [*CNN, "--config.model.name=lattice", "--config.model.widths=(4, 4)", "--config.model.kernel_sizes=(3, 3, 3)"],
        "kernel_sizes has 3 entries but the network has 2 layers",
    ),
    ([*CNN, "--config.model.name=lattice", "--config.model.padding=REFLECT"], "padding must be one of"),
    ([*CNN, "--config.model.name=lattice", "--config.model.head=global_mean"], "unknown head"),
    (
        [
            *CNN,
            "--config.model.name=lattice",
            "--config.model.family=dense",
            "--config.train.embed_at_epoch=1",
            "--config.train.epochs=2",
            "--config.train.embed_into=conv",
        ],
        "cannot embed dense into 'conv' exactly",
    ),
    (
        [*CNN, "--config.model.name=lattice", "--config.train.embed_at_epoch=5", "--config.train.epochs=5"],
        "embed_at_epoch must be between",
    ),
    ([*CNN, "--config.model.name=lattice", "--config.probes.track=('locality',)"], "needs a dense first layer"),
    ([*CNN, "--config.probes.final=('shfit',)"], "Did you mean 'shift'"),
    # data
    ([*CNN, "--config.data.name=mnist_1d"], "Did you mean 'mnist1d'"),
    ([*CNN, "--config.data.name=fashion_mnist", "--config.data.dir=/nonexistent"], "dataset-fashion-mnist"),
    ([*CNN, "--config.data.name=fashion_mnist", "--config.data.dir={tmp}/corrupt_idx"], "is not an unsigned-byte IDX file"),
    ([*CNN, "--config.data.name=tfds:mnist", "--config.data.dir={tmp}/no_tfds"], "is not available offline"),
    ([*CNN, "--config.data.n_per_class=100000"], "fewer than n_per_class"),
    ([*CNN, "--config.data.canvas_size=60", "--config.data.canvas_region=30"], "canvas_region=30 must be between"),
    ([*CNN, "--config.data.n_test=-1"], "n_test must be >= 0"),
    # workdirs
    ([*CNN, "--workdir", "{tmp}/a_file/run"], "cannot write to workdir"),
    ([*CNN, "--workdir", "{tmp}/not_a_run"], "is not empty and holds no run"),
    ([*CNN, "--config.train.epochs=2", "--workdir", "{tmp}/finished"], "holds a run with a different config"),
    # other commands
    (["sweep", "--config", "{tmp}/study.py:base", "--workdir", "{tmp}/sweep", "--launcher", "pbs"], "invalid choice"),
    (["sweep", "--config", "{tmp}/study.py:base", "--workdir", "{tmp}/sweep", "--launcher", "slurm"], "needs SLURM's sbatch"),
    (["sweep", "--config", "{tmp}/study.py:base", "--workdir", "{tmp}/sweep", "--workers", "0"], "--workers must be >= 1"),
    (["sweep", "--config", "{tmp}/study.py:base", "--workdir", "{tmp}/sweep", "--slurm-time", "0"], "--slurm-time must be >= 1"),
    (["sweep", "--config", "{tmp}/study.py:base", "--workdir", "{tmp}/sweep", "--retries", "-1"], "--retries must be >= 0"),
    (["sweep", "--config", "{tmp}/bad_sweep.py", "--workdir", "{tmp}/sweep"], "Did you mean 'model'"),
    (
        ["sweep", "--config", "{tmp}/study.py:base", "--workdir", "{tmp}/sweep", "--config.train.epochz=3"],
        "Did you mean 'epochs'",
    ),
    (["analyze", "{tmp}", "--config.seeds=3"], "takes no --config"),
    (["probe", "{tmp}/not_a_run"], "is not a run directory"),
    (["probe", "{tmp}/finished", "--probe", "translaton"], "Did you mean 'translation'"),
    (["probe", "{tmp}/finished", "--probe", "position"], "needs a run trained on a canvas"),
    (["analyze", "{tmp}/empty"], "no runs found"),
    (["analyze", "{tmp}/not_a_run"], "no runs found"),
    (["analyze", "{tmp}/missing"], "is not a directory"),
    (["reproduce", "--profile", "huge"], "invalid choice"),
    (["trian"], "invalid choice"),
    # issue 29: sizes, paths and exits checked before any work starts
    ([*CNN, "--config.train.epochs=100000000000000000000"], "more than 2147483647 training steps"),
    ([*CNN, "--config.train.epochs=1e20"], "expected an int"),
    ([*CNN, "--config.seed=4294967295", "--config.seeds=2"], "seed + seeds must be <= 4294967296"),
    ([*CNN, "--config.train.augment_shift=100000000000"], "augment_shift must be"),
    ([*CNN, "--config.seeds=100000"], "GB of memory"),
    ([*CNN, "--config.optimizer.learning_rate=-1.0"], "learning_rate must be > 0"),
    ([*CNN, "--workdir", "{tmp}/" + "x" * 300], "longer than"),
    ([*CNN, "--workdir", "{tmp}/bad\udcffname"], "not valid UTF-8"),
    (["train", "--config", "{tmp}/exits.py"], "called sys.exit(0)"),
    (["sweep", "--config", "{tmp}/exits.py", "--workdir", "{tmp}/sweep"], "called sys.exit(0)"),
    (["sweep", "--config", "{tmp}/study.py:base", "--workdir", "{tmp}/" + "y" * 300], "longer than"),
    (["analyze", "{tmp}/finished", "--out", "{tmp}/" + "z" * 300], "longer than"),
    (["reproduce", "--plan", "--disk-gb", "0"], "--disk-gb must be a number > 0"),
    (["reproduce", "--plan", "--disk-gb", "nan"], "--disk-gb must be a number > 0"),
    (["reproduce", "--plan", "--disk-gb", "-1"], "--disk-gb must be a number > 0"),
    (["reproduce", "--plan", "--device-memory-gb", "0"], "--device-memory-gb must be a number > 0"),
    (["reproduce", "--plan", "--device-memory-gb", "nan"], "--device-memory-gb must be a number > 0"),
]


@pytest.fixture(scope="module")
def playground(tmp_path_factory) -> Path:
    """Files the catalog refers to: broken studies, a corrupt IDX file, a finished run, ..."""
    tmp = tmp_path_factory.mktemp("bad_inputs")
    (tmp / "raises.py").write_text("def get_config(arg=None):\n    raise RuntimeError('broken study')\n")
    (tmp / "no_get_config.py").write_text("X = 1\n")
    (tmp / "exits.py").write_text("import sys\n\nsys.exit(0)\n")
    (tmp / "study.py").write_text(TINY_STUDY)
    (tmp / "bad_sweep.py").write_text(TINY_STUDY + "\n\ndef get_sweep(variant=None):\n    return [{'modle.family': 'conv'}]\n")
    idx = tmp / "corrupt_idx"
    idx.mkdir()
    for stem in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (idx / f"{stem}.gz").write_bytes(gzip.compress(b"this is not an idx file"))
    (tmp / "no_tfds").mkdir()
    (tmp / "a_file").write_text("not a directory")
    (tmp / "not_a_run").mkdir()
    (tmp / "not_a_run" / "notes.txt").write_text("my notes")
    (tmp / "empty").mkdir()
    # A finished run of the catalog's study (experiments/mnist1d.py:cnn), made small.
    overrides = ["--config.train.epochs=1", "--config.data.n_per_class=10", "--config.train.batch_size=20", "--config.seeds=1"]
    train_and_probe(load_config(f"{MNIST1D}:cnn", overrides), tmp / "finished", progress=False)
    return tmp


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("argv,expected", CATALOG, ids=[f"{i:02d}" for i in range(len(CATALOG))])
def test_bad_input_is_one_line_exit_2_nothing_written(argv, expected, playground, capsys, tally):
    argv = [a.replace("{tmp}", str(playground)) for a in argv]
    if argv[0] == "train" and "--workdir" not in argv:
        argv += ["--workdir", str(playground / "run")]
    if argv[0] == "train":
        argv.append("--no-progress")
    before = _snapshot(playground)
    code = main(argv)
    err = capsys.readouterr().err.strip()
    tally("bad_inputs")
    assert code == 2, err
    assert err.startswith("cvd: error:") and len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert expected in err, err
    assert _snapshot(playground) == before, "nothing written or overwritten"
    assert not (playground / "run").exists() and not (playground / "sweep").exists()


def test_the_catalog_is_large_enough():
    assert len(CATALOG) >= 25
    assert json.dumps(CATALOG)  # plain data, printable in a report
