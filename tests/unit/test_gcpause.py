"""The counted, process-wide pause of the cyclic garbage collector."""

from __future__ import annotations

import gc
import threading
from typing import Iterator

import pytest

from kubesync.client import gcpause
from kubesync.client.gcpause import gc_paused, promote_young
from kubesync.core.lazy import decode
from kubesync.models.core_v1 import ConfigMap
from kubesync.runtime.store import StoreWriter
from kubesync.runtime.watcher import Apply, Delete, Init, InitApply, InitDone


@pytest.fixture(autouse=True)
def _gc_on(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    was = gc.isenabled()
    gc.enable()
    monkeypatch.setattr(gcpause, "_app_froze", False)  # a test that froze objects sets it
    yield
    if not was:
        gc.disable()


def test_the_collector_is_off_inside_and_back_on_after() -> None:
    with gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_nested_pauses_end_with_the_outermost() -> None:
    with gc_paused():
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()


def test_an_exception_still_restores_the_collector() -> None:
    with pytest.raises(RuntimeError), gc_paused():
        raise RuntimeError("boom")
    assert gc.isenabled()


def test_a_collector_the_user_disabled_stays_disabled() -> None:
    gc.disable()
    with gc_paused():
        assert not gc.isenabled()
    assert not gc.isenabled()


def test_overlapping_pauses_in_threads_end_when_the_last_one_does() -> None:
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    seen = []

    def first() -> None:
        with gc_paused():
            first_in.set()
            second_in.wait(10)
        first_out.set()

    def second() -> None:
        first_in.wait(10)
        with gc_paused():
            second_in.set()
            first_out.wait(10)
            seen.append(gc.isenabled())  # the first ended; ours still holds the pause

    threads = [threading.Thread(target=f, name=f.__name__) for f in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert seen == [False]
    assert gc.isenabled()


def _in_young_generations(obj: object) -> bool:
    return any(o is obj for g in (0, 1) for o in gc.get_objects(generation=g))


def test_what_a_long_pause_allocated_is_promoted_to_the_oldest_generation() -> None:
    gc.collect()
    with gc_paused():
        body = [{"item": [i]} for i in range(5000)]  # as a decoded LIST: many young dicts
    # The next collections walk young objects only, and these are no longer among them.
    assert gc.get_count()[0] < 700
    assert not _in_young_generations(body[0])
    assert any(o is body[0] for o in gc.get_objects(generation=2))


def test_a_short_pause_leaves_young_objects_young() -> None:
    gc.collect()
    with gc_paused():
        small = [{"item": [i]} for i in range(10)]
    assert _in_young_generations(small[0])


def test_objects_the_program_froze_stay_frozen() -> None:
    gc.collect()
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        with gc_paused():
            body = [{"item": [i]} for i in range(5000)]
        # Frozen objects of finished threads may be freed meanwhile, so the count can
        # only drop a little; an unfreeze (ours) would have taken it to zero.
        assert frozen // 2 < gc.get_freeze_count() <= frozen
        assert _in_young_generations(body[0])  # not promoted: that would unfreeze
    finally:
        gc.unfreeze()


def test_a_collector_disabled_by_the_user_promotes_nothing() -> None:
    gc.collect()
    gc.disable()
    with gc_paused():
        body = [{"item": [i]} for i in range(5000)]
    assert _in_young_generations(body[0])


def test_a_child_forked_during_another_threads_pause_has_the_collector_back() -> None:
    from tests.unit.test_fork import in_child

    inside, leave = threading.Event(), threading.Event()

    def pausing() -> None:
        with gc_paused():
            inside.set()
            leave.wait(30)

    t = threading.Thread(target=pausing, name="test-gc-pauser")
    t.start()
    try:
        assert inside.wait(10)
        assert not gc.isenabled()

        def child() -> None:
            assert gc.isenabled()  # the pausing thread is not here to end its pause
            with gc_paused():  # and the pause's lock is free
                assert not gc.isenabled()
            assert gc.isenabled()

        in_child(child)
        assert not gc.isenabled()  # the parent's pause is its own
    finally:
        leave.set()
        t.join(10)
    assert gc.isenabled()


def _config_map(i: int) -> ConfigMap:
    return decode(ConfigMap, {"metadata": {"name": f"cm-{i}", "namespace": "ns",
                                           "labels": {"i": str(i)}},
                              "data": {"k": "v"}})


class _Collections:
    """Counts the cyclic collections that run, per generation."""

    def __init__(self) -> None:
        self.by_generation = [0, 0, 0]

    def __call__(self, phase: str, info: dict) -> None:
        if phase == "start":
            self.by_generation[info["generation"]] += 1

    def __enter__(self) -> _Collections:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self)


def test_a_store_filled_by_a_list_is_not_walked_by_young_collections() -> None:
    writer: StoreWriter[ConfigMap] = StoreWriter()
    assert _config_map(-1).metadata.name == "cm--1"  # classes built before counting
    gc.collect()
    with _Collections() as seen:
        writer.apply_event(Init())
        for i in range(5000):
            writer.apply_event(InitApply(_config_map(i)))
        writer.apply_event(InitDone("1"))
    assert seen.by_generation == [0, 0, 0]
    first = writer.store.get("cm-0", namespace="ns")
    assert first is not None and any(o is first for o in gc.get_objects(generation=2))
    assert gc.isenabled()


def test_a_store_growing_while_watching_is_not_walked_by_young_collections() -> None:
    writer: StoreWriter[ConfigMap] = StoreWriter()
    writer.apply_event(Init())
    writer.apply_event(InitDone("1"))
    assert _config_map(-1).metadata.name == "cm--1"
    gc.collect()
    with _Collections() as seen:
        for i in range(5000):
            writer.apply_event(Apply(_config_map(i)))
    assert seen.by_generation == [0, 0, 0]


def test_churn_at_a_size_the_store_had_leaves_the_collector_as_it_is() -> None:
    # A store of short-lived objects (Events: created, expired) may churn for ever: young
    # collections run as usual there, or cyclic garbage elsewhere in the process would wait.
    writer: StoreWriter[ConfigMap] = StoreWriter()
    writer.apply_event(Init())
    for i in range(100):
        writer.apply_event(InitApply(_config_map(i)))
    writer.apply_event(InitDone("1"))
    elsewhere = []  # what the rest of the program allocates meanwhile
    gc.collect()
    with _Collections() as seen:
        for i in range(100, 5100):
            writer.apply_event(Delete(_config_map(i - 100)))
            writer.apply_event(Apply(_config_map(i)))
            elsewhere.append({"i": [i]})
    assert len(writer.store) == 100
    # Two young objects each: a young collection per threshold/2 of them, give or take.
    assert seen.by_generation[0] >= len(elsewhere) // gc.get_threshold()[0]


def test_promote_young_waits_until_a_young_collection_is_near() -> None:
    gc.collect()
    few = [{"item": [i]} for i in range(10)]
    promote_young()
    assert _in_young_generations(few[0])
    many = [{"item": [i]} for i in range(int(gc.get_threshold()[0] * 0.4))]  # 2 each
    promote_young()
    assert not _in_young_generations(many[0])
    assert gc.get_count()[0] < 10


def test_promote_young_keeps_what_the_program_froze_frozen() -> None:
    gc.collect()
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        objs = []
        for i in range(2000):
            objs.append({"item": [i]})
            promote_young()
        assert frozen // 2 < gc.get_freeze_count() <= frozen
        assert _in_young_generations(objs[-1])
    finally:
        gc.unfreeze()
