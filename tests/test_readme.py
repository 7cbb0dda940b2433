"""The README's verdict table says what ``results/paper/report.md`` says: the same verdict
per claim, and every number it quotes with a CI is one the report prints. Edit either
alone and this fails; regenerate the README's table from a new report."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VERDICT = re.compile(r"(not supported|supported|depends|inconclusive|no data)")
WITH_CI = re.compile(r"([+-]\d+\.\d+) \(([+-]\d+\.\d+) to ([+-]\d+\.\d+)\)")


def readme_table() -> dict[str, tuple[str, str]]:
    """``{claim id: (verdict, the row's text)}`` from the README's verdict table."""
    lines = (ROOT / "README.md").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| claim | verdict"))
    rows = {}
    for line in lines[start + 2 :]:
        if not line.startswith("| C"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[cells[0].split()[0]] = (VERDICT.match(cells[1]).group(1), line)
    return rows


def report_verdicts(text: str) -> dict[str, str]:
    return dict(re.findall(r"^\| (C\d+): .*? \| \*\*(.+?)\*\* \|", text, flags=re.M))


def test_the_readme_verdicts_are_the_reports():
    readme, report = readme_table(), report_verdicts((ROOT / "results/paper/report.md").read_text())
    assert report and set(readme) == set(report)
    assert {c: v for c, (v, _) in readme.items()} == report


def test_every_number_the_readme_quotes_with_a_ci_is_in_the_report():
    report = (ROOT / "results/paper/report.md").read_text().splitlines()
    for claim_id, (_, row) in readme_table().items():
        for mean, low, high in WITH_CI.findall(row):
            printed = [line for line in report if f"{mean} " in line and f"{low} to {high}" in line]
            assert printed, f"{claim_id}: the README quotes {mean} ({low} to {high}), the report does not"
