"""The measured process of the reflector memory test: ``python reflector_child.py
KUBECONFIG NAMESPACE SELECTOR COUNT``.

Starts a reflector over the namespace's ConfigMaps that match the label selector, says
``synced`` once its store holds
COUNT objects, then reads ``NAME RESOURCEVERSION`` from stdin (the parent's last update)
and waits until the store has applied that change; then it prints its peak RSS as JSON.
A process of its own, so that only the reflector's memory is counted, not the test
runner's or the API server's.
"""

from __future__ import annotations

import json
import resource
import sys
import threading
from typing import Any, Dict, List

#: Every wait of this process is bounded by this many seconds.
TIMEOUT = 120.0


def _reset_peak() -> bool:
    """Reset this process's peak RSS (Linux: "5" to /proc/self/clear_refs); False where
    that is not possible, and then the peak counts from the start (``ru_maxrss``)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


def _peak() -> int:
    """The peak RSS in KiB since the last reset (VmHWM)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")


def main(argv: List[str]) -> int:
    kubeconfig, namespace, selector, count = argv[0], argv[1], argv[2], int(argv[3])
    from kubesync import Api, Client, Config
    from kubesync.models.core_v1 import ConfigMap
    from kubesync.runtime.informer import subscribe_to
    from kubesync.runtime.reflector import start_reflector
    from kubesync.runtime.watcher import Apply, watcher_config

    # The imports are done (their peak, compiling modules without a .pyc, differs from
    # one checkout to the next): count the peak from here on.
    fresh_peak = _reset_peak()
    client = Client(Config.from_kubeconfig(kubeconfig))
    api = Api(client, ConfigMap, namespace=namespace)
    store = start_reflector(api, label_selector=selector)
    seen: Dict[str, str] = {}
    changed = threading.Condition()

    def heard(event: Any) -> None:
        # The informer applies an event to the store before handing it to consumers.
        if isinstance(event, Apply):
            meta = event.object.metadata
            with changed:
                seen[meta.name] = meta.resource_version
                changed.notify_all()

    # The reflector's own informer (shared): a consumer of it sees each change after
    # the store has it, without a second watch.
    sub = subscribe_to(api, watcher_config(None, label_selector=selector), heard)
    try:
        if not store.wait_until_ready(TIMEOUT) or len(store) != count:
            print(f"not synced: {len(store)} of {count}, {store.last_error!r}",
                  file=sys.stderr)
            return 1
        print("synced", flush=True)
        name, rv = sys.stdin.readline().split()
        with changed:
            if not changed.wait_for(lambda: seen.get(name) == rv, TIMEOUT):
                print(f"the store never saw {name} at {rv}", file=sys.stderr)
                return 1
        peak = _peak() if fresh_peak else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(json.dumps({"peak_rss_kib": peak, "objects": len(store)}), flush=True)
    finally:
        sub.stop()
        store.stop()
        client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
