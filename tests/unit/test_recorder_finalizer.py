"""Recorder (event series folding on a fake clock) and finalize() over fake Apis."""

from __future__ import annotations

import datetime as dt
from typing import Any, List, Optional, Tuple

import pytest

from kubesync.core.clock import FakeClock
from kubesync.core.dynamic import DynamicObject
from kubesync.core.params import Patch
from kubesync.errors import NotFound, ServerError, Status, UsageError
from kubesync.models.core_v1 import ConfigMap
from kubesync.models.meta_v1 import ObjectMeta
from kubesync.runtime.controller import Action
from kubesync.runtime.finalizer import finalize
from kubesync.runtime.recorder import SERIES_WINDOW, Recorder

START = dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)


class FakeEvents:
    """Records creates and patches; answers as the server would."""

    def __init__(self) -> None:
        self.created: List[dict] = []
        self.patched: List[Tuple[str, Any]] = []
        self.fail: Optional[Exception] = None
        self.gone = False

    def create(self, obj: DynamicObject) -> DynamicObject:
        if self.fail is not None:
            raise self.fail
        self.created.append(obj.to_dict())
        return obj

    def patch(self, name: str, patch: Patch) -> DynamicObject:
        if self.gone:
            raise NotFound(Status(code=404, reason="NotFound", message="expired"))
        self.patched.append((name, patch.body))
        return DynamicObject({"apiVersion": "events.k8s.io/v1", "kind": "Event",
                              "metadata": {"name": name}})


def recorder() -> Tuple[Recorder, FakeEvents, FakeClock]:
    clock = FakeClock(wall_start=START)
    rec = Recorder(object(), "ctl", "pod-1", clock=clock)  # type: ignore[arg-type]
    events = FakeEvents()
    rec._api_for = lambda ns: events
    return rec, events, clock


def cm(name: str = "cfg") -> ConfigMap:
    return ConfigMap(metadata=ObjectMeta(name=name, namespace="ns", uid="u1",
                                         resource_version="7"))


def test_an_event_is_stamped_with_the_clocks_wall_time_and_names_its_object() -> None:
    rec, events, _ = recorder()
    written = rec.publish(cm(), reason="Synced", action="Sync", note="ok")
    assert written is not None
    (ev,) = events.created
    assert ev["eventTime"] == "2030-01-02T03:04:05.000000Z"
    assert ev["metadata"]["namespace"] == "ns"
    assert ev["metadata"]["name"].startswith("cfg.")
    assert ev["regarding"] == {"apiVersion": "v1", "kind": "ConfigMap", "name": "cfg",
                               "namespace": "ns", "uid": "u1", "resourceVersion": "7"}
    assert (ev["reportingController"], ev["reportingInstance"]) == ("ctl", "pod-1")


def test_a_repeat_within_the_window_becomes_a_series_and_later_a_new_event() -> None:
    rec, events, clock = recorder()
    rec.publish(cm(), reason="Synced", action="Sync")
    clock.advance(60)
    rec.publish(cm(), reason="Synced", action="Sync")
    clock.advance(60)
    rec.publish(cm(), reason="Synced", action="Sync")
    assert len(events.created) == 1
    name = events.created[0]["metadata"]["name"]
    assert events.patched == [
        (name, {"series": {"count": 2, "lastObservedTime": "2030-01-02T03:05:05.000000Z"}}),
        (name, {"series": {"count": 3, "lastObservedTime": "2030-01-02T03:06:05.000000Z"}}),
    ]
    clock.advance(SERIES_WINDOW.total_seconds())  # past the window since the first one
    rec.publish(cm(), reason="Synced", action="Sync")
    assert len(events.created) == 2


def test_a_different_reason_is_a_different_event() -> None:
    rec, events, _ = recorder()
    rec.publish(cm(), reason="Synced", action="Sync")
    rec.publish(cm(), type="Warning", reason="Failed", action="Sync")
    assert [e["reason"] for e in events.created] == ["Synced", "Failed"]
    assert events.patched == []


def test_a_series_whose_first_event_expired_starts_over() -> None:
    rec, events, clock = recorder()
    rec.publish(cm(), reason="Synced", action="Sync")
    events.gone = True
    clock.advance(1)
    rec.publish(cm(), reason="Synced", action="Sync")
    assert len(events.created) == 2


def test_publishing_errors_are_logged_not_raised_and_the_type_is_checked() -> None:
    rec, events, _ = recorder()
    events.fail = ServerError(Status(code=500, message="boom"))
    assert rec.publish(cm(), reason="Synced", action="Sync") is None
    with pytest.raises(UsageError):
        rec.publish(cm(), type="Info", reason="Synced", action="Sync")


# -- finalizer -------------------------------------------------------------------------


class FakePatches:
    def __init__(self) -> None:
        self.patches: List[Tuple[str, Any]] = []

    def patch(self, name: str, patch: Patch) -> None:
        assert patch.content_type == "application/json-patch+json"
        self.patches.append((name, patch.body))


def obj(finalizers: Optional[List[str]] = None, deleting: bool = False) -> ConfigMap:
    return ConfigMap(metadata=ObjectMeta(
        name="cfg", namespace="ns", resource_version="7", finalizers=finalizers,
        deletion_timestamp=START if deleting else None))


def test_the_finalizer_is_added_first_guarded_by_the_resource_version() -> None:
    api, calls = FakePatches(), []
    result = finalize(api, "x.io/cleanup", obj(),  # type: ignore[arg-type]
                       apply=lambda o: calls.append("apply"),  # type: ignore[func-returns-value]
                       cleanup=lambda o: calls.append("cleanup"))  # type: ignore[func-returns-value]
    assert result == Action.await_change() and calls == []
    assert api.patches == [("cfg", [
        {"op": "test", "path": "/metadata/resourceVersion", "value": "7"},
        {"op": "add", "path": "/metadata/finalizers", "value": ["x.io/cleanup"]},
    ])]


def test_the_finalizer_is_appended_to_others_guarded_by_the_list() -> None:
    api = FakePatches()
    finalize(api, "x.io/cleanup", obj(["other"]),  # type: ignore[arg-type]
              apply=lambda o: None, cleanup=lambda o: None)
    assert api.patches == [("cfg", [
        {"op": "test", "path": "/metadata/finalizers", "value": ["other"]},
        {"op": "add", "path": "/metadata/finalizers/-", "value": "x.io/cleanup"},
    ])]


def test_a_live_object_with_the_finalizer_is_applied() -> None:
    api = FakePatches()
    again = Action.requeue(5)
    result = finalize(api, "x.io/cleanup", obj(["x.io/cleanup"]),  # type: ignore[arg-type]
                       apply=lambda o: again, cleanup=lambda o: None)
    assert result is again and api.patches == []


def test_a_deleted_object_is_cleaned_up_then_its_finalizer_removed_by_index() -> None:
    api, calls = FakePatches(), []

    def cleanup(o: Any) -> Action:
        calls.append(len(api.patches))  # before the removal
        return Action.await_change()

    finalize(api, "x.io/cleanup", obj(["other", "x.io/cleanup"], deleting=True),  # type: ignore[arg-type]
              apply=lambda o: None, cleanup=cleanup)
    assert calls == [0]
    assert api.patches == [("cfg", [
        {"op": "test", "path": "/metadata/finalizers/1", "value": "x.io/cleanup"},
        {"op": "remove", "path": "/metadata/finalizers/1"},
    ])]


def test_a_deleted_object_without_our_finalizer_is_left_to_others() -> None:
    api = FakePatches()
    result = finalize(api, "x.io/cleanup", obj(["other"], deleting=True),  # type: ignore[arg-type]
                       apply=lambda o: None, cleanup=lambda o: pytest.fail("cleanup ran"))
    assert result == Action.await_change() and api.patches == []
