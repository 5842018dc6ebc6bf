"""The report: a text table, the same as JSON, and a PNG chart for the docs."""

from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Optional

from bench.measure import HIGHER, WorkloadResult

#: Ratios beyond this are drawn clipped (kr8s's are ~10x and would flatten every other bar).
CHART_CLIP = 3.0
UNITS_SHORT = {"s": "s", "events/s": "ev/s", "bytes/object": "B/obj", "items/s": "/s"}


def fmt_value(value: Optional[float], unit: str) -> str:
    if value is None:
        return "n/a"
    if unit == "s":
        return f"{value * 1000:,.1f} ms"
    if unit == "MB/s":
        return f"{value:,.1f} MB/s"
    if unit == "instructions":
        return f"{value / 1e6:,.0f} M Ir"
    return f"{value:,.0f} {UNITS_SHORT.get(unit, unit)}"


def _verdict(checks: List[Dict[str, Any]]) -> str:
    if not checks:
        return ""
    if any(c["pass"] is None for c in checks):
        return "n/a"
    return "pass" if all(c["pass"] for c in checks) else "MISS"


def rows(results: List[WorkloadResult]) -> List[List[str]]:
    """Table rows: workload, variant, median, ratio vs baseline, target, pass/miss."""
    out = []
    for r in results:
        for m in r.measurements:
            ratio = r.ratio(m.variant)
            checks = r.verdicts(m.variant)
            if m.na is not None:
                median = f"n/a: {m.na}"
            else:
                median = fmt_value(m.median, r.unit)
            ratio_text = "" if ratio is None else f"{ratio:.2f}x"
            if m.variant == r.baseline and m.na is None:
                ratio_text = "1.00 (base)"
            out.append([
                r.name, m.variant, median, ratio_text,
                "; ".join(c["target"] for c in checks), _verdict(checks),
            ])
    return out


def table(results: List[WorkloadResult]) -> str:
    """A plain-text table (also valid Markdown)."""
    head = ["workload", "variant", "median", "ratio vs base", "target", "result"]
    body = rows(results)
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body)]
    widths = [min(w, 60) for w in widths]

    def line(cells: List[str]) -> str:
        return "| " + " | ".join(str(c)[:60].ljust(w) for c, w in zip(cells, widths)) + " |"

    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(head), sep, *(line(r) for r in body)])


def write_json(path: str, meta: Dict[str, Any], results: List[WorkloadResult]) -> None:
    doc = {"meta": meta, "workloads": [r.to_dict() for r in results]}
    with open(path, "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")


def write_chart(path: str, results: List[WorkloadResult], subtitle: str = "") -> bool:
    """One panel per workload: each variant's median relative to the baseline (1.0).
    False, writing nothing, without matplotlib (a bench extra) or anything to show."""
    try:
        import matplotlib
    except ImportError:
        return False

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [r for r in results if r.median(r.baseline)]
    if not shown:
        return False
    cols = 2 if len(shown) > 1 else 1
    nrows = (len(shown) + cols - 1) // cols
    fig, axes = plt.subplots(nrows, cols, figsize=(7 * cols, 2.6 * nrows + 0.8),
                             squeeze=False)
    for ax in axes.flat[len(shown):]:
        ax.axis("off")
    for ax, r in zip(axes.flat, shown):
        ms = [m for m in r.measurements if m.median is not None]
        names = [m.variant for m in ms][::-1]
        ratios = [r.ratio(m.variant) or 0.0 for m in ms][::-1]
        colors = ["#1f77b4" if n.startswith("kubesync") else
                  "#7f7f7f" if n == r.baseline else "#c7c7c7" for n in names]
        bars = ax.barh(names, [min(x, CHART_CLIP) for x in ratios], color=colors)
        for bar, m, ratio in zip(bars, ms[::-1], ratios):
            label = " " + fmt_value(m.median, r.unit)
            if ratio > CHART_CLIP:
                label += f" ({ratio:.1f}x, clipped)"
            ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, label,
                    va="center", fontsize=7)
        ax.axvline(1.0, color="black", linewidth=0.8)
        for t in r.targets:
            if t.other == r.baseline:
                ax.axvline(t.factor, color="#d62728", linestyle="--", linewidth=1)
        better = "higher" if r.better == HIGHER else "lower"
        ax.set_title(f"{r.title}\n(x {r.baseline}; {better} is better; red: target)",
                     fontsize=8)
        ax.tick_params(axis="y", labelsize=7)
        ax.tick_params(axis="x", labelsize=7)
        ax.set_xlim(0, min(max([*ratios, 1.0]), CHART_CLIP) * 1.45)
    fig.suptitle(f"kubesync benchmarks {subtitle}".strip(), fontsize=10)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
