"""Analysis: sweep directories -> tidy DataFrames -> figures (F1-F15) -> the claims report.

``analyze(directories, out)`` is what ``cvd analyze`` and ``cvd reproduce``
call: it loads every run under the directories (:mod:`analysis.load`), builds
each registered figure (:mod:`analysis.figures`, one module per figure) as
PNG and PDF, and writes ``report.md`` and a self-contained ``report.html``
(:mod:`analysis.report`). It reads only the files runs write
(``config.json``, ``summary.json``, ``metrics.jsonl``, ``probes.json``), never
training code.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

from analysis import style
from analysis.figures import FIGURES
from analysis.load import Results, load_results, tidy
from analysis.report import write_report
from research.locks import workdir_lock
from research.progress import progress_bar


@dataclass
class Analysis:
    results: Results
    figures: dict[str, Path]
    report_md: Path
    report_html: Path
    claims: list
    skipped: list[str]


def analyze(directories, out: str | Path | None = None, *, progress: bool = True) -> Analysis:
    """Load results, draw every figure that has data, write the report into ``out`` (made if
    need be; held under its lock while it is written)."""
    directories = [Path(d) for d in ([directories] if isinstance(directories, (str, Path)) else directories)]
    out = Path(out) if out else directories[0] / "report"
    results = load_results(directories)
    with workdir_lock(out, "analyze", what="report directory"):
        figures, skipped = {}, []
        bar = progress_bar(total=len(FIGURES.names()), desc="figures", disable=not progress, unit="fig")
        for name in FIGURES.names():
            bar.set_postfix_str(name, refresh=False)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # empty CI groups
                fig = FIGURES.get(name)(results)
            if fig is None:
                skipped.append(name)
            else:
                figures[name] = style.save(fig, out, name)[0]
            bar.update(1)
        bar.close()
        md, page, claims = write_report(results, figures, out, ", ".join(map(str, directories)))
    return Analysis(results, figures, md, page, claims, skipped)


__all__ = ["Analysis", "Results", "analyze", "load_results", "tidy"]
