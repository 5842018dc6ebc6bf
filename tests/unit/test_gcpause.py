"""The counted, process-wide pause of the cyclic garbage collector."""

from __future__ import annotations

import gc
import threading
from typing import Iterator

import pytest

from kubesync.client.gcpause import gc_paused


@pytest.fixture(autouse=True)
def _gc_on() -> Iterator[None]:
    was = gc.isenabled()
    gc.enable()
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
