"""F4 (C3, C5): accuracy against shift magnitude, and consistency, per family x
head x padding (translation study) and per pooling (pooling study)."""

from __future__ import annotations

import numpy as np

from analysis import style
from analysis.figures import FIGURES
from analysis.load import probe_value
from analysis.stats import mean_ci


def _curve(results, run_keys, mode: str):
    curves = [probe_value(results, key, "shift", f"accuracy_{mode}") for key in run_keys]
    curves = [c for c in curves if c is not None]
    if not curves:
        return None, None
    stacked = 100 * np.concatenate(curves, 0)  # (replicas, magnitudes)
    stats = np.array([mean_ci(col) for col in stacked.T])
    magnitudes = np.arange(stacked.shape[1])
    return magnitudes, {"mean": stats[:, 0], "low": stats[:, 1], "high": stats[:, 2]}


def _group_label(row) -> str:
    return f"{row['family']}, {row['head']}, {str(row['padding']).lower()}" + (", shift-aug" if row["augment_shift"] else "")


LINESTYLES = ["-", "--", ":", "-."]


@FIGURES.register("F4_shift_robustness")
def make(results):
    translation = results.study("translation")
    pooling = results.study("pooling")
    if translation.empty and pooling.empty:
        return None
    fig, axes = style.subplots(4, ncols=2, width=5.4, height=3.6)
    if not translation.empty:
        runs = translation.drop_duplicates("run_key")
        plain = runs[runs["augment_shift"] == 0]
        heads = sorted({(h, p) for h, p in zip(plain["head"], plain["padding"])})
        for ax, mode in zip(axes[:2], ("circular", "zero")):
            for _, row in plain.iterrows():
                x, agg = _curve(results, [row["run_key"]], mode)
                if x is None:
                    continue
                ls = LINESTYLES[heads.index((row["head"], row["padding"])) % len(LINESTYLES)]
                style.errorbars(ax, x, agg, row["family"], linestyle=ls, label=_group_label(row), markersize=3)
            ax.set_xlabel(f"{mode} shift (positions)")
            ax.set_ylabel("test accuracy (%)")
            ax.set_title(f"translation study: {mode} shifts (trained without shifts)")
        axes[0].legend(fontsize=7)
        ax = axes[2]
        labels, means, errs, colors = [], [], [], []
        for _, row in runs.sort_values(["family", "head", "augment_shift"]).iterrows():
            values = translation[translation["run_key"] == row["run_key"]].get("probe.consistency.consistency_circular")
            if values is None or values.dropna().empty:
                continue
            mean, low, high, _ = mean_ci(values)
            labels.append(_group_label(row))
            means.append(mean)
            errs.append(high - mean)
            colors.append(style.color(row["family"]))
        ax.barh(range(len(means)), means, xerr=errs, color=colors)
        ax.set_yticks(range(len(labels)), labels, fontsize=7)
        ax.set_xlabel("consistency under random circular shifts (%)")
        ax.set_title("consistency (Zhang 2019)")
    if not pooling.empty:
        ax = axes[3]
        runs = pooling.drop_duplicates("run_key")
        for i, (_, row) in enumerate(runs[runs["dataset"] == runs["dataset"].iloc[0]].iterrows()):
            x, agg = _curve(results, [row["run_key"]], "circular")
            if x is None:
                continue
            name = row["pooling"] if row["head"] == "flatten" else row["head"]
            style.errorbars(ax, x, agg, color=style.EXTRA_COLORS[i % len(style.EXTRA_COLORS)], label=name, markersize=3)
        ax.set_xlabel("circular shift (positions)")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(f"pooling study ({runs['dataset'].iloc[0]}): conv with each pooling")
        ax.legend(fontsize=7)
    fig.suptitle("F4  Shift robustness (mean, 95% CI over seeds)")
    return fig
