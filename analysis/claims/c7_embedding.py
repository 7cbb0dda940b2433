"""C7: a dense net can keep a conv net's solution (eFCN), judged by non-inferiority of the
embedded net at the end against both references: the conv at the switch (read from the
eFCN run's own curve at the switch epoch: its own rate and replicas) and the conv trained
to the end (the conv run at its own chosen rate), per optimizer (Adam; plain SGD as in
d'Ascoli et al. 2019, whose switch carries no optimizer state). The comparison with the
dense net from scratch, and the weight mass leaving the conv's receptive fields, are
shown beside it (embedding study)."""

from __future__ import annotations

import pandas as pd

from analysis.claims import Claim, accuracy_difference, claim, keyed, live, select
from analysis.load import Results
from analysis.verdicts import keeps_outcome

STATEMENT = "A dense net can keep a conv net's solution (eFCN)."
FIGURES = ["F9_efcn"]
RULE = (
    "keeps the solution when the embedded net ends no worse (CI above -accuracy margin) than both the conv at the switch "
    "(its own run's curve: same rate, same replicas, paired) and the conv trained to the end (paired by seed), at every "
    "switch time and optimizer; not supported when it ends below at every one; depends when they differ"
)


def _at_epoch(results: Results, keys, epoch: int) -> pd.Series:
    """Test accuracy per replica of the runs ``keys`` at the end of ``epoch`` (their curves)."""
    curves = results.curves
    if curves.empty or "epoch" not in curves:
        return pd.Series(dtype=float)
    at = curves[curves["run_key"].isin(list(keys)) & (curves["split"] == "test") & (curves["epoch"] == epoch)]
    return keyed(at, "accuracy")


def at_switch(results: Results, sub: pd.DataFrame, t: int) -> pd.Series:
    """The conv at the switch: the eFCN runs' own curves at epoch ``t``; runs written without
    them fall back to the conv from scratch at epoch ``t`` (its own rate)."""
    own = _at_epoch(results, sub[sub["embed_at_epoch"] == t]["run_key"].unique(), t)
    if len(own):
        return own
    return _at_epoch(results, sub[(sub["family"] == "conv") & (sub["embed_at_epoch"] == 0)]["run_key"].unique(), t)


def _switches(c: Claim, results: Results, sub: pd.DataFrame, where: str, dataset: str) -> None:
    """Per switch time: eFCN at the end - conv at the switch, and - conv trained to the end
    (deciding, both); - dense from scratch (shown)."""
    dense, conv = select(sub, family="dense", embed_at_epoch=0), select(sub, family="conv", embed_at_epoch=0)
    for t in sorted(int(t) for t in sub[sub["embed_at_epoch"] > 0]["embed_at_epoch"].unique()):
        embedded = select(sub, embed_at_epoch=t)
        label = f"{where}, switch at epoch {t}: eFCN at the end"
        switch = at_switch(results, sub, t)
        if not len(switch):
            c.notes.append(
                f"{where}, switch at epoch {t}: no test accuracy recorded at the switch epoch, so no comparison with it"
            )
        c.deciding.append(accuracy_difference(f"{label} - conv at the switch", embedded, switch, dataset, pair=True))
        if len(conv):
            c.deciding.append(accuracy_difference(f"{label} - conv trained to the end", embedded, conv, dataset, pair=True))
        c.shown.append(accuracy_difference(f"{label} - dense from scratch", embedded, dense, dataset))


def _outside_notes(results: Results, runs: pd.DataFrame) -> list[str]:
    """Per tracked run: the share of the dense layers' weight mass outside the conv's receptive fields at the end."""
    curves = results.curves
    if curves.empty or "outside_receptive_field" not in curves:
        return []
    tracked = curves[(curves["split"] == "track") & curves["outside_receptive_field"].notna()]
    notes = []
    for key, part in tracked.groupby("run_key"):
        end = part[part["step"] == part["step"].max()]["outside_receptive_field"]
        run = runs.loc[runs["run_key"] == key]
        if run.empty:
            continue
        notes.append(
            f"{run['optimizer'].iloc[0] if 'optimizer' in run else 'adam'}, switch at epoch {int(run['embed_at_epoch'].iloc[0])}: "
            f"{100 * end.mean():.1f}% of the dense layers' weight mass lies outside the conv's receptive fields at the end "
            "(0% at the switch)"
        )
    return notes


@claim("C7", STATEMENT, figures=FIGURES, study="embedding", rule=RULE)
def embedding(c: Claim, results: Results) -> Claim:
    runs = live(results.study("embedding"))
    if runs.empty:
        return c.decide(keeps_outcome, judged=False)
    optimizer = runs["optimizer"].fillna("adam") if "optimizer" in runs else pd.Series("adam", index=runs.index)
    for (dataset, name), sub in runs.groupby([runs["dataset"], optimizer]):
        _switches(c, results, sub, f"{dataset}, {name}", dataset)
    c.notes += _outside_notes(results, runs)
    c.notes.append(
        "at the switch every replica's weights are embedded exactly (same function); Adam's moments restart, because "
        "they are statistics of gradients, not weights: the conv's gradient sums the per-position gradients that the "
        "dense net keeps apart (and the dense net has gradients outside the receptive fields), so mapping them through "
        "the linear embedding would not give the dense net's moments; the learning-rate schedule goes on from the switch step. "
        "Plain SGD carries no state: its switch is exact"
    )
    return c.decide(keeps_outcome)
