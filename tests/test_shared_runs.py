"""Each distinct run trained once: sweeps that share a run store (as ``cvd reproduce``
gives every study) train a run that several of them list once, resume without training
it again, and the analysis lists it once with each study's own tag."""

from __future__ import annotations

import pytest

from analysis.load import load_results
from analysis.report import learning_rate_table, training_summary
from research.config import load_config
from research.errors import UserError
from research.rundir import RunDir, run_config_json, training_key
from research.sweep import run_sweep, run_sweeps
from research.train.spec import replica_grid
from tests.helpers import done_summary, mlp_study, tiny_config, write_run
from tests.test_grids import fake_launcher

SHARED_STUDY = mlp_study(
    """    if variant == "a":
        return [{"tag": "matched_shape"}, {"tag": "matched_params"}, {"model.hidden": (8,)}]
    return [{"tag": "other_study"}]""",
    extra="    c.optimizer.learning_rates = (1e-2, 3e-2, 1e-1)\n",
)


@pytest.fixture()
def studies(tmp_path) -> dict[str, str]:
    """Two study files (two studies, as the analysis names them by file) listing the runs of SHARED_STUDY."""
    specs = {}
    for variant in ("a", "b"):
        path = tmp_path / f"study_{variant}.py"
        path.write_text(SHARED_STUDY)
        specs[variant] = f"{path}:{variant}"
    return specs


def test_runs_that_train_the_same_share_one_directory_trained_once(studies, tmp_path, monkeypatch):
    launched: list[str] = []
    monkeypatch.setattr("research.sweep.launch", fake_launcher(3e-2, launched))
    store = tmp_path / "runs"
    a = run_sweep(studies["a"], tmp_path / "a", progress=False, store=store)
    b = run_sweep(studies["b"], tmp_path / "b", progress=False, store=store)
    assert len(launched) == 2  # (4,) trained once for three runs in two studies, (8,) once
    assert all(e["status"] == "done" for e in [*a["runs"].values(), *b["runs"].values()])
    assert len(list(store.iterdir())) == 2
    for sweep, index in ((tmp_path / "a", a), (tmp_path / "b", b)):
        assert all((sweep / "runs" / rid).is_symlink() for rid in index["runs"])
    run_sweep(studies["a"], tmp_path / "a", progress=False, store=store)  # resumed: nothing trains again
    run_sweep(studies["b"], tmp_path / "b", progress=False, store=store)
    assert len(launched) == 2

    results = load_results([tmp_path / "a", tmp_path / "b"])
    assert sorted(results.runs.drop_duplicates("run_key")["tag"]) == ["", "matched_params", "matched_shape", "other_study"]
    assert results.runs["home"].nunique() == 2
    table = learning_rate_table(results)
    assert len(table.rows) == 2 and any(row[0] == "study_a, study_b" for row in table.rows)  # listed once, with both studies
    assert training_summary(results)[0].startswith("2 distinct trained runs")


def test_sweeps_in_one_queue_train_a_shared_run_once_and_the_timed_sweep_last_alone(studies, tmp_path, monkeypatch):
    """``cvd reproduce``'s queue: both studies' runs go to one launch, the run they share once;
    the other study's entry of it is read as done; a study that times its runs waits for the
    others and gets one worker; each run's worker seconds are recorded, and a resumed queue runs nothing."""
    timed = tmp_path / "study_t.py"
    timed.write_text(SHARED_STUDY.replace("    c.optimizer", '    c.probes.final = ("cost",)\n    c.optimizer'))
    launches: list[tuple[int | None, list[str]]] = []

    def launch(launcher, jobs, workers, on_start, on_end, options):
        launches.append((workers, [job.workdir.parent.parent.name for job in jobs]))
        for job in jobs:
            on_start(job)
            config = load_config(job.spec, job.overrides)
            replicas = [{"seed": s, "learning_rate": r, "val_accuracy_at_best": 0.8} for s, r in zip(*replica_grid(config))]
            probes = {name: {"seconds": 0.0} for name in config.probes.final}
            write_run(job.workdir, run_config_json(config), done_summary(replicas), probes=probes)
            on_end(job, {"ok": True, "error": None})

    monkeypatch.setattr("research.sweep.launch", launch)
    sweeps = [(studies["a"], tmp_path / "a"), (f"{timed}:a", tmp_path / "t"), (studies["b"], tmp_path / "b")]
    keywords = dict(progress=False, store=tmp_path / "runs", extend_grids=False)
    a, t, b = run_sweeps(sweeps, **keywords)
    assert [workers for workers, _ in launches] == [None, 1]  # the launcher's default, then one for the timed study
    assert launches[0][1] == ["a", "a"]  # (4,) once for a's two runs and b's, (8,) once
    assert launches[1][1] == ["t", "t"]  # its own final probes: a training of its own
    assert all(e["status"] == "done" for index in (a, t, b) for e in index["runs"].values())
    assert all(e["seconds"] >= 0 for index in (a, t, b) for e in index["runs"].values())
    again = run_sweeps(sweeps, **keywords)
    assert len(launches) == 2 and [index["runs"] for index in again] == [a["runs"], t["runs"], b["runs"]]  # nothing ran


def test_a_run_directory_is_reused_across_tags_and_final_probes_but_not_across_training(tmp_path):
    config = tiny_config("mlp")
    run = RunDir(tmp_path / "run")
    run.start(run_config_json(config))
    other = tiny_config("mlp")
    other.tag, other.probes.final = "another study", ("translation",)
    assert run.prepare(run_config_json(other), overwrite=False) is None  # same training: resumed, not refused
    assert training_key(run_config_json(other)) == training_key(run_config_json(config))
    other.train.epochs += 1
    with pytest.raises(UserError, match="different config"):
        run.prepare(run_config_json(other), overwrite=False)
    assert training_key(run_config_json(other)) != training_key(run_config_json(config))


def test_a_run_trained_before_sharing_moves_into_the_store_and_is_not_trained_again(studies, tmp_path, monkeypatch):
    launched: list[str] = []
    monkeypatch.setattr("research.sweep.launch", fake_launcher(3e-2, launched))
    run_sweep(studies["b"], tmp_path / "b", progress=False)  # no store: a plain directory
    (rid,) = [p.name for p in (tmp_path / "b" / "runs").iterdir()]
    run_sweep(studies["b"], tmp_path / "b", progress=False, store=tmp_path / "runs")
    link = tmp_path / "b" / "runs" / rid
    key = training_key(run_config_json(load_config(studies["b"], {"tag": "other_study"})))
    assert link.is_symlink() and link.resolve() == (tmp_path / "runs" / key).resolve()
    assert RunDir(link).status()[0] == "done" and len(launched) == 1
