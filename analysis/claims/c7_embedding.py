"""C7: a dense net can keep a conv net's solution (eFCN), judged by non-inferiority of
the embedded net at the end against the conv at the switch (embedding study); the
comparisons with the conv trained to the end and the dense net from scratch, and the
weight mass outside the conv's receptive fields, are shown beside it."""

from __future__ import annotations

import pandas as pd

from analysis.claims import Claim, accuracy_difference, claim, live, select
from analysis.load import Results
from analysis.verdicts import keeps_outcome

STATEMENT = "A dense net can keep a conv net's solution (eFCN)."
FIGURES = ["F9_efcn"]
RULE = (
    "keeps the solution when the embedded net ends no worse than the conv at the switch (CI above -accuracy margin) "
    "at every switch time; not supported when it ends below at every one; depends when switch times differ"
)


def _conv_at_epoch(results: Results, runs: pd.DataFrame, epoch: int) -> pd.Series:
    """Test accuracy per replica of the conv trained from scratch, at the end of ``epoch``."""
    curves = results.curves
    if curves.empty or "epoch" not in curves:
        return pd.Series(dtype=float)
    keys = runs[(runs["family"] == "conv") & (runs["embed_at_epoch"] == 0)]["run_key"].unique()
    at = curves[curves["run_key"].isin(keys) & (curves["split"] == "test") & (curves["epoch"] == epoch)]
    return at["accuracy"]


def _switches(c: Claim, results: Results, sub: pd.DataFrame, dataset: str) -> None:
    """Per switch time on one data set: eFCN at the end - conv at the switch (deciding),
    - conv trained to the end and - dense from scratch (shown)."""
    dense, conv = select(sub, family="dense", embed_at_epoch=0), select(sub, family="conv", embed_at_epoch=0)
    for t in sorted(sub[sub["embed_at_epoch"] > 0]["embed_at_epoch"].unique()):
        embedded = select(sub, embed_at_epoch=t)
        at_switch = _conv_at_epoch(results, sub, int(t))
        where = f"{dataset}, switch at epoch {t}"
        c.deciding.append(accuracy_difference(f"{where}: eFCN at the end - conv at the switch", embedded, at_switch, dataset))
        c.shown.append(accuracy_difference(f"{where}: eFCN - conv trained to the end", embedded, conv, dataset))
        c.shown.append(accuracy_difference(f"{where}: eFCN - dense from scratch", embedded, dense, dataset))


def _outside_notes(results: Results, runs: pd.DataFrame) -> list[str]:
    """Per tracked run: the share of the dense layers' weight mass outside the conv's receptive fields at the end."""
    curves = results.curves
    if curves.empty or "outside_receptive_field" not in curves:
        return []
    tracked = curves[(curves["split"] == "track") & curves["outside_receptive_field"].notna()]
    notes = []
    for key, part in tracked.groupby("run_key"):
        end = part[part["step"] == part["step"].max()]["outside_receptive_field"]
        t = runs.loc[runs["run_key"] == key, "embed_at_epoch"]
        notes.append(
            f"switch at epoch {int(t.iloc[0]) if len(t) else '?'}: {100 * end.mean():.1f}% of the dense layers' weight mass "
            "lies outside the conv's receptive fields at the end (0% at the switch)"
        )
    return notes


@claim("C7", STATEMENT, figures=FIGURES, study="embedding", rule=RULE)
def embedding(c: Claim, results: Results) -> Claim:
    runs = live(results.study("embedding"))
    if runs.empty:
        return c.decide(keeps_outcome, judged=False)
    for dataset in sorted(runs["dataset"].unique()):
        _switches(c, results, runs[runs["dataset"] == dataset], dataset)
    c.notes += _outside_notes(results, runs)
    c.notes.append(
        "at the switch every replica's weights are embedded exactly (same function) and the optimizer starts afresh: "
        "Adam's moments and step count reset, each replica keeps its learning rate"
    )
    return c.decide(keeps_outcome)
