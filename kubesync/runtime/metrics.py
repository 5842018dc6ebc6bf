"""Controller metrics for ``prometheus_client`` users (the optional ``prometheus`` extra).

``Controller.metrics()`` is the dependency-free snapshot; this module exposes the same
numbers as a Prometheus collector read at scrape time (nothing runs in between).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterator, Optional

if TYPE_CHECKING:
    from kubesync.runtime.controller import Controller

__all__ = ["ControllerCollector", "register_prometheus"]


class ControllerCollector:
    """A ``prometheus_client`` collector over one controller's ``metrics()`` snapshot."""

    def __init__(self, controller: Controller[Any], name: Optional[str] = None):
        self.controller = controller
        self.name = name or controller.api.resource.plural

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        m = self.controller.metrics()
        labels = ["controller"]
        value = [self.name]

        def counter(name: str, doc: str, v: float) -> Any:
            c = CounterMetricFamily(f"kubesync_controller_{name}", doc, labels=labels)
            c.add_metric(value, v)
            return c

        def gauge(name: str, doc: str, v: float) -> Any:
            g = GaugeMetricFamily(f"kubesync_controller_{name}", doc, labels=labels)
            g.add_metric(value, v)
            return g

        yield counter("reconciles", "Reconciles run", m["reconciles"])
        yield counter("reconcile_errors", "Reconciles that raised", m["errors"])
        yield counter("reconcile_terminal_errors",
                      "Reconciles that raised TerminalError (not retried)",
                      m["terminal_errors"])
        yield counter("reconcile_timeouts", "Reconciles that returned past their deadline",
                      m["timeouts"])
        yield gauge("reconciles_overrunning", "Reconciles running past their deadline now",
                    m["overrunning"])
        yield counter("reconcile_seconds", "Time spent reconciling", m["duration_sum"])
        yield gauge("reconcile_seconds_max", "Longest reconcile", m["duration_max"])
        yield gauge("queue_depth", "Keys ready to reconcile", m["queue_depth"])
        yield gauge("queue_processing", "Keys being reconciled", m["queue_processing"])
        yield gauge("queue_delayed", "Keys waiting for a requeue time", m["queue_delayed"])
        yield gauge("store_objects", "Objects in the controller's store", m["store_size"])
        yield gauge("predicate_memory", "Objects the predicate remembers a value for",
                    m["predicate_memory"])
        yield gauge("leading", "1 while this replica leads (or runs without election)",
                    1.0 if m["leading"] else 0.0)


def register_prometheus(controller: Controller[Any], registry: Any = None,
                        name: Optional[str] = None) -> ControllerCollector:
    """Register a collector for ``controller`` with ``registry`` (default: the global one)."""
    if registry is None:
        from prometheus_client import REGISTRY

        registry = REGISTRY
    collector = ControllerCollector(controller, name)
    registry.register(collector)
    return collector
