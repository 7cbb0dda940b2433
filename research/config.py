"""Config files and command-line overrides (big_vision style).

A study is a Python file with ``get_config(variant) -> ml_collections.ConfigDict``.
``load_config("experiments/mnist1d.py:cnn", ["train.epochs=3"])`` imports the
file, calls ``get_config("cnn")`` and applies the overrides. Every problem is a
:class:`~research.errors.UserError` with one line saying what is valid.

Override values are parsed as Python literals (``3``, ``1e-3``, ``(32, 64)``,
``True``) and must keep the type of the field they replace (ints widen to
floats); string fields take the text as written. Keys must exist, except
under ``model``, whose fields depend on the model and are checked when the
model is built.
"""

from __future__ import annotations

import ast
import importlib.util
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import ml_collections

from research.errors import UserError, did_you_mean

OPEN_SECTIONS = ("model",)  # sections whose keys the model, not the file, defines


def _data_defaults() -> ml_collections.ConfigDict:
    """The ``data`` section of :func:`default_config`."""
    return ml_collections.ConfigDict(
        {
            "name": "mnist1d",
            "dir": "",
            "permute_pixels": False,
            "permutation_seed": 0,
            # With permute_pixels: start the dense first layer at W0 P^T (W0: the unpermuted run's
            # init), so the run mirrors the unpermuted one exactly (C6's dense symmetry, shown).
            "permute_init": False,
            "n_per_class": 0,
            "subset_seed": 0,
            "standardize": False,
            "n_test": 0,  # evaluate on the first n_test test examples only (0: all)
            # Validation split held out of the training split (stratified, drawn by val_seed);
            # -1: 10% of it, at most 5000; 0: none. Choices are made on it, never on test.
            "n_val": -1,
            "val_seed": 0,
            # Position generalisation: paste every example onto a zero canvas of this
            # side length (0: off), its corner drawn per example from 0..canvas_region
            # on each axis (0: always the top-left corner), train and test alike.
            "canvas_size": 0,
            "canvas_region": 0,
        }
    )


def default_config() -> ml_collections.ConfigDict:
    """Every key the trainer reads, with its default. Study files start from this."""
    c = ml_collections.ConfigDict()
    c.seed = 0  # the replicas use seeds seed, seed + 1, ..., seed + seeds - 1
    c.seeds = 1  # seeds per learning rate; replicas = seeds x len(optimizer.learning_rates), one program
    c.tag = ""  # a free label for the analysis (e.g. "matched_flops"); training ignores it
    c.task = "train"  # or "kernel_regression": the model's infinite-width NNGP and NTK instead (research.kernels)
    # Not type-locked: model fields take several types (kernel_sizes 3 or (5, 3, 3), padding "SAME" or 1);
    # the model checks its own fields when it is built.
    c.model = ml_collections.ConfigDict({"name": "mnist1d_cnn"}, type_safe=False)
    c.data = _data_defaults()
    c.optimizer = ml_collections.ConfigDict(
        {
            "name": "adam",
            "learning_rate": 1e-3,
            "learning_rates": (),  # a grid: every rate x every seed is one replica (empty: learning_rate)
            "schedule": "constant",
            "warmup_steps": 0,
            "grad_clip_norm": 0.0,
            "b1": 0.9,
            "b2": 0.999,
            "weight_decay": 0.0,  # adamw only
            "momentum": 0.9,  # sgd and beta_lasso only
            # beta_lasso only (Neyshabur 2020): the L1 coefficient, and the threshold as a multiple of it:
            # after each step, weights below beta * l1 in magnitude are set to zero (50: the paper's)
            "l1": 0.0,
            "beta": 50.0,
        }
    )
    c.train = ml_collections.ConfigDict(
        {
            "batch_size": 100,
            "epochs": 1,
            "eval_batch_size": 1000,
            "log_every_steps": 0,
            "checkpoint_every_steps": 1000,
            "eval_every_epochs": 1,
            "augment_shift": 0,  # max random circular shift per spatial axis during training (0: off)
            "embed_at_epoch": 0,  # eFCN: embed model.family into embed_into at this epoch (0: off)
            "embed_into": "dense",
            "keep_checkpoints": 2,
            # False: delete checkpoints/ once the run and its final probes are done (large
            # sweeps on a small disk; such a run cannot be probed again later)
            "keep_final_checkpoint": True,
            "strategy": "auto",
            # Early stopping: stop once every replica has gone this many epochs without a better
            # validation accuracy (0: train all epochs). Either way each replica reports its test
            # accuracy at its best validation epoch beside the end-of-training numbers.
            "patience": 0,
            # Successive halving over the learning rates: at the first evaluation at or past this
            # fraction of train.epochs keep the better half of the rates by validation, train only
            # their replicas from there (0: off; research/train/rate_choice.py).
            "halve_rates_at": 0.0,
        }
    )
    c.probes = ml_collections.ConfigDict(
        {
            "final": (),  # probes run on the final checkpoint by cvd sweep (see `cvd list probes`)
            "track": (),  # probes recorded at every evaluation during training (e.g. "locality")
            "examples": 1000,  # test examples the probes use (0: all)
            "max_shift": 0,  # largest shift of the shift curves (0: a quarter of the smallest spatial axis)
        }
    )
    return c


def split_spec(spec: str) -> tuple[Path, str | None]:
    path, _, variant = spec.partition(":")
    return Path(path), (variant or None)


def _exited(path: Path, where: str, e: SystemExit) -> UserError:
    return UserError(f"config file {path} called sys.exit({e.code!r}) {where}; a study file returns its config, it must not exit")


def load_study_module(path: Path):
    """Import a study file by path."""
    if not path.is_file():
        raise UserError(f"config file {str(path)!r} does not exist (expected e.g. experiments/mnist1d.py:cnn)")
    module_spec = importlib.util.spec_from_file_location(f"cvd_config_{path.stem}", path)
    module = importlib.util.module_from_spec(module_spec)
    try:
        module_spec.loader.exec_module(module)
    except SystemExit as e:  # a study file that exits must not end cvd silently (with status 0)
        raise _exited(path, "while importing", e) from None
    except Exception as e:
        raise UserError(f"config file {path} failed to import: {type(e).__name__}: {e}") from None
    return module


def load_config_file(spec: str) -> ml_collections.ConfigDict:
    """Import ``path.py`` and call its ``get_config(variant)``."""
    path, variant = split_spec(spec)
    module = load_study_module(path)
    if not hasattr(module, "get_config"):
        raise UserError(f"config file {path} has no get_config(variant) function")
    try:
        config = module.get_config(variant) if variant is not None else module.get_config()
    except UserError:
        raise
    except SystemExit as e:
        raise _exited(path, f"in get_config({variant!r})", e) from None
    except Exception as e:
        raise UserError(f"{path}: get_config({variant!r}) raised {type(e).__name__}: {e}") from None
    if not isinstance(config, ml_collections.ConfigDict):
        raise UserError(f"{path}: get_config must return an ml_collections.ConfigDict, got {type(config).__name__}")
    return config


def _parse_literal(text: str):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _expected(key: str, shown, old) -> UserError:
    kind = type(old).__name__
    article = "an" if kind[0] in "aeiou" else "a"
    return UserError(f"{key}={shown!r}: expected {article} {kind} (the current value is {old!r})")


def _coerce(key: str, old, value, text: str | None = None):
    """``value`` as the type of the field's current value ``old`` (ints widen to floats, a
    scalar becomes a one-element tuple). ``text``: the command-line text ``value`` was
    parsed from, so that a string field takes it as written and a bool reads yes/no."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if text is not None and isinstance(old, str):
        return text
    if text is not None and isinstance(old, bool):
        lowered = text.strip().lower()
        if lowered in ("true", "1", "yes", "false", "0", "no"):
            return lowered in ("true", "1", "yes")
    if old is None or type(value) is type(old):
        return tuple(value) if isinstance(value, list) else value
    if isinstance(old, float) and number:
        return float(value)
    if isinstance(old, (tuple, list)) and isinstance(value, (tuple, list)):
        return tuple(value)
    if isinstance(old, (tuple, list)) and (number or isinstance(value, str)):
        return (value,)
    raise _expected(key if text is None else f"--config.{key}", value if text is None else text, old)


def _locate(config: ml_collections.ConfigDict, key: str) -> tuple[ml_collections.ConfigDict, str, bool]:
    """``(section, leaf, open)`` of ``config.<key>``: the section holding it, its name, and
    whether the section is open (its keys defined by the model). Unknown keys are refused."""
    *parents, leaf = key.split(".")
    node = config
    walked = []
    for part in parents:
        if not isinstance(node, ml_collections.ConfigDict) or part not in node:
            valid = list(node.keys()) if isinstance(node, ml_collections.ConfigDict) else []
            raise UserError(
                f"unknown config key {key!r}: no section {'.'.join([*walked, part])!r}.{did_you_mean(part, valid)} Valid: {', '.join(sorted(valid))}"
            )
        node = node[part]
        walked.append(part)
    if not isinstance(node, ml_collections.ConfigDict):
        raise UserError(f"unknown config key {key!r}: {'.'.join(walked)!r} is a value, not a section")
    is_open = bool(walked) and walked[0] in OPEN_SECTIONS
    if leaf in node and isinstance(node[leaf], ml_collections.ConfigDict):
        raise UserError(f"config key {key!r} is a section; set one of its keys: {', '.join(sorted(node[leaf].keys()))}")
    if leaf not in node and not is_open:
        valid = list(node.keys())
        raise UserError(
            f"unknown config key {key!r}.{did_you_mean(leaf, valid)} Valid in {'.'.join(walked) or 'config'}: {', '.join(sorted(valid))}"
        )
    return node, leaf, is_open


def _assign(node: ml_collections.ConfigDict, leaf: str, new) -> None:
    with node.unlocked():
        if leaf in node and type(node[leaf]) is not type(new) and not isinstance(node[leaf], (tuple, list)):
            del node[leaf]  # open sections: ml_collections would refuse the type change
        node[leaf] = new


def apply_override(config: ml_collections.ConfigDict, key: str, text: str) -> None:
    """Set ``config.<key>`` from its command-line text, parsed into the field's type."""
    node, leaf, is_open = _locate(config, key)
    if leaf not in node:
        new = _parse_literal(text)
    else:
        try:
            new = _coerce(key, node[leaf], _parse_literal(text), text)
        except UserError:
            if not is_open:
                raise
            new = _parse_literal(text)  # the model checks its own fields (e.g. strides: int or tuple)
    _assign(node, leaf, new)


def set_value(config: ml_collections.ConfigDict, key: str, value) -> None:
    """Set ``config.<key>`` from a Python value (a sweep's override), with the same checks.

    Fields of the open sections (``model``) take the value itself, with its own type
    (``2`` stays an int padding beside ``"SAME"``); other fields keep their type (an int
    where a float is expected becomes a float); a string is read as command-line text."""
    if isinstance(value, str):  # text, as on the command line (``cvd sweep --config.*``)
        apply_override(config, key, value)
        return
    node, leaf, is_open = _locate(config, key)
    if is_open or leaf not in node:
        _assign(node, leaf, tuple(value) if isinstance(value, list) else value)
    else:
        _assign(node, leaf, _coerce(key, node[leaf], value))


def config_from_json(stored: dict) -> ml_collections.ConfigDict:
    """A run's ``config.json`` merged onto :func:`default_config`, so every key the code
    reads exists (a run written by older code lacks the keys added since). A config
    written before validation splits existed (no ``data.n_val``) trained on the whole
    training split: it gets ``n_val = 0``."""
    config = default_config()
    stored = {k: v for k, v in stored.items() if k != "provenance"}
    if "data" in stored and "n_val" not in stored["data"]:
        stored["data"] = {**stored["data"], "n_val": 0}

    def merge(node: ml_collections.ConfigDict, values: dict, prefix: str) -> None:
        for key, value in values.items():
            if isinstance(node.get(key), ml_collections.ConfigDict) and isinstance(value, dict):
                merge(node[key], value, f"{prefix}{key}.")
            else:
                with node.unlocked():
                    if key in node:
                        del node[key]
                    node[key] = tuple(value) if isinstance(value, list) else value

    merge(config, stored, "")
    _reset_dead_options(config.optimizer)  # written when a dead option was carried (adam's weight_decay 1e-4)
    return config


def _reset_dead_options(optimizer: ml_collections.ConfigDict) -> None:
    """Options that had no effect back at their defaults: the same run, as this code writes it."""
    defaults = default_config().optimizer
    for key, (switch, live) in LIVE_WHEN.items():
        if optimizer[switch] not in live:
            optimizer[key] = defaults[key]


def parse_override(arg: str) -> tuple[str, str]:
    """``--config.a.b=value`` (or ``a.b=value``) -> ``("a.b", "value")``."""
    body = arg.removeprefix("--").removeprefix("config.")
    key, eq, value = body.partition("=")
    if not eq or not key:
        raise UserError(f"cannot read override {arg!r}; write --config.section.key=value")
    return key, value


def load_config(source: str | ml_collections.ConfigDict, overrides: Mapping | Sequence[str] = ()) -> ml_collections.ConfigDict:
    """The one config builder: a study's config (``"file.py:variant"``, or a copy of a config
    already built) with ``overrides`` applied, either command-line text (``["train.epochs=3"]``)
    or a sweep's ``{key: value}`` (a string value is read as command-line text)."""
    if isinstance(source, ml_collections.ConfigDict):
        config = source.copy_and_resolve_references()
    else:
        config = load_config_file(source)
    if not isinstance(overrides, Mapping):
        overrides = dict(parse_override(arg) for arg in overrides)
    for key, value in overrides.items():
        set_value(config, key, value)
    return config


def config_to_json(config: ml_collections.ConfigDict) -> dict:
    """A plain JSON-able dict (tuples become lists), stable across runs."""
    return json.loads(config.to_json(sort_keys=True))


# Optimizer options and what makes them mean something: an option set away from its default
# where it changes nothing is refused, not silently ignored.
LIVE_WHEN = {
    "weight_decay": ("name", ("adamw",)),
    "momentum": ("name", ("sgd", "beta_lasso")),
    "l1": ("name", ("beta_lasso",)),
    "beta": ("name", ("beta_lasso",)),
    "b1": ("name", ("adam", "adamw")),
    "b2": ("name", ("adam", "adamw")),
    "warmup_steps": ("schedule", ("warmup_cosine",)),
}
