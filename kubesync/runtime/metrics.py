"""Controller metrics for ``prometheus_client`` users (the optional ``prometheus`` extra).

``Controller.metrics()`` is the dependency-free snapshot; this module exposes the same
numbers as a Prometheus collector read at scrape time (nothing runs in between).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterator, List, Optional

import attrs

if TYPE_CHECKING:
    from kubesync.runtime.controller import Controller

__all__ = ["ControllerCollector", "Sample", "controller_samples", "register_prometheus"]


@attrs.frozen
class Sample:
    """One metric of one controller: name (without the ``kubesync_controller_`` prefix),
    ``counter`` or ``gauge``, help text and value."""

    name: str
    type: str
    doc: str
    value: float


def controller_samples(controller: Controller[Any]) -> List[Sample]:
    """The numbers of ``controller.metrics()`` as metrics; the one list both the
    prometheus_client collector and the health app's ``/metrics`` page show."""
    m = controller.metrics()
    samples = [
        Sample("reconciles", "counter", "Reconciles run", m["reconciles"]),
        Sample("reconcile_errors", "counter", "Reconciles that raised", m["errors"]),
        Sample("reconcile_terminal_errors", "counter",
               "Reconciles that raised TerminalError (not retried)", m["terminal_errors"]),
        Sample("reconcile_timeouts", "counter", "Reconciles that returned past their deadline",
               m["timeouts"]),
        Sample("reconciles_overrunning", "gauge", "Reconciles running past their deadline now",
               m["overrunning"]),
        Sample("reconcile_seconds", "counter", "Time spent reconciling", m["duration_sum"]),
        Sample("reconcile_seconds_max", "gauge", "Longest reconcile", m["duration_max"]),
        Sample("queue_depth", "gauge", "Keys ready to reconcile", m["queue_depth"]),
        Sample("queue_processing", "gauge", "Keys being reconciled", m["queue_processing"]),
        Sample("queue_delayed", "gauge", "Keys waiting for a requeue time", m["queue_delayed"]),
        Sample("store_objects", "gauge", "Objects in the controller's store", m["store_size"]),
        Sample("predicate_memory", "gauge", "Objects the predicate remembers a value for",
               m["predicate_memory"]),
        Sample("leading", "gauge", "1 while this replica leads (or runs without election)",
               1.0 if m["leading"] else 0.0),
    ]
    if "shard_member" in m:
        samples += [
            Sample("shard_objects", "gauge", "Objects labelled for this replica (its store)",
                   m["shard_objects"]),
            Sample("shard_releases", "counter",
                   "Objects this replica let go to another after a drain", m["shard_releases"]),
            Sample("sharder_leading", "gauge", "1 while this replica runs the sharder",
                   1.0 if m["sharder_leading"] else 0.0),
            Sample("shard_members", "gauge", "Live members, as this replica's sharder sees "
                   "them (0 where it stands by)", m["shard_members"]),
            Sample("shard_assignments", "counter",
                   "Objects this replica's sharder gave their first owner", m["shard_assignments"]),
            Sample("shard_reassignments", "counter",
                   "Objects this replica's sharder moved from a member that was gone",
                   m["shard_reassignments"]),
            Sample("shard_drains", "counter",
                   "Drains this replica's sharder asked of a live owner", m["shard_drains"]),
        ]
    return samples


class ControllerCollector:
    """A ``prometheus_client`` collector over one controller's ``metrics()`` snapshot."""

    def __init__(self, controller: Controller[Any], name: Optional[str] = None):
        self.controller = controller
        self.name = name or controller.api.resource.plural

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        labels = ["controller"]
        for sample in controller_samples(self.controller):
            family = CounterMetricFamily if sample.type == "counter" else GaugeMetricFamily
            metric = family(f"kubesync_controller_{sample.name}", sample.doc, labels=labels)
            metric.add_metric([self.name], sample.value)
            yield metric


def register_prometheus(controller: Controller[Any], registry: Any = None,
                        name: Optional[str] = None) -> ControllerCollector:
    """Register a collector for ``controller`` with ``registry`` (default: the global one)."""
    if registry is None:
        from prometheus_client import REGISTRY

        registry = REGISTRY
    collector = ControllerCollector(controller, name)
    registry.register(collector)
    return collector
