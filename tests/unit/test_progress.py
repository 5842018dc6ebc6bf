"""The progress line: off where nobody watches, text on a TTY, HTML in Jupyter."""

from __future__ import annotations

import io
import sys
import types
from typing import Any, List

import pytest

from kubesync.display import progress
from kubesync.display.progress import Progress, display_mode

from .runtime_fakes import FakeApi, event, obj, page


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_off_by_default_without_a_tty_or_ipython(clock: Clock):
    out = io.StringIO()
    assert display_mode(None, out) is None
    with Progress("Listing", stream=out, clock=clock) as bar:
        clock.now += 10
        bar.update(5)
    assert out.getvalue() == "" and not bar.shown


def test_enabled_false_is_off_even_on_a_tty(clock: Clock):
    out = Tty()
    with Progress("Listing", stream=out, clock=clock, enabled=False) as bar:
        clock.now += 10
        bar.update(5)
    assert out.getvalue() == ""


def test_on_a_tty_the_line_is_rewritten_in_place_after_a_delay(clock: Clock):
    out = Tty()
    bar = Progress("Listing pods", stream=out, clock=clock, unit="pods", total=2000)
    bar.update(500)
    assert out.getvalue() == ""  # quicker than SHOW_AFTER: nothing flashes
    clock.now += 1
    bar.update(1500, note="page 3")
    clock.now += 1
    bar.update(2000, note="")
    bar.close("Listed 2,000 pods")
    first = "Listing pods: 1,500/2,000 pods (75%) 1.0s - page 3"
    second = "Listing pods: 2,000/2,000 pods (100%) 2.0s"  # blanks out the longer first
    final = "Listed 2,000 pods"
    assert out.getvalue() == ("\r" + first + "\r" + second.ljust(len(first))
                              + "\r" + final.ljust(len(second)) + "\n")


def test_redraws_are_throttled(clock: Clock, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(progress, "MIN_INTERVAL", 1.0)
    out = Tty()
    bar = Progress("Listing", stream=out, clock=clock, show_after=0)
    for i in range(10):
        bar.update(i)
        clock.now += 0.25
    assert out.getvalue().count("\r") == 3  # at 0, 1 and 2 intervals


def test_forced_on_without_a_tty_writes_whole_lines_now_and_then(clock: Clock):
    out = io.StringIO()
    bar = Progress("Waiting", stream=out, clock=clock, enabled=True, show_after=0)
    bar.update()
    clock.now += 1
    bar.update()  # within LINE_INTERVAL: not written
    clock.now += progress.LINE_INTERVAL
    bar.update()
    bar.close("done")
    assert out.getvalue() == "Waiting: 0.0s\nWaiting: 6.0s\ndone\n"


def test_nothing_shown_means_nothing_written_on_close(clock: Clock):
    out = Tty()
    Progress("Quick", stream=out, clock=clock).close("done")
    assert out.getvalue() == ""


def test_a_broken_stream_switches_the_display_off_instead_of_failing(clock: Clock):
    out = Tty()
    out.close()
    bar = Progress("Listing", stream=out, clock=clock, show_after=0)
    bar.update(1)
    assert not bar.active
    bar.close()


def test_in_jupyter_an_escaped_html_line_is_updated_in_place(
        clock: Clock, monkeypatch: pytest.MonkeyPatch):
    shown: List[Any] = []

    class Handle:
        def update(self, body: Any) -> None:
            shown.append(("update", body.data))

    def display(body: Any, display_id: bool = False) -> Handle:
        assert display_id
        shown.append(("display", body.data))
        return Handle()

    class HTML:
        def __init__(self, data: str):
            self.data = data

    # A kernel's IPython, as far as the display uses it.
    ipython = types.ModuleType("IPython")
    ipython.get_ipython = lambda: types.SimpleNamespace(kernel=object())  # type: ignore[attr-defined]
    ipython_display = types.ModuleType("IPython.display")
    ipython_display.HTML = HTML  # type: ignore[attr-defined]
    ipython_display.display = display  # type: ignore[attr-defined]
    ipython.display = ipython_display  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "IPython", ipython)
    monkeypatch.setitem(sys.modules, "IPython.display", ipython_display)
    assert display_mode() == "html"
    bar = Progress("Listing <pods>", total=4, clock=clock, show_after=0)
    bar.update(1)
    clock.now += 1
    bar.update(2)
    bar.close()
    assert [kind for kind, _ in shown] == ["display", "update", "update"]
    assert '<progress value="2" max="4"></progress> Listing &lt;pods&gt;: 2/4 (50%)' \
        in shown[-1][1]


def test_list_all_shows_pages_as_they_come(monkeypatch: pytest.MonkeyPatch):
    from kubesync import Api, ApiResource

    pages = [
        {"items": [{"metadata": {"name": "a"}}], "metadata": {"continue": "t",
                                                            "remainingItemCount": 1}},
        {"items": [{"metadata": {"name": "b"}}], "metadata": {}},
    ]

    class Client:
        def send(self, *args: Any, **kw: Any) -> Any:
            return pages.pop(0)

    out = Tty()
    monkeypatch.setattr(sys, "stderr", out)
    monkeypatch.setattr(progress, "SHOW_AFTER", 0)
    monkeypatch.setattr(progress, "MIN_INTERVAL", 0)
    api: Api[Any] = Api(Client(), ApiResource("", "v1", "Thing", "things"),  # type: ignore[arg-type]
                        "ns")
    names = [o.metadata.name for o in api.list_all(progress=True)]
    assert names == ["a", "b"]
    assert "Listing things: 1/2 things (50%)" in out.getvalue()
    assert out.getvalue().endswith("\n") and "2/2 things (100%)" in out.getvalue()


def test_await_condition_shows_what_it_waits_for_and_the_outcome(
        monkeypatch: pytest.MonkeyPatch):
    from kubesync.runtime.wait import await_condition

    api = FakeApi()
    api.pages = [page([], rv="10")]
    api.streams = [[event("ADDED", obj("x", rv="11"))]]
    out = Tty()
    monkeypatch.setattr(sys, "stderr", out)
    monkeypatch.setattr(progress, "SHOW_AFTER", 0)
    monkeypatch.setattr(progress, "MIN_INTERVAL", 0)
    found = await_condition(api, "x", lambda o: o is not None,  # type: ignore[arg-type]
                            timeout=10, progress=True)
    assert found is not None and found.metadata.name == "x"
    assert "\rWaiting for Thing 'x': " in out.getvalue()
    assert "Thing 'x': condition met after " in out.getvalue()


def test_the_old_core_progress_module_is_a_deprecated_alias() -> None:
    import kubesync.core.progress as old

    with pytest.warns(DeprecationWarning, match="kubesync.display.progress.Progress"):
        assert old.Progress is Progress
