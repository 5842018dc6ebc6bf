"""Workload 4: a controller's no-op reconciles per second, and the work queue's own cost.

Controller: ``Controller(api).start(reconcile, workers=8)`` over the seeded ConfigMaps;
after its first pass, each run queues every object again (``reconcile_all()``) and is timed
until as many no-op reconciles have finished. In-process rows move the same number of
keys through the queue alone (add all, then 8 threads take and finish them; and one
thread), against the standard library's ``queue.Queue`` doing the same.
"""

from __future__ import annotations

import itertools
import queue
import threading
import time
from typing import Any, Callable, List

from bench.env import Env
from bench.measure import HIGHER, Target, Variant, WorkloadResult, run_variants

NAME = "controller"
KUBESYNC = "kubesync Controller, 8 workers"
STDLIB = "stdlib queue.Queue, 8 threads"
WORKERS = 8
PASS_TIMEOUT = 300.0


def _controller(env: Env, workers: int) -> Variant:
    from kubesync import Api
    from kubesync.models.core_v1 import ConfigMap
    from kubesync.runtime.controller import Action, Controller

    want = env.list_count
    client = env.kubesync_client()
    counter = itertools.count(1)
    state = {"goal": want, "done": threading.Event()}
    await_change = Action.await_change()

    def reconcile(obj: Any, ctx: Any) -> Action:
        # itertools.count's next() is atomic under the GIL: no lock of our own needed.
        if next(counter) == state["goal"]:
            state["done"].set()  # type: ignore[attr-defined]
        return await_change

    ctl: Any = Controller(Api(client, ConfigMap, namespace=env.list_ns))
    ctl.start(reconcile, workers=workers)
    if not state["done"].wait(PASS_TIMEOUT):  # type: ignore[attr-defined]
        ctl.stop(5)
        raise TimeoutError("the controller's first pass did not finish")

    def one_pass() -> float:
        done = threading.Event()
        state["done"] = done
        state["goal"] = state["goal"] + want  # type: ignore[operator]
        started = time.perf_counter()
        ctl.reconcile_all()
        if not done.wait(PASS_TIMEOUT):
            raise TimeoutError("a reconcile pass did not finish")
        return want / (time.perf_counter() - started)

    def close() -> None:
        ctl.stop(10)
        client.close()

    name = KUBESYNC if workers == WORKERS else f"kubesync Controller, {workers} worker"
    return Variant(name, one_pass, close=close)


def _drain(take: Callable[[], Any], finish: Callable[[Any], None], threads: int,
           n: int) -> None:
    left = itertools.count(n - 1, -1)  # each taker claims one of the n items first

    def worker() -> None:
        while next(left) >= 0:
            finish(take())

    ts = [threading.Thread(target=worker, name=f"bench-queue-{i}") for i in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(PASS_TIMEOUT)


def _workqueue(n: int, threads: int) -> Variant:
    from kubesync.runtime.queue import WorkQueue

    def one() -> float:
        q: WorkQueue[int] = WorkQueue("bench")
        started = time.perf_counter()
        for i in range(n):
            q.add(i)
        _drain(lambda: q.get_key(timeout=PASS_TIMEOUT), q.done, threads, n)
        took = time.perf_counter() - started
        q.shutdown()
        return n / took

    name = f"kubesync WorkQueue, {threads} thread{'s' if threads > 1 else ''}"
    return Variant(name, one, note="add + get_key + done per key, in-process")


def _stdlib(n: int, threads: int) -> Variant:
    def one() -> float:
        q: queue.Queue[int] = queue.Queue()
        started = time.perf_counter()
        for i in range(n):
            q.put(i)
        _drain(lambda: q.get(timeout=PASS_TIMEOUT), lambda _: q.task_done(), threads, n)
        return n / (time.perf_counter() - started)

    name = STDLIB if threads == WORKERS else "stdlib queue.Queue, 1 thread"
    return Variant(name, one, note="put + get + task_done per item, in-process")


def variants(env: Env) -> List[Variant]:
    n = env.list_count
    return [
        _controller(env, WORKERS),
        _controller(env, 1),
        _workqueue(n, WORKERS),
        _workqueue(n, 1),
        _stdlib(n, WORKERS),
        _stdlib(n, 1),
        Variant("kubernetes / lightkube / kr8s", na="no controller runtime or work queue"),
    ]


def run(env: Env, runs: int) -> WorkloadResult:
    return WorkloadResult(
        name=NAME,
        title=f"Controller: no-op reconciles/s over {env.list_count} objects; queue overhead",
        unit="items/s",
        better=HIGHER,
        baseline=STDLIB,
        measurements=run_variants(variants(env), runs),
        targets=[Target(KUBESYNC, None, 5000.0, ">= 5000/s")],
        notes=["Per-item overhead is 1e6 / (items/s) microseconds. The controller rows "
               "include its store lookup, metrics, and the queue's forget per reconcile."],
    )
