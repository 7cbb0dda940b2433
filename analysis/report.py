"""The claims report: each claim (C1-C9) as commonly stated, its figures, the
effects that decide it (95% CIs, pooled over points), the effects shown beside
them, and its verdict by the rules of :mod:`analysis.claims` (thresholds
printed in the report); then the learning rates chosen on validation.

``write_report(results, figures, out)`` writes ``report.md`` (figures linked)
and a self-contained ``report.html`` (figures embedded as PNG data).
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from analysis import replicas
from analysis.claims import THRESHOLDS, Claim, evaluate_claims
from analysis.load import Results
from research.atomic import atomic_write_text

VOCABULARY = (
    "Verdicts: supported (every decisive point clears the margin in the claim's favour); "
    "not supported (no decisive point does); depends (decisive points disagree); inconclusive (CIs straddle the margin). "
    "A point with one seed or no spread has no CI (n=1) and never decides. Diverged replicas are left out of every mean, in claims and figures alike, and counted."
)

VARIANCE_SOURCES = (
    "Each 95% CI is over the seeds trained at the run's chosen learning rate and says how it was made: a mean is a "
    "Student-t interval; a difference of independent groups is a Welch interval (Welch-Satterthwaite degrees of "
    "freedom); a difference of paired replicas (the same seeds, e.g. one family on original and permuted pixels, an "
    "eFCN and the conv it continues, one net read in and off a region) is a paired t interval of the per-seed "
    "differences; a pooled effect is a random-effects mean (DerSimonian-Laird) over distinct points with a "
    "Hartung-Knapp-Sidik-Jonkman t interval, from each point's standard error, and only summarises: verdicts "
    "are decided by the points. "
    "A seed changes the initialisation and the order of the training batches; it does not change "
    "the training subset (`data.subset_seed`), the validation split (`data.val_seed`) or a pixel "
    "permutation (`data.permutation_seed`), which stay fixed within a study, so the CIs do not cover "
    "the variance of drawing them. Learning rates are chosen per run on the validation split "
    "(carved from the training data); test numbers are only reported."
)


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
    """Per run key: flagged as not converged (:func:`analysis.replicas.unconverged` at the threshold)."""
    return replicas.unconverged(runs, THRESHOLDS["unconverged_val_gain_points"])


def learning_rate_table(results: Results) -> Table:
    """Per run: its grid, the rate chosen on validation (edge of the grid flagged), and
    the chosen replicas' mean val / test accuracy at their best validation epoch (the
    test accuracy at the end beside it), final train accuracy and convergence."""
    table = Table(
        [
            "study",
            "data set",
            "family",
            "run",
            "grid",
            "chosen rate",
            "val %",
            "test %",
            "test % at end",
            "train %",
            "val gain last fifth",
            "converged",
        ],
        [],
    )
    flags = unconverged(results.runs)
    for _, shared in results.runs.groupby("home", sort=False):  # a run several studies share: one row
        key = shared["run_key"].iloc[0]
        run = shared[shared["run_key"] == key]
        first = run.iloc[0].copy()
        first["study"] = ", ".join(dict.fromkeys(shared["study"]))
        gain = run["val_accuracy_gain_last_fifth"].mean()
        rate = f"{first['learning_rate']:g}" + edge_note(first)
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
                _mean_pct(run["test_accuracy_end"]),
                _mean_pct(run["train_accuracy"]),
                f"{100 * gain:+.1f}" if np.isfinite(gain) else "n/a",
                "n/a" if not np.isfinite(gain) else ("**no**" if flags.get(key, False) else "yes"),
            ]
        )
    return table


def edge_note(row) -> str:
    """Where a chosen rate sits in its grid, when at an edge."""
    if not row["lr_at_edge"]:
        return ""
    return " (edge: the optimizer's limit)" if row.get("lr_at_limit", False) else " (edge of grid)"


def training_summary(results: Results) -> list[str]:
    """Sentences above the learning-rate table: how many runs were tuned, at the edge, unconverged."""
    runs = results.runs
    unchosen = int((~results.grid.groupby("grid_key")["lr_chosen"].any()).sum()) if results.grid is not None else 0
    left_out = (
        f" {unchosen} runs of several learning rates without validation numbers are left out (no rate can be chosen)."
        if unchosen
        else ""
    )
    if runs.empty:
        return [left_out.strip()] if left_out else []
    by_run = runs.groupby("home")  # distinct runs: a run several studies share counts once
    keys = runs["home"].unique()
    tuned = by_run["lr_grid"].first().str.contains(",").sum()
    edge, limit = by_run["lr_at_edge"].first().sum(), by_run["lr_at_limit"].first().sum()
    grid = results.grid if results.grid is not None else runs
    extended = grid.loc[grid["grid_key"] != grid["run_key"], "grid_key"].nunique()
    flags = unconverged(runs).groupby(runs.groupby("run_key")["home"].first()).first()
    replicas = grid.drop_duplicates(["home", "replica"])
    diverged = int(replicas["diverged"].astype(bool).sum())
    return [
        f"{len(keys)} distinct trained runs (a run several studies share counts once; {len(replicas)} replicas "
        f"over every learning rate); {tuned} chose their learning rate from a grid on validation accuracy "
        f"({extended} grids extended past an edge by follow-up runs), "
        f"{edge - limit} of them still at an edge of what was tried (the best rate may lie outside it) and "
        f"{limit} at the optimizer's absolute limit. "
        f"{int(flags.sum())} runs are flagged as not converged (validation accuracy still rose by more than "
        f"{THRESHOLDS['unconverged_val_gain_points']} points and two standard errors of the validation split "
        "over the last fifth of training, and did not stop early); they decide no verdict and no figure shows them. "
        f"{diverged} replicas diverged (excluded from every mean, counted against their learning rate)." + left_out
    ]


def claim_lines(c: Claim, *, markdown: bool) -> list[str]:
    """A claim's verdict, rule, per-data-set verdicts, deciding and shown effects, notes:
    markdown lines, or HTML paragraphs and lists."""
    verdict = f"Verdict: {c.verdict}." + (
        " Per data set: " + ", ".join(f"{d} {v}" for d, v in c.per_dataset.items()) + "." if c.per_dataset else ""
    )
    blocks: list[tuple[str, list[str]]] = [("", [verdict + f" Rule: {c.rule or 'n/a'}."])]
    if not (c.deciding or c.shown or c.notes):
        blocks.append(
            ("", [f"No runs of the `{c.study}` study were found; run `cvd sweep --config experiments/{c.study}.py:quick`."])
        )
    deciding = [e.text() for e in c.deciding] + [p.text() for p in c.pools.values()] + ([c.pool.text()] if c.pool else [])
    for title, items in (("Deciding effects", deciding), ("Shown beside them", [e.text() for e in c.shown]), ("Notes", c.notes)):
        if items:
            blocks.append((title, items))
    lines = []
    for title, items in blocks:
        if markdown:
            lines += ([f"{title}:", ""] if title else []) + ([f"- {i}" for i in items] if title else items) + [""]
        else:
            lines += [f"<p><b>{html.escape(title)}</b></p>"] if title else []
            lines.append(
                "<ul>" + "".join(f"<li>{html.escape(i)}</li>" for i in items) + "</ul>"
                if title
                else f"<p>{html.escape(items[0])}</p>"
            )
    return lines


def provenance_rows(results: Results, source: str) -> list[tuple[str, str]]:
    """``(label, text)`` rows saying what produced the report: profile, code, packages,
    machine, dates, wall time per stage."""
    p = results.provenance or {}
    timing = p.get("timing") or {}
    rows = [("results", source)]
    if timing:
        rows.append(
            ("profile", f"cvd reproduce --profile {timing.get('profile', '?')} (launcher {timing.get('launcher', 'local')})")
        )
    commits = p.get("commits") or {}
    code = "; ".join(f"commit {c} ({n} runs)" for c, n in commits.items()) or "not recorded"
    if p.get("unrecorded"):
        code += f"; {p['unrecorded']} runs written before provenance was recorded"
    rows.append(("code", code))
    for versions in p.get("versions") or []:
        rows.append(("packages", ", ".join(f"{k} {v}" for k, v in versions.items())))
    for m in p.get("machines") or []:
        rows.append(
            (
                "machine",
                f"{m.get('backend')} backend, {m.get('devices')}, {m.get('cpu_cores')} CPU cores, {m.get('platform')}, Python {m.get('python')}",
            )
        )
    if p.get("dates"):
        first, last = p["dates"]
        rows.append(("trained", first if first == last else f"{first} to {last}"))
    seconds = timing.get("seconds") or {}
    if seconds:
        stages = ", ".join(f"{k} {v:.0f} s" for k, v in seconds.items() if k != "total")
        resumed = f" over {n} invocations" if (n := timing.get("invocations", 1)) > 1 else ""
        total = f"{seconds['total']:.0f} s in all{resumed}: " if "total" in seconds else ""
        rows.append(("wall time", total + stages))
    return rows


def missing_lines(results: Results, claims: list[Claim]) -> list[str]:
    """One sentence per data set that was not found here: why, and the points each claim lost."""
    by_study = {c.study: c.id for c in claims}
    lines = []
    for name, record in sorted(results.missing.items()):
        lost = ", ".join(
            f"{n} runs of {study}" + (f" ({by_study[study]})" if study in by_study else "")
            for study, n in sorted(record["studies"].items())
        )
        lines.append(f"{name} was not found on this machine, so its points are missing: {lost}. {record['error']}")
    return lines


def _md(claims: list[Claim], figures: dict[str, Path], source: str, results: Results) -> str:
    lines = [
        "# Conv vs dense: the claims, measured",
        "",
        *(f"- **{label}**: {text}" for label, text in provenance_rows(results, f"`{source}`")),
        "",
        "| claim | verdict | pooled deciding effect |",
        "|---|---|---|",
    ]
    lines += [f"| {c.id}: {c.statement} | **{c.verdict}** | {c.pool.text() if c.pool else 'n/a'} |" for c in claims]
    missing = missing_lines(results, claims)
    if missing:
        lines += ["", "**Data missing.** " + " ".join(missing)]
    lines += ["", VOCABULARY]
    lines += [
        "",
        "Decision thresholds (in `analysis/claims/__init__.py`): " + ", ".join(f"`{k}` = {v}" for k, v in THRESHOLDS.items()),
        "",
        VARIANCE_SOURCES,
        "",
    ]
    for c in claims:
        lines += [f"## {c.id}: {c.statement}", "", *(f"{line}" for line in claim_lines(c, markdown=True)), ""]
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
        "table{border-collapse:collapse}.v{font-weight:bold}.about th{text-align:left;background:#f4f4f4}</style></head><body>",
        "<h1>Conv vs dense: the claims, measured</h1>",
        "<table class='about'>"
        + "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in provenance_rows(results, source))
        + "</table><p></p>",
        "<table><tr><th>claim</th><th>verdict</th><th>pooled deciding effect</th></tr>",
    ]
    parts += [
        f"<tr><td>{c.id}: {html.escape(c.statement)}</td><td class='v'>{html.escape(c.verdict)}</td>"
        f"<td>{html.escape(c.pool.text() if c.pool else 'n/a')}</td></tr>"
        for c in claims
    ]
    parts.append("</table>")
    parts += [f"<p><b>Data missing.</b> {html.escape(line)}</p>" for line in missing_lines(results, claims)]
    parts += [
        f"<p>{html.escape(VOCABULARY)}</p>",
        "<p>Decision thresholds: " + ", ".join(f"<code>{k}</code> = {v}" for k, v in THRESHOLDS.items()) + "</p>",
        f"<p>{html.escape(VARIANCE_SOURCES)}</p>",
    ]
    for c in claims:
        parts.append(f"<h2>{c.id}: {html.escape(c.statement)}</h2>")
        parts += [html_line for html_line in claim_lines(c, markdown=False)]
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
    claims = evaluate_claims(results)
    md, page = out / "report.md", out / "report.html"
    atomic_write_text(md, _md(claims, figures, source, results))
    atomic_write_text(page, _html(claims, figures, source, results))
    return md, page, claims
