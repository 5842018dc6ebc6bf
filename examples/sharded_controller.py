"""A controller sharded across replicas: run it several times, each reconciles its share.

Every replica holds a Lease of its own in the namespace; one of them, elected, labels each
ConfigMap for one replica (consistent hashing over the live ones), and each replica
watches, caches and reconciles only the ConfigMaps labelled for it. Kill a replica and
its ConfigMaps go to the others once its Lease expires; stop one with Ctrl-C or SIGTERM
and they go at once.

    python examples/sharded_controller.py --namespace demo --member a &
    python examples/sharded_controller.py --namespace demo --member b &
    python examples/sharded_controller.py --namespace demo --member c

``--log FILE`` appends one line per reconcile (member, start and end on the machine's
monotonic clock, namespace/name, objects in this replica's cache), which the sharding e2e
test reads to prove that no ConfigMap is ever reconciled by two replicas at once.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
import time
from typing import List, Optional

import attrs

from kubesync import Api, Client
from kubesync.models.core_v1 import ConfigMap
from kubesync.runtime import Action, Controller, Sharding
from kubesync.runtime.sharding import default_member_id

log = logging.getLogger("sharded")


@attrs.define
class Context:
    member: str
    controller: Optional[Controller[ConfigMap]] = None
    log_fd: Optional[int] = None
    work: float = 0.0
    requeue: Optional[float] = None
    lock: threading.Lock = attrs.field(factory=threading.Lock)


def reconcile(cm: ConfigMap, ctx: Context) -> Action:
    """Look at one ConfigMap of our shard (here: count its keys), and note the interval."""
    started = time.monotonic()  # CLOCK_MONOTONIC: one clock for all processes of a machine
    meta = cm.metadata
    assert meta is not None
    keys = len(cm.data or {})
    if ctx.work:
        time.sleep(ctx.work)  # stands for the real work a controller would do here
    ended = time.monotonic()
    owned = len(ctx.controller.store) if ctx.controller is not None else 0
    log.debug("%s/%s: %d keys", meta.namespace, meta.name, keys)
    if ctx.log_fd is not None:
        line = f"{ctx.member} {started:.6f} {ended:.6f} {meta.namespace}/{meta.name} {owned}\n"
        os.write(ctx.log_fd, line.encode())  # one O_APPEND write: lines never interleave
    if ctx.requeue:
        return Action.requeue(ctx.requeue)
    return Action.await_change()


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--namespace", required=True, help="the ConfigMaps' namespace")
    parser.add_argument("--lease-namespace", help="the Leases' (default: --namespace)")
    parser.add_argument("--name", default="sharded-configmaps",
                        help="the controller's name, the same in every replica")
    parser.add_argument("--member", help="this replica's id (default: hostname-pid)")
    parser.add_argument("--lease-duration", type=float, default=15.0)
    parser.add_argument("--renew-deadline", type=float, default=10.0)
    parser.add_argument("--retry-period", type=float, default=2.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--log", help="append a line per reconcile to this file")
    parser.add_argument("--work", type=float, default=0.0,
                        help="seconds each reconcile pretends to work")
    parser.add_argument("--requeue", type=float, help="reconcile each object this often")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    sharding = Sharding(name=args.name, namespace=args.lease_namespace or args.namespace,
                        lease_duration=args.lease_duration, renew_deadline=args.renew_deadline,
                        retry_period=args.retry_period,
                        member_id=args.member or default_member_id())
    ctx = Context(sharding.member_id, work=args.work, requeue=args.requeue)
    if args.log:
        ctx.log_fd = os.open(args.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    with Client.from_config() as client:
        ctl = Controller(Api(client, ConfigMap, namespace=args.namespace), sharding=sharding)
        ctx.controller = ctl
        print(f"replica {sharding.member_id} running; Ctrl-C or SIGTERM stops it", flush=True)
        ctl.run(reconcile, context=ctx, workers=args.workers)
        print(f"replica {sharding.member_id} stopped", flush=True)
    if ctx.log_fd is not None:
        os.close(ctx.log_fd)
    return 0


if __name__ == "__main__":
    sys.exit(main())
