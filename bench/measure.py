"""Running variants side by side, and what a workload reports: medians, ratios, targets."""

from __future__ import annotations

import gc
import logging
import statistics
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional

log = logging.getLogger("bench")

LOWER, HIGHER = "lower", "higher"


@dataclass
class Variant:
    """One way of doing a workload: ``run()`` does it once and returns the measured value.

    ``na`` says why a peer cannot do the workload (then ``run`` is never called);
    ``close`` releases what the variant holds (clients, threads) after the last run.
    """

    name: str
    run: Optional[Callable[[], float]] = None
    na: Optional[str] = None
    close: Optional[Callable[[], None]] = None
    note: str = ""


@dataclass
class Measurement:
    """A variant's values over the runs (``na`` if it could not run)."""

    variant: str
    values: List[float] = field(default_factory=list)
    na: Optional[str] = None
    note: str = ""

    @property
    def median(self) -> Optional[float]:
        return statistics.median(self.values) if self.values and self.na is None else None


@dataclass
class Target:
    """``subject``'s median at most (``better`` lower) or at least (higher) ``factor`` x
    ``other``'s median; with ``other`` None, ``factor`` is an absolute bound."""

    subject: str
    other: Optional[str]
    factor: float
    text: str

    def check(self, result: WorkloadResult) -> Optional[bool]:
        mine = result.median(self.subject)
        bound = self.factor if self.other is None else result.median(self.other)
        if mine is None or bound is None:
            return None
        if self.other is not None:
            bound *= self.factor
        return mine <= bound if result.better == LOWER else mine >= bound


@dataclass
class WorkloadResult:
    """Everything one workload reports."""

    name: str
    title: str
    unit: str
    better: str
    baseline: str
    measurements: List[Measurement]
    targets: List[Target]
    notes: List[str] = field(default_factory=list)

    def median(self, variant: str) -> Optional[float]:
        for m in self.measurements:
            if m.variant == variant:
                return m.median
        return None

    def ratio(self, variant: str) -> Optional[float]:
        mine, base = self.median(variant), self.median(self.baseline)
        if mine is None or not base:
            return None
        return mine / base

    def paired_ratio(self, variant: str) -> Optional[float]:
        """The median of run-by-run ratios to the baseline (runs are interleaved, so run i
        of both saw the same moment's load): steadier than the ratio of medians."""
        mine = self._values(variant)
        base = self._values(self.baseline)
        if not mine or not base or len(mine) != len(base) or not all(base):
            return None
        return statistics.median(m / b for m, b in zip(mine, base))

    def _values(self, variant: str) -> List[float]:
        for m in self.measurements:
            if m.variant == variant and m.na is None:
                return m.values
        return []

    def verdicts(self, variant: str) -> List[Dict[str, Any]]:
        return [
            {"target": t.text, "pass": t.check(self)} for t in self.targets if t.subject == variant
        ]

    def to_dict(self) -> Dict[str, Any]:
        return {
            "workload": self.name,
            "title": self.title,
            "unit": self.unit,
            "better": self.better,
            "baseline": self.baseline,
            "notes": self.notes,
            "variants": [
                {
                    "variant": m.variant,
                    "median": m.median,
                    "ratio_vs_baseline": self.ratio(m.variant),
                    "paired_ratio_vs_baseline": self.paired_ratio(m.variant),
                    "runs": m.values,
                    "min": min(m.values) if m.values else None,
                    "max": max(m.values) if m.values else None,
                    "na": m.na,
                    "note": m.note,
                    "targets": self.verdicts(m.variant),
                }
                for m in self.measurements
            ],
        }


def run_variants(variants: List[Variant], runs: int, warmup: int = 1) -> List[Measurement]:
    """Run every variant ``warmup`` times unmeasured, then ``runs`` times, interleaved.

    Interleaving (run 1 of each, run 2 of each, ...) spreads load from other processes on
    the machine over all variants instead of penalising whichever ran during a spike. A
    variant that raises is reported as n/a with the error; the others go on.
    """
    out = {v.name: Measurement(v.name, na=v.na, note=v.note) for v in variants}
    live = [v for v in variants if v.na is None and v.run is not None]
    try:
        for i in range(warmup + runs):
            for v in live:
                m = out[v.name]
                if m.na is not None:
                    continue
                gc.collect()
                try:
                    assert v.run is not None
                    value = v.run()
                except Exception as e:
                    log.exception("variant %s failed", v.name)
                    m.na = f"failed: {type(e).__name__}: {e}"[:300]
                    continue
                if i >= warmup:
                    m.values.append(value)
                log.debug("%s run %d: %.6g", v.name, i - warmup, value)
    finally:
        for v in variants:
            if v.close is not None:
                try:
                    v.close()
                except Exception:
                    log.exception("closing %s failed", v.name)
    return [out[v.name] for v in variants]


def timed(fn: Callable[[], Any]) -> float:
    """Seconds ``fn()`` takes."""
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started
