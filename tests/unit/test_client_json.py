"""kubesync.core.json: orjson when present, the standard library otherwise, alike."""

from __future__ import annotations

import builtins
import datetime
import importlib
from types import ModuleType
from typing import Any, Iterator

import pytest

import kubesync.core.json as kjson


@pytest.fixture(params=["orjson", "json"])
def backend(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ModuleType]:
    if request.param == "json":
        real_import = builtins.__import__

        def no_orjson(name: str, *args: Any, **kwargs: Any) -> Any:
            if name == "orjson":
                raise ImportError("hidden for this test")
            return real_import(name, *args, **kwargs)

        monkeypatch.setattr(builtins, "__import__", no_orjson)
    module = importlib.reload(kjson)
    assert module.BACKEND == request.param
    yield module
    monkeypatch.undo()
    importlib.reload(kjson)


def test_round_trip_is_compact_utf8(backend: ModuleType) -> None:
    obj = {"metadata": {"name": "é", "labels": {"a": "b"}}, "items": [1, 2.5, True, None]}
    data = backend.dumps(obj)
    assert data == '{"metadata":{"name":"é","labels":{"a":"b"}},"items":[1,2.5,true,null]}'.encode()
    assert backend.loads(data) == obj and backend.loads(data.decode()) == obj


def test_bad_input_raises_value_error(backend: ModuleType) -> None:
    with pytest.raises(ValueError):
        backend.loads(b"{not json")


def test_values_without_a_json_form_raise_type_error(backend: ModuleType) -> None:
    with pytest.raises(TypeError):
        backend.dumps({"when": datetime.datetime(2024, 1, 1)})
