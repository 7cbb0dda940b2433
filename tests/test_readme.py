"""The README's verdict table says what ``results/paper/report.md`` says: the same verdict
per claim, and every number it quotes with a CI is one the report prints. Edit either
alone and this fails; regenerate the README's table from a new report."""

from __future__ import annotations

import re
import shutil
import subprocess
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


def _publish(repo: Path, workdir: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(repo / "scripts/publish.sh"), str(workdir)], capture_output=True, text=True)


def test_publishing_refuses_a_report_from_uncommitted_or_foreign_code_and_replaces_results(tmp_path):
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts/publish.sh", repo / "scripts/publish.sh")
    (repo / "results/paper").mkdir(parents=True)
    (repo / "results/paper/F99_stale.png").write_bytes(b"old")
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "init"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout[:12]
    workdir = tmp_path / "runs"
    (workdir / "report").mkdir(parents=True)
    (workdir / "reference").mkdir()
    (workdir / "timing.json").write_text("{}")
    (workdir / "reference/results.md").write_text("| run |\n")
    (workdir / "report/F1_accuracy_vs_params.png").write_bytes(b"png")

    def report(code: str) -> None:
        (workdir / "report/report.md").write_text(
            f"# r\n\n- **profile**: cvd reproduce --profile paper (launcher local)\n- **code**: {code}\n"
        )

    for code, message in [
        (f"commit {head} (uncommitted changes) (3 runs)", "does not name one commit"),
        (f"commit {head} (2 runs); commit abcdef012345 (1 runs)", "does not name one commit"),
        ("not recorded; 3 runs written before provenance was recorded", "does not name one commit"),
        ("commit abcdef012345 (3 runs)", "not in this branch's history"),
    ]:
        report(code)
        done = _publish(repo, workdir)
        assert done.returncode == 2 and message in done.stderr, (code, done.stderr)
        assert (repo / "results/paper/F99_stale.png").exists()
    report(f"commit {head} (3 runs)")
    assert _publish(repo, workdir).returncode == 0
    assert sorted(p.name for p in (repo / "results/paper").iterdir()) == [
        "F1_accuracy_vs_params.png",
        "reference_results.md",
        "report.md",
        "timing.json",
    ]
