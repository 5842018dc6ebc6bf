"""The fork gate: a fork waits for TLS handshakes, imports and class builds of other
threads, and those wait for the fork, so no child inherits them half done."""

from __future__ import annotations

import os
import ssl
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any, Iterator, List

import pytest

from kubesync.config import tls
from kubesync.core import forkgate
from tests.helpers import eventually
from tests.unit.test_fork import in_child

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")


def _fork_in_thread(forked: threading.Event) -> threading.Thread:
    """A thread that forks a child that exits at once; ``forked`` is set in the parent
    once the fork returned."""

    def run() -> None:
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        forked.set()
        os.waitpid(pid, 0)

    t = threading.Thread(target=run, name="test-forker")
    t.start()
    return t


def test_a_fork_waits_for_another_threads_guarded_block_and_new_blocks_wait_for_it() -> None:
    inside, leave, forked, later_in = (threading.Event() for _ in range(4))

    def holder() -> None:
        with forkgate.guarded():
            inside.set()
            leave.wait(30)

    def latecomer() -> None:
        with forkgate.guarded():
            later_in.set()

    h = threading.Thread(target=holder, name="test-guarded-holder")
    h.start()
    assert inside.wait(10)
    forker = _fork_in_thread(forked)
    eventually(lambda: forkgate._forking, 10, "the fork is waiting at the gate")
    late = threading.Thread(target=latecomer, name="test-guarded-latecomer")
    late.start()
    assert not forked.is_set()  # the holder is still inside
    assert not later_in.is_set()  # and new guarded work waits for the fork
    leave.set()
    assert forked.wait(10)
    assert later_in.wait(10)
    for t in (h, forker, late):
        t.join(10)
    assert not forkgate._forking and forkgate._inside == 0


def test_guarded_blocks_nest_in_one_thread_without_waiting_for_a_pending_fork() -> None:
    forked = threading.Event()
    with forkgate.guarded():
        forker = _fork_in_thread(forked)
        eventually(lambda: forkgate._forking, 10, "the fork is waiting at the gate")
        with forkgate.guarded():  # would wait for the fork, which waits for us
            assert not forked.is_set()
    assert forked.wait(10)
    forker.join(10)


def test_a_child_forked_while_another_thread_imports_finds_the_module_complete(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The module's body stops halfway until released: without the gate the child would
    # keep it half executed in sys.modules ("partially initialized module").
    (tmp_path / "slow_module_for_forkgate.py").write_text(textwrap.dedent("""
        import builtins
        FIRST = True
        builtins._forkgate_started.set()
        builtins._forkgate_release.wait(30)
        LAST = True
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    import builtins

    started, release, forked = threading.Event(), threading.Event(), threading.Event()
    monkeypatch.setattr(builtins, "_forkgate_started", started, raising=False)
    monkeypatch.setattr(builtins, "_forkgate_release", release, raising=False)
    importer = threading.Thread(
        target=forkgate.import_module, args=("slow_module_for_forkgate",),
        name="test-importer")
    importer.start()
    try:
        assert started.wait(10)
        forker = _fork_in_thread(forked)
        eventually(lambda: forkgate._forking, 10, "the fork is waiting at the gate")
        assert not forked.is_set()
        release.set()
        assert forked.wait(10)
        forker.join(10)
        importer.join(10)

        def child() -> None:
            module = sys.modules["slow_module_for_forkgate"]
            assert module.LAST is True

        in_child(child)
    finally:
        release.set()
        sys.modules.pop("slow_module_for_forkgate", None)


def test_import_module_returns_a_loaded_module_without_the_gate(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    entered: List[bool] = []
    real = forkgate.guarded

    def counting() -> Any:
        entered.append(True)
        return real()

    monkeypatch.setattr(forkgate, "guarded", counting)
    assert forkgate.import_module("json") is sys.modules["json"]
    assert entered == []


def test_our_tls_contexts_hold_the_gate_while_they_handshake(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    depths: List[int] = []
    base = ssl.SSLContext.wrap_socket

    def recording(self: ssl.SSLContext, *args: Any, **kwargs: Any) -> Any:
        depths.append(getattr(forkgate._mine, "depth", 0))
        raise OSError("recorded")

    monkeypatch.setattr(ssl.SSLContext, "wrap_socket", recording)
    ctx = tls.ssl_context(insecure=True)
    assert isinstance(ctx, tls.ForkSafeContext)
    with pytest.raises(OSError, match="recorded"):
        ctx.wrap_socket(None)  # type: ignore[arg-type]
    assert depths == [1]
    assert base is not recording


@pytest.fixture(autouse=True)
def _gate_left_open() -> Iterator[None]:
    yield
    assert not forkgate._forking and forkgate._inside == 0
