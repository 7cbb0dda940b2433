"""The claims report: each claim C1-C7 as commonly stated, its figure, the
measured effect with a 95% CI, and a verdict computed from those numbers by
the rules in :data:`THRESHOLDS` (printed in the report).

``write_report(results, figures, out)`` writes ``report.md`` (figures linked)
and a self-contained ``report.html`` (figures embedded as PNG data).
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.load import Results
from analysis.stats import diff_ci, mean_ci

THRESHOLDS = {
    "accuracy_points": 1.0,  # an accuracy difference counts when its whole 95% CI is beyond +-1 point
    "consistency_points": 5.0,  # a consistency difference counts beyond +-5 points
    "equivariance_exact": 1e-4,  # relative equivariance error below this is "exact"
    "throughput_ratio": 1.25,  # a family parallelises better when its fraction of peak is 1.25x the other's
    "permutation_indifferent_points": 2.0,  # dense counts as unaffected by a permutation within +-2 points
    "unconverged_val_gain_points": 0.5,  # flagged: mean val accuracy still rose by more than this over the last fifth
}

VARIANCE_SOURCES = (
    "Each 95% CI is a Student-t interval over the seeds trained at the run's chosen learning rate. "
    "A seed changes the initialisation and the order of the training batches; it does not change "
    "the training subset (`data.subset_seed`), the validation split (`data.val_seed`) or a pixel "
    "permutation (`data.permutation_seed`), which stay fixed within a study, so the CIs do not cover "
    "the variance of drawing them. Learning rates are chosen per run on the validation split "
    "(carved from the training data); test numbers are only reported."
)

SUPPORTED, NOT_SUPPORTED, DEPENDS, NO_DATA = "supported", "not supported", "depends", "no data"


@dataclass
class Claim:
    id: str
    statement: str
    figures: list[str]
    study: str
    verdict: str = NO_DATA
    effects: list[str] = field(default_factory=list)
    rule: str = ""


def _pct(x: float) -> str:
    return f"{100 * x:+.1f}" if np.isfinite(x) else "n/a"


def _effect(name: str, d: tuple[float, float, float], unit: str = "points") -> str:
    diff, low, high = d
    return f"{name}: {_pct(diff)} {unit} (95% CI {_pct(low)} to {_pct(high)})"


def _sign(d: tuple[float, float, float], margin_points: float) -> int:
    """+1 when the CI lies above +margin, -1 below -margin, else 0 (all in accuracy fractions)."""
    _, low, high = d
    m = margin_points / 100
    return 1 if low > m else (-1 if high < -m else 0)


def _acc(frame: pd.DataFrame, **where) -> pd.Series:
    mask = np.ones(len(frame), bool)
    for key, value in where.items():
        mask &= (frame[key] == value).to_numpy()
    return frame[mask]["test_accuracy"]


def _vote(signs: list[int], yes: str = SUPPORTED, no: str = NOT_SUPPORTED) -> str:
    if not signs:
        return NO_DATA
    if all(s > 0 for s in signs):
        return yes
    if all(s < 0 for s in signs):
        return no
    return DEPENDS


def _matched_differences(runs: pd.DataFrame, family_a: str, family_b: str):
    """``(label, runs, accuracy difference a - b with CI)`` at every (data set,
    widths) point where both families ran at the same shapes."""
    for dataset, widths in sorted({(d, w) for d, w in zip(runs["dataset"], runs["widths"])}):
        sub = runs[(runs["dataset"] == dataset) & (runs["widths"] == widths)]
        a, b = _acc(sub, family=family_a), _acc(sub, family=family_b)
        if len(a) and len(b):
            yield f"{dataset}, widths {widths}", sub, diff_ci(a, b)


def _matched_parameter_differences(shapes: pd.DataFrame, matched: pd.DataFrame):
    """``(label, conv - locally connected accuracy with CI)`` for each matched-parameter
    run: paired with the other family's matched-shape run whose parameter count is closest."""
    for key, run in matched.groupby("run_key", sort=True):
        first = run.iloc[0]
        other = "locally_connected" if first["family"] == "conv" else "conv"
        pool = shapes[(shapes["dataset"] == first["dataset"]) & (shapes["family"] == other)]
        if pool.empty:
            continue
        partner_key = pool.iloc[int(np.argmin(np.abs(pool["num_params"].to_numpy() - first["num_params"])))]["run_key"]
        partner = pool[pool["run_key"] == partner_key]
        conv, lc = (run, partner) if first["family"] == "conv" else (partner, run)
        label = (
            f"{first['dataset']}, matched parameters: conv (widths {conv['widths'].iloc[0]}, {int(conv['num_params'].iloc[0])} params) - "
            f"locally connected (widths {lc['widths'].iloc[0]}, {int(lc['num_params'].iloc[0])} params)"
        )
        yield label, diff_ci(conv["test_accuracy"], lc["test_accuracy"])


def claim_c1(results: Results) -> Claim:
    c = Claim(
        "C1",
        "Weight sharing cuts parameters and improves generalisation.",
        ["F1_accuracy_vs_params", "F2_sample_efficiency"],
        "weight_sharing",
    )
    runs = results.study("weight_sharing").dropna(subset=["test_accuracy"])
    matched_params = runs[runs["tag"] == "matched_params"]
    runs = runs[runs["tag"] != "matched_params"]
    signs = []
    for label, d in _matched_parameter_differences(runs, matched_params):
        c.effects.append(_effect(label, d))
        signs.append(_sign(d, THRESHOLDS["accuracy_points"]))
    for where, sub, d in _matched_differences(runs, "conv", "locally_connected"):
        ratio = (
            sub[sub["family"] == "locally_connected"]["num_params"].iloc[0] / sub[sub["family"] == "conv"]["num_params"].iloc[0]
        )
        c.effects.append(_effect(f"{where}: conv - locally connected accuracy", d) + f"; parameters x{ratio:.1f} without sharing")
        signs.append(_sign(d, THRESHOLDS["accuracy_points"]))
    sample = results.study("sample_efficiency").dropna(subset=["test_accuracy"])
    if not sample.empty:
        smallest = sample.loc[sample["n_per_class"] > 0, "n_per_class"].min()  # 0 means the whole training set
        d = diff_ci(
            _acc(sample, family="conv", n_per_class=smallest), _acc(sample, family="locally_connected", n_per_class=smallest)
        )
        c.effects.append(_effect(f"{smallest} examples per class: conv - locally connected", d))
        signs.append(_sign(d, THRESHOLDS["accuracy_points"]))
    c.verdict = _vote(signs)
    c.rule = (
        "supported when conv beats locally connected beyond the accuracy margin at every point (matched shapes, matched "
        "parameters, the smallest training set); not supported when it loses at every point; depends otherwise"
    )
    return c


def claim_c2(results: Results) -> Claim:
    c = Claim(
        "C2",
        "Sparse (local) connectivity captures local features with fewer parameters.",
        ["F3_kernel_size", "F11_locality_index", "F1_accuracy_vs_params"],
        "locality",
    )
    runs = results.study("weight_sharing").dropna(subset=["test_accuracy"])
    signs = []
    for where, _, d in _matched_differences(runs, "locally_connected", "dense"):
        c.effects.append(_effect(f"{where}: locally connected - dense", d))
        signs.append(_sign(d, THRESHOLDS["accuracy_points"]))
    loc = results.study("locality").dropna(subset=["test_accuracy"])
    if not loc.empty:
        conv = loc[loc["family"] == "conv"].copy()
        if not conv.empty:
            conv["k"] = conv["kernel_sizes"].map(lambda k: int(str(k).split("x")[0]))
            small = conv[conv["k"] == conv["k"].min()]["test_accuracy"]
            d = diff_ci(small, _acc(loc, family="full_kernel_conv"))
            c.effects.append(_effect(f"conv kernel {conv['k'].min()} - full-kernel conv (sharing without locality)", d))
            signs.append(_sign(d, THRESHOLDS["accuracy_points"]))
    tracked = (
        results.curves[results.curves.get("split", pd.Series(dtype=str)) == "track"]
        if not results.curves.empty
        else pd.DataFrame()
    )
    if not tracked.empty and "locality_index" in tracked:
        first, last = tracked[tracked["step"] == tracked["step"].min()], tracked[tracked["step"] == tracked["step"].max()]
        d = diff_ci(last["locality_index"], first["locality_index"])
        c.effects.append(
            f"dense first layer locality index: {first['locality_index'].mean():.3f} at step 0 -> {last['locality_index'].mean():.3f} at the end "
            f"(uniform weights {tracked['locality_uniform'].mean():.3f}; change 95% CI {d[1]:+.3f} to {d[2]:+.3f})"
        )
    c.verdict = _vote(signs)
    c.rule = "supported when locality helps at every point (locally connected > dense, small-kernel conv > full-kernel conv, beyond the accuracy margin)"
    return c


def claim_c3(results: Results) -> Claim:
    c = Claim(
        "C3",
        "Convolutional layers give translation invariance.",
        ["F4_shift_robustness", "F6_equivariance_error", "F5_position_generalisation"],
        "translation",
    )
    runs = results.study("translation")
    col = "probe.consistency.consistency_circular"
    eq_exact = None
    if not runs.empty and col in runs:
        plain = runs[(runs["augment_shift"] == 0) & (runs["family"] == "conv")]
        flatten = plain[plain["head"] == "flatten"][col]
        pooled = plain[plain["head"] != "flatten"][col]
        if len(flatten):
            m = mean_ci(flatten)
            c.effects.append(f"conv, flatten head: consistency {m[0]:.1f}% (95% CI {m[1]:.1f} to {m[2]:.1f})")
        if len(pooled):
            m = mean_ci(pooled)
            c.effects.append(
                f"conv, global-average head, circular padding: consistency {m[0]:.1f}% (95% CI {m[1]:.1f} to {m[2]:.1f})"
            )
        for family in ("conv", "locally_connected", "dense"):
            keys = runs[(runs["family"] == family) & (runs["augment_shift"] == 0) & (runs["padding"] == "CIRCULAR")][
                "run_key"
            ].unique()
            errors = [
                np.asarray(results.probes[k]["equivariance"]["error"], float)
                for k in keys
                if "equivariance" in results.probes.get(k, {})
            ]
            if errors:
                e = float(np.nanmax(np.concatenate(errors)))
                c.effects.append(f"{family}, circular padding: largest per-layer equivariance error {e:.2g}")
                if family == "conv":
                    eq_exact = e < THRESHOLDS["equivariance_exact"]
        if len(flatten) and len(pooled):
            gap = pooled.mean() - flatten.mean()
            invariant_alone = flatten.mean() >= 100 - THRESHOLDS["consistency_points"]
            if invariant_alone:
                c.verdict = SUPPORTED
            elif gap > THRESHOLDS["consistency_points"]:
                c.verdict = (
                    DEPENDS
                    + " on pooling"
                    + (
                        ": conv layers are equivariant (exactly, with circular padding); invariance comes from global pooling"
                        if eq_exact
                        else ""
                    )
                )
            else:
                c.verdict = NOT_SUPPORTED
    pos = results.study("position")
    if not pos.empty and "probe.position.accuracy_in_region" in pos:
        for (family, head), group in pos.groupby(["family", "head"]):
            d = diff_ci(group["probe.position.accuracy_off_region"], group["probe.position.accuracy_in_region"])
            c.effects.append(_effect(f"position study, {family} with {head} head: off-region - in-region accuracy", d))
    c.rule = (
        "supported when a conv net with a flatten head is already consistent (>= 100 - consistency margin); depends on pooling when a global-pooling head "
        "raises consistency by more than the margin; not supported otherwise"
    )
    return c


def claim_c4(results: Results) -> Claim:
    c = Claim("C4", "Convolutional layers parallelise; dense layers cannot.", ["F7_cost"], "compute")
    runs = results.study("compute").drop_duplicates("run_key")
    col = "probe.cost.fraction_of_peak"
    if runs.empty or col not in runs:
        return c
    shape = runs[runs["tag"] == "matched_shape"].set_index("family")
    for family in shape.index:
        c.effects.append(
            f"{family}: {shape.loc[family, 'probe.cost.examples_per_s']:.0f} examples/s, {100 * shape.loc[family, col]:.1f}% of matmul peak, "
            f"{shape.loc[family, 'probe.cost.step_flops']:.3g} FLOPs/step (matched shapes)"
        )
    if "conv" in shape.index and "dense" in shape.index:
        ratio = shape.loc["conv", col] / shape.loc["dense", col]
        c.effects.append(f"fraction of peak, conv / dense: {ratio:.2f}x on {shape['probe.cost.device'].iloc[0]}")
        if ratio >= THRESHOLDS["throughput_ratio"]:
            c.verdict = SUPPORTED
        elif ratio <= 1 / THRESHOLDS["throughput_ratio"]:
            c.verdict = NOT_SUPPORTED + " on this hardware: the dense family uses the machine better"
        else:
            c.verdict = DEPENDS + ": no clear difference on this hardware"
    c.rule = "judged from measured FLOP/s: supported when conv reaches 1.25x dense's fraction of peak; not supported at <= 1/1.25"
    return c


def claim_c5(results: Results) -> Claim:
    c = Claim("C5", "Pooling lowers dimension and adds robustness.", ["F4_shift_robustness"], "pooling")
    runs = results.study("pooling")
    col = "probe.consistency.consistency_circular"
    if runs.empty or col not in runs:
        return c
    signs = []
    for dataset in sorted(runs["dataset"].unique()):
        sub = runs[runs["dataset"] == dataset]
        none = sub[(sub["pooling"] == "none") & (sub["head"] == "flatten")]
        for name, group in [
            ("max", sub[(sub["pooling"] == "max") & (sub["head"] == "flatten")]),
            ("avg", sub[(sub["pooling"] == "avg") & (sub["head"] == "flatten")]),
            ("global_avg", sub[sub["head"] == "global_avg"]),
            ("global_max", sub[sub["head"] == "global_max"]),
        ]:
            if group.empty or none.empty:
                continue
            d = diff_ci(group[col] / 100, none[col] / 100)
            c.effects.append(_effect(f"{dataset}: consistency, {name} - no pooling", d))
            signs.append(_sign(d, THRESHOLDS["consistency_points"]))
            da = diff_ci(group["test_accuracy"], none["test_accuracy"])
            c.effects.append(_effect(f"{dataset}: accuracy, {name} - no pooling", da))
    positive = sum(s > 0 for s in signs)
    c.verdict = (
        NO_DATA
        if not signs
        else (SUPPORTED if positive == len(signs) else (NOT_SUPPORTED if positive == 0 else DEPENDS + " on the kind of pooling"))
    )
    c.rule = (
        "supported when every pooling kind raises consistency under shifts by more than the consistency margin over no pooling"
    )
    return c


def claim_c6(results: Results) -> Claim:
    c = Claim("C6", "Conv's advantage comes from the spatial prior.", ["F8_permuted_pixels"], "permuted_pixels")
    runs = results.study("permuted_pixels").dropna(subset=["test_accuracy"])
    signs = []
    for dataset in sorted(runs["dataset"].unique()):
        sub = runs[runs["dataset"] == dataset]
        conv = diff_ci(_acc(sub, family="conv", permute_pixels=False), _acc(sub, family="conv", permute_pixels=True))
        dense = diff_ci(_acc(sub, family="dense", permute_pixels=False), _acc(sub, family="dense", permute_pixels=True))
        c.effects.append(_effect(f"{dataset}: conv accuracy lost to the permutation", conv))
        c.effects.append(_effect(f"{dataset}: dense accuracy lost to the permutation", dense))
        dense_indifferent = abs(dense[0]) * 100 <= THRESHOLDS["permutation_indifferent_points"]
        signs.append(1 if _sign(conv, THRESHOLDS["accuracy_points"]) > 0 and dense_indifferent else -1)
    c.verdict = _vote(signs)
    c.rule = "supported when the permutation costs conv more than the accuracy margin while dense moves by at most the indifference margin"
    return c


def claim_c7(results: Results) -> Claim:
    c = Claim("C7", "A dense net can keep a conv net's solution (eFCN).", ["F9_efcn"], "embedding")
    runs = results.study("embedding").dropna(subset=["test_accuracy"])
    if runs.empty:
        return c
    dense = _acc(runs, family="dense", embed_at_epoch=0)
    conv = _acc(runs, family="conv", embed_at_epoch=0)
    signs = []
    for t in sorted(runs[runs["embed_at_epoch"] > 0]["embed_at_epoch"].unique()):
        embedded = _acc(runs, embed_at_epoch=t)
        d = diff_ci(embedded, dense)
        c.effects.append(
            _effect(f"embedded at epoch {t}: eFCN - dense from scratch", d)
            + "; "
            + _effect("eFCN - conv", diff_ci(embedded, conv))
        )
        signs.append(_sign(d, THRESHOLDS["accuracy_points"]))
    c.verdict = _vote(signs)
    c.rule = (
        "supported when the embedded dense net ends above dense-from-scratch beyond the accuracy margin at every embedding time"
    )
    return c


@dataclass
class Table:
    """A table rendered both as markdown and as HTML."""

    header: list[str]
    rows: list[list[str]]

    def markdown(self) -> list[str]:
        lines = ["| " + " | ".join(self.header) + " |", "|" + "---|" * len(self.header)]
        return lines + ["| " + " | ".join(row) + " |" for row in self.rows]

    def html(self) -> str:
        head = "".join(f"<th>{html.escape(h)}</th>" for h in self.header)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in self.rows)
        return f"<table><tr>{head}</tr>{body}</table>"


def _mean_pct(values: pd.Series) -> str:
    values = values.dropna()
    return f"{100 * values.mean():.1f}" if len(values) else "n/a"


def unconverged(runs: pd.DataFrame) -> pd.Series:
    """Per run key: True when the mean validation accuracy of its chosen replicas still
    rose by more than the margin over the last fifth of training."""
    gain = runs.groupby("run_key")["val_accuracy_gain_last_fifth"].mean()
    return gain > THRESHOLDS["unconverged_val_gain_points"] / 100


def learning_rate_table(results: Results) -> Table:
    """Per run: its grid, the rate chosen on validation (edge of the grid flagged), and
    the chosen replicas' mean val / test / final train accuracy and convergence."""
    table = Table(
        ["study", "data set", "family", "run", "grid", "chosen rate", "val %", "test %", "train %", "val gain last fifth", "converged"],
        [],
    )
    flags = unconverged(results.runs)
    for key, run in results.runs.groupby("run_key", sort=True):
        first = run.iloc[0]
        gain = run["val_accuracy_gain_last_fifth"].mean()
        rate = f"{first['learning_rate']:g}" + (" (edge of grid)" if first["lr_at_edge"] else "")
        table.rows.append(
            [
                str(first["study"]),
                str(first["dataset"]),
                str(first["family"]),
                str(first["run"]),
                str(first["lr_grid"]),
                rate,
                _mean_pct(run["val_accuracy"]),
                _mean_pct(run["test_accuracy"]),
                _mean_pct(run["train_accuracy"]),
                f"{100 * gain:+.1f}" if np.isfinite(gain) else "n/a",
                "n/a" if not np.isfinite(gain) else ("**no**" if flags.get(key, False) else "yes"),
            ]
        )
    return table


def training_summary(results: Results) -> list[str]:
    """Sentences above the learning-rate table: how many runs were tuned, at the edge, unconverged."""
    runs = results.runs
    if runs.empty:
        return []
    keys = runs["run_key"].unique()
    tuned = runs.groupby("run_key")["lr_grid"].first().str.contains(",").sum()
    edge = runs.groupby("run_key")["lr_at_edge"].first().sum()
    flags = unconverged(runs)
    diverged = int(results.grid["diverged"].astype(bool).sum()) if results.grid is not None else 0
    return [
        f"{len(keys)} runs; {tuned} chose their learning rate from a grid on validation accuracy, "
        f"{edge} of them at an edge of the grid (the best rate may lie outside it). "
        f"{int(flags.sum())} runs are flagged as not converged (validation accuracy still rose by more than "
        f"{THRESHOLDS['unconverged_val_gain_points']} points over the last fifth of training). "
        f"{diverged} replicas diverged (excluded from every mean)."
    ]


CLAIMS = [claim_c1, claim_c2, claim_c3, claim_c4, claim_c5, claim_c6, claim_c7]


def evaluate_claims(results: Results) -> list[Claim]:
    return [fn(results) for fn in CLAIMS]


def _md(claims: list[Claim], figures: dict[str, Path], source: str, results: Results) -> str:
    lines = ["# Conv vs dense: the claims, measured", "", f"Results: `{source}`.", "", "| claim | verdict |", "|---|---|"]
    lines += [f"| {c.id}: {c.statement} | **{c.verdict}** |" for c in claims]
    lines += [
        "",
        "Decision thresholds (in `analysis/report.py`): " + ", ".join(f"`{k}` = {v}" for k, v in THRESHOLDS.items()),
        "",
        VARIANCE_SOURCES,
        "",
    ]
    for c in claims:
        lines += [f"## {c.id}: {c.statement}", "", f"**Verdict: {c.verdict}.** Rule: {c.rule or 'n/a'}.", ""]
        if not c.effects:
            lines += [
                f"No runs of the `{c.study}` study were found; run `cvd sweep --config experiments/{c.study}.py:quick`.",
                "",
            ]
        lines += [f"- {e}" for e in c.effects] + [""]
        for name in c.figures:
            if name in figures:
                lines += [f"![{name}]({figures[name].name})", ""]
    lines += ["## Learning rates chosen on validation", "", *training_summary(results), ""]
    lines += [*learning_rate_table(results).markdown(), ""]
    if "F13_learning_rates" in figures:
        lines += [f"![F13_learning_rates]({figures['F13_learning_rates'].name})", ""]
    missing = [n for c in claims for n in c.figures if n not in figures]
    if missing:
        lines += ["Figures without data: " + ", ".join(sorted(set(missing))), ""]
    return "\n".join(lines)


def _html(claims: list[Claim], figures: dict[str, Path], source: str, results: Results) -> str:
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>Conv vs dense: the claims, measured</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;line-height:1.45}"
        "img{max-width:100%;border:1px solid #ddd;margin:0.5em 0}td,th{border:1px solid #ccc;padding:4px 8px}"
        "table{border-collapse:collapse}.v{font-weight:bold}</style></head><body>",
        "<h1>Conv vs dense: the claims, measured</h1>",
        f"<p>Results: <code>{html.escape(source)}</code></p>",
        "<table><tr><th>claim</th><th>verdict</th></tr>",
    ]
    parts += [f"<tr><td>{c.id}: {html.escape(c.statement)}</td><td class='v'>{html.escape(c.verdict)}</td></tr>" for c in claims]
    parts += [
        "</table>",
        "<p>Decision thresholds: " + ", ".join(f"<code>{k}</code> = {v}" for k, v in THRESHOLDS.items()) + "</p>",
        f"<p>{html.escape(VARIANCE_SOURCES)}</p>",
    ]
    for c in claims:
        parts += [
            f"<h2>{c.id}: {html.escape(c.statement)}</h2>",
            f"<p><span class='v'>Verdict: {html.escape(c.verdict)}.</span> Rule: {html.escape(c.rule or 'n/a')}.</p>",
        ]
        if not c.effects:
            parts.append(f"<p>No runs of the <code>{c.study}</code> study were found.</p>")
        parts.append("<ul>" + "".join(f"<li>{html.escape(e)}</li>" for e in c.effects) + "</ul>")
        for name in c.figures:
            if name in figures:
                data = base64.b64encode(figures[name].read_bytes()).decode()
                parts.append(f"<img alt='{name}' src='data:image/png;base64,{data}'>")
    parts += ["<h2>Learning rates chosen on validation</h2>", *(f"<p>{html.escape(t)}</p>" for t in training_summary(results))]
    parts.append(learning_rate_table(results).html())
    if "F13_learning_rates" in figures:
        data = base64.b64encode(figures["F13_learning_rates"].read_bytes()).decode()
        parts.append(f"<img alt='F13_learning_rates' src='data:image/png;base64,{data}'>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(results: Results, figures: dict[str, Path], out: Path, source: str) -> tuple[Path, Path, list[Claim]]:
    """Write ``report.md`` and ``report.html``; ``figures`` maps figure names to their PNGs."""
    from research.train.metrics import atomic_write_text

    claims = evaluate_claims(results)
    md, page = out / "report.md", out / "report.html"
    atomic_write_text(md, _md(claims, figures, source, results))
    atomic_write_text(page, _html(claims, figures, source, results))
    return md, page, claims
