"""The one CRD wait (wait_established, install, uninstall) over a faked server, on a fake
clock: no watch, no thread, no real waiting."""

from __future__ import annotations

from typing import Any, Dict, List, Optional

import pytest

from kubesync.core.clock import FakeClock
from kubesync.core.convert import decode
from kubesync.core.request import Request
from kubesync.crd.install import (
    CrdNotAccepted,
    CrdNotEstablished,
    CrdWaitTimeout,
    uninstall,
    wait_established,
)
from kubesync.errors import NotFound, Status
from kubesync.models.apiextensions_v1 import CustomResourceDefinition

NAME = "widgets.example.com"
PATH = f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{NAME}"


def crd(uid: str = "u1", **conditions: str) -> Dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": NAME, "uid": uid},
        "spec": {"group": "example.com", "scope": "Namespaced", "versions": [],
                 "names": {"kind": "Widget", "plural": "widgets"}},
        "status": {"conditions": [
            {"type": t, "status": s, "reason": f"{t}Reason", "message": f"{t} is {s}"}
            for t, s in conditions.items()]},
    }


class FakeClient:
    """GETs answer from ``answers`` in turn (the last repeats; None is a 404)."""

    default_namespace = "default"

    def __init__(self, answers: List[Optional[Dict[str, Any]]]):
        self.answers = answers
        self.gets = 0
        self.deletes = 0

    def request(self, method: str, path: str, **kw: Any) -> Any:
        assert path == PATH, path
        if method == "DELETE":
            self.deletes += 1
            return {"kind": "Status", "apiVersion": "v1", "status": "Success"}
        assert method == "GET"
        self.gets += 1
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if answer is None:
            raise NotFound(Status(code=404, reason="NotFound", message="not yet"))
        return answer

    def send(self, req: Request, **kw: Any) -> Any:
        return self.request(req.method, req.path, params=dict(req.query) or None, body=req.body)


def test_waits_until_established_backing_off_on_the_clock() -> None:
    client, clock = FakeClient([None, crd(), crd(NamesAccepted="True"),
                                crd(NamesAccepted="True", Established="True")]), FakeClock()
    got = wait_established(client, NAME, timeout=60, clock=clock)  # type: ignore[arg-type]
    assert got.metadata is not None and got.metadata.name == NAME
    assert client.gets == 4
    assert clock.sleeps == 3
    assert clock.monotonic() == pytest.approx(0.05 + 0.1 + 0.2)  # CRD_WAIT: 50 ms doubling


def test_refused_names_raise_at_once() -> None:
    client, clock = FakeClient([crd(NamesAccepted="False")]), FakeClock()
    with pytest.raises(CrdNotAccepted, match=r"names not accepted.*NamesAccepted is False"):
        wait_established(client, NAME, timeout=60, clock=clock)  # type: ignore[arg-type]
    assert clock.sleeps == 0


def test_a_crd_never_established_times_out_at_the_deadline() -> None:
    client, clock = FakeClient([crd(NamesAccepted="True")]), FakeClock()
    with pytest.raises(CrdWaitTimeout, match=f"CRD {NAME}: not Established within 5s") as info:
        wait_established(client, NAME, timeout=5, clock=clock)  # type: ignore[arg-type]
    assert clock.monotonic() == pytest.approx(5.0)  # the last wait is cut to the deadline
    err = info.value
    assert isinstance(err, CrdNotEstablished) and isinstance(err, TimeoutError)
    assert err.name == NAME


def test_uninstall_waits_until_the_crd_is_gone() -> None:
    client, clock = FakeClient([crd(), crd(), crd(), None]), FakeClock()
    target = decode(CustomResourceDefinition, crd())
    uninstall(client, target, timeout=60, clock=clock)  # type: ignore[arg-type]
    assert client.deletes == 1
    assert client.gets == 4  # the first read, then polls until the 404


def test_uninstall_of_a_crd_that_stays_times_out() -> None:
    client, clock = FakeClient([crd()]), FakeClock()
    target = decode(CustomResourceDefinition, crd())
    with pytest.raises(CrdWaitTimeout, match="not deleted"):
        uninstall(client, target, timeout=3, clock=clock)  # type: ignore[arg-type]
