"""The watcher, reflector and Store against the real server, through restarts and 410s."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Dict, Optional, Set, Tuple

import pytest

from kubesync import Api
from kubesync.core.backoff import ExponentialBackoff
from kubesync.core.params import Patch
from kubesync.models.core_v1 import ConfigMap
from kubesync.models.meta_v1 import ObjectMeta
from kubesync.runtime.conditions import is_deleted
from kubesync.runtime.reflector import start_reflector
from kubesync.runtime.store import Store, StoreWriter
from kubesync.runtime.wait import await_condition
from kubesync.runtime.watcher import Apply, InitDone, Watcher, WatcherConfig, watch
from tests.helpers import eventually

pytestmark = pytest.mark.e2e


def cm(name: str, value: str = "0") -> ConfigMap:
    return ConfigMap(metadata=ObjectMeta(name=name), data={"v": value})


def _server_state(api: Api[ConfigMap]) -> Set[Tuple[str, str]]:
    return {(o.metadata.name, o.metadata.resource_version) for o in api.list_all()}


def _store_state(store: Store[ConfigMap]) -> Set[Tuple[str, str]]:
    return {(o.metadata.name, o.metadata.resource_version) for o in store.list()}


def _assert_store_matches(store: Store[ConfigMap], api: Api[ConfigMap]) -> None:
    eventually(lambda: _store_state(store) == _server_state(api), what="store == server")


class _Reflector:
    """A watcher feeding a store, whose error hook can hold the thread (to make changes
    while it is disconnected)."""

    def __init__(self, api: Api[ConfigMap]):
        self.writer: StoreWriter[ConfigMap] = StoreWriter()
        self.hold = threading.Event()
        self.held = threading.Event()
        self.release = threading.Event()
        self.errors: list = []
        self.relists = 0
        self.w: Watcher[ConfigMap] = Watcher(
            api, WatcherConfig(), sink=self._sink, on_error=self._on_error,
            backoff=ExponentialBackoff(0.05, 0.5),
        )

    def _sink(self, ev: Any) -> None:
        if isinstance(ev, InitDone):
            self.relists += 1
        self.writer.apply_event(ev)

    def _on_error(self, e: BaseException) -> None:
        self.errors.append(e)
        if self.hold.is_set():
            self.held.set()
            self.release.wait(60)

    @property
    def store(self) -> Store[ConfigMap]:
        return self.writer.store


@pytest.fixture
def reflected(cms: Api[ConfigMap]) -> Any:
    before = set(threading.enumerate())
    r = _Reflector(cms)
    r.w.start()
    assert r.store.wait_until_ready(30)
    yield r
    r.release.set()
    r.w.stop()
    assert not r.w.running
    # No thread of this test outlives it (others, e.g. an earlier test's, may end meanwhile).
    assert not [t for t in set(threading.enumerate()) - before if t.is_alive()]


def test_store_follows_creates_changes_and_deletes(cms: Api[ConfigMap], reflected: Any) -> None:
    for i in range(5):
        cms.create(cm(f"c{i}"))
    cms.patch("c1", Patch.merge({"data": {"v": "1"}}))
    cms.delete("c2")
    _assert_store_matches(reflected.store, cms)


def test_store_matches_after_an_apiserver_restart_mid_watch(
    cms: Api[ConfigMap], reflected: Any, kube_local_cluster: Any
) -> None:
    for i in range(3):
        cms.create(cm(f"r{i}"))
    _assert_store_matches(reflected.store, cms)
    kube_local_cluster.restart_apiserver()
    cms.create(cm("after-restart"))
    cms.patch("r0", Patch.merge({"data": {"v": "changed"}}))
    _assert_store_matches(reflected.store, cms)


def test_store_matches_after_changes_made_while_disconnected(
    cms: Api[ConfigMap], reflected: Any, kube_local_cluster: Any
) -> None:
    for i in range(4):
        cms.create(cm(f"d{i}"))
    _assert_store_matches(reflected.store, cms)
    reflected.hold.set()
    kube_local_cluster.stop_apiserver()
    assert reflected.held.wait(60), "the watcher never noticed the server going"
    kube_local_cluster.start_apiserver()
    # The watcher is held in its error hook: it sees none of this as it happens.
    cms.create(cm("born-while-down"))
    cms.patch("d1", Patch.merge({"data": {"v": "changed-while-down"}}))
    cms.delete("d2")
    cms.delete("d3")
    reflected.hold.clear()
    reflected.release.set()
    _assert_store_matches(reflected.store, cms)
    assert reflected.store.get("d2", cms.namespace) is None


def test_store_matches_after_a_compaction_forces_410(
    cms: Api[ConfigMap], reflected: Any, kube_local_cluster: Any
) -> None:
    for i in range(3):
        cms.create(cm(f"g{i}"))
    _assert_store_matches(reflected.store, cms)
    relists = reflected.relists
    reflected.hold.set()
    kube_local_cluster.stop_apiserver()
    assert reflected.held.wait(60)
    kube_local_cluster.start_apiserver()
    cms.delete("g0")
    cms.create(cm("g-new"))
    kube_local_cluster.compact()
    reflected.hold.clear()
    reflected.release.set()
    _assert_store_matches(reflected.store, cms)
    assert reflected.relists > relists  # it had to relist: its rv was compacted away


def test_1000_rapid_updates_of_one_object_end_in_its_last_state(
    cms: Api[ConfigMap], reflected: Any
) -> None:
    cms.create(cm("hot"))
    for i in range(1000):
        cms.patch("hot", Patch.merge({"data": {"v": str(i)}}))
    _assert_store_matches(reflected.store, cms)
    assert reflected.store.get("hot", cms.namespace).data == {"v": "999"}


def test_1000_objects_created_at_once_all_arrive(cms: Api[ConfigMap], reflected: Any) -> None:
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: cms.create(cm(f"bulk-{i:04d}")), range(1000)))
    _assert_store_matches(reflected.store, cms)
    # Besides them, only what the cluster puts in every namespace (kube-root-ca.crt).
    bulk = [c for c in reflected.store.list() if c.metadata.name.startswith("bulk-")]
    assert len(bulk) == 1000


def test_a_consumer_that_stops_reading_does_not_grow_memory(cms: Api[ConfigMap]) -> None:
    cms.create(cm("flood"))
    w = watch(cms, queue_size=16)
    with w:
        first = w.next_event(timeout=30)  # Init: the thread is running
        assert first is not None
        for i in range(300):
            cms.patch("flood", Patch.merge({"data": {"v": str(i)}}))
        eventually(lambda: w._queue.full(), what="queue full")
        assert w._queue.qsize() <= 16
        # Reading again drains the backlog in order, nothing lost in between.
        last: Optional[str] = None
        while last != "299":
            ev = w.next_event(timeout=30)
            assert ev is not None
            # (the cluster may add kube-root-ca.crt to the namespace meanwhile)
            if isinstance(ev, Apply) and ev.object.metadata.name == "flood":
                last = ev.object.data["v"]


def test_stop_brings_the_thread_count_back(cms: Api[ConfigMap]) -> None:
    before = {t.name for t in threading.enumerate()}
    w = watch(cms)
    with w:
        assert w.next_event(timeout=30) is not None
        assert w.name in {t.name for t in threading.enumerate()}
    assert {t.name for t in threading.enumerate()} == before


def test_background_reflector_for_web_apps(cms: Api[ConfigMap]) -> None:
    cms.create(cm("bg"))
    store = start_reflector(cms)
    try:
        assert store.wait_until_ready(30)
        assert store.get("bg", cms.namespace) is not None
        store.add_index("value", lambda o: [o.data.get("v")])
        cms.patch("bg", Patch.merge({"data": {"v": "7"}}))
        eventually(lambda: [o.metadata.name for o in store.by_index("value", "7")] == ["bg"])
    finally:
        store.stop()


def test_metadata_only_watching(cms: Api[ConfigMap]) -> None:
    cms.create(cm("meta"))
    w = watch(cms, metadata_only=True)
    with w:
        seen: Dict[str, Any] = {}
        while True:
            ev = w.next_event(timeout=30)
            assert ev is not None
            if isinstance(ev, InitDone):
                break
            if hasattr(ev, "object"):
                seen[ev.object.metadata.name] = ev.object
    assert type(seen["meta"]).__name__ == "PartialObjectMetadata"


def test_await_condition_deleted(cms: Api[ConfigMap]) -> None:
    created = cms.create(cm("bye"))
    done = threading.Event()
    result: list = []

    def wait() -> None:
        result.append(await_condition(cms, "bye", is_deleted(created.metadata.uid), timeout=30))
        done.set()

    t = threading.Thread(target=wait, name="waiter")
    t.start()
    cms.delete("bye")
    assert done.wait(30)
    t.join(5)
    assert result == [None]
