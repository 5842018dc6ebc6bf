"""WorkQueue priorities and debounced adds: order, moves up, and the client-go guarantees
kept under them (one waiting entry per key, none handed out twice, re-queue after done)."""

from __future__ import annotations

from kubesync.core.clock import FakeClock
from kubesync.runtime.queue import PRIORITY_LOW, PRIORITY_NORMAL, WorkQueue
from tests.unit.test_queue import drain_ready as drain


def test_higher_priority_keys_are_handed_out_first_and_fifo_within_a_priority() -> None:
    q: WorkQueue[str] = WorkQueue(clock=FakeClock())
    for key in ("l1", "l2", "l3"):
        q.add(key, PRIORITY_LOW)
    q.add("n1")
    q.add("n2", PRIORITY_NORMAL)
    q.add("hi", 10)
    assert drain(q) == ["hi", "n1", "n2", "l1", "l2", "l3"]


def test_a_waiting_key_moves_up_and_never_down_and_is_queued_once() -> None:
    q: WorkQueue[str] = WorkQueue(clock=FakeClock())
    for key in ("a", "b", "c"):
        q.add(key, PRIORITY_LOW)
    q.add("c")  # a live change for a key of the initial list: it goes first
    q.add("a", PRIORITY_LOW - 5)  # a lower add leaves "a" where it was
    assert len(q) == 3
    assert drain(q) == ["c", "a", "b"]


def test_a_handed_out_key_keeps_its_priority_and_an_add_meanwhile_reruns_at_the_highest() -> None:
    q: WorkQueue[str] = WorkQueue(clock=FakeClock())
    q.add("a", PRIORITY_LOW)
    q.add("b", PRIORITY_LOW)
    item = q.get(timeout=0)
    assert (item.key, item.priority) == ("a", PRIORITY_LOW)
    q.add("a", PRIORITY_LOW)
    q.add("a")  # a live change while "a" is processed
    assert len(q) == 1, "a key being processed is not handed out again"
    with item:
        pass
    again = q.get(timeout=0)
    assert (again.key, again.priority) == ("a", PRIORITY_NORMAL)  # before "b"
    with again:
        pass
    assert drain(q) == ["b"]


def test_moving_keys_up_keeps_the_heap_within_twice_the_waiting_keys() -> None:
    q: WorkQueue[int] = WorkQueue(clock=FakeClock())
    for i in range(1000):
        q.add(i, PRIORITY_LOW)
    for p in range(5):
        for i in range(1000):
            q.add(i, PRIORITY_LOW + p + 1)
        assert len(q._ready) <= 2 * len(q) + 64
    assert drain(q) == list(range(1000))


def test_delayed_and_rate_limited_adds_keep_their_priority() -> None:
    clock = FakeClock()
    q: WorkQueue[str] = WorkQueue(clock=clock)
    q.add_after("low", 1.0, PRIORITY_LOW)
    q.add_after("live", 2.0)
    q.add_rate_limited("retry", 5)
    clock.advance(3.0)
    assert drain(q) == ["retry", "live", "low"]


def test_two_delays_merge_to_the_earlier_deadline_and_the_higher_priority() -> None:
    clock = FakeClock()
    q: WorkQueue[str] = WorkQueue(clock=clock)
    q.add_after("a", 1.0, PRIORITY_LOW)
    q.add_after("a", 5.0, PRIORITY_NORMAL)
    q.add("b", PRIORITY_LOW)
    clock.advance(1.0)
    assert drain(q) == ["a", "b"]
    assert q.delayed == 0
    clock.advance(10.0)
    assert drain(q) == [], "the merged delay must not add the key twice"


def test_a_burst_of_debounced_adds_hands_the_key_out_once_a_window_after_the_first() -> None:
    clock = FakeClock()
    q: WorkQueue[str] = WorkQueue(clock=clock)
    for _ in range(5):
        q.add_debounced("a", 2.0)
        clock.advance(0.3)
    assert drain(q) == [], "nothing before the window has passed"
    clock.advance(2.0 - 1.5)  # exactly the window after the first add: bounded delay
    assert drain(q) == ["a"]
    clock.advance(10.0)
    assert drain(q) == [] and q.delayed == 0


def test_a_debounced_add_of_a_waiting_key_adds_no_delay_and_moves_it_up() -> None:
    clock = FakeClock()
    q: WorkQueue[str] = WorkQueue(clock=clock)
    q.add("a", PRIORITY_LOW)
    q.add("b", PRIORITY_LOW)
    q.add_debounced("b", 2.0)
    assert q.delayed == 0
    assert drain(q) == ["b", "a"]


def test_a_debounced_add_while_the_key_is_processed_runs_it_once_after_the_window() -> None:
    clock = FakeClock()
    q: WorkQueue[str] = WorkQueue(clock=clock)
    q.add("a")
    item = q.get(timeout=0)
    q.add_debounced("a", 2.0)
    q.add_debounced("a", 2.0)
    with item:
        pass
    assert drain(q) == []
    clock.advance(2.0)
    assert drain(q) == ["a"]
    assert drain(q) == []


def test_shutdown_drops_keys_of_every_priority() -> None:
    q: WorkQueue[str] = WorkQueue(clock=FakeClock())
    q.add("a", PRIORITY_LOW)
    q.add("b")
    q.add_debounced("c", 1.0)
    q.shutdown()
    assert len(q) == 0 and q.delayed == 0
    q.add("d")
    assert len(q) == 0


def test_cancel_earlier_delays_drops_a_requeue_from_before_the_run_and_keeps_one_since() -> None:
    clock = FakeClock()
    q: WorkQueue[str] = WorkQueue(clock=clock)
    q.add_after("a", 60.0)  # an earlier run asked to be requeued in a minute
    q.add("a")
    with q.get(timeout=0):
        assert q.cancel_earlier_delays("a")
        assert q.delayed == 0
        q.add_debounced("a", 1.0)  # a change during this run
        assert not q.cancel_earlier_delays("a")
    clock.advance(1.0)
    assert drain(q) == ["a"], "the change made during the run stands"
    clock.advance(100.0)
    assert drain(q) == [], "the cancelled requeue never fires"
    q.add_after("b", 5.0)
    assert q.cancel_earlier_delays("b") and not q.cancel_earlier_delays("b")


def test_cancelled_delays_do_not_grow_the_heap_without_bound() -> None:
    q: WorkQueue[int] = WorkQueue(clock=FakeClock())
    for i in range(1000):
        q.add_after(i, 10.0)
        q.cancel_earlier_delays(i)
    assert q.delayed == 0
    assert len(q._heap) <= 64
