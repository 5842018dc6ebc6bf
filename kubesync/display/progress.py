"""A progress line for long operations, shown only where a person is watching.

In Jupyter (an IPython kernel) it is an HTML line updated in place; in a terminal (stderr
is a TTY) a text line rewritten with ``\\r``; in a cron job, CI or a pipe nothing at all.
``enabled=True`` forces it on (plain lines to stderr where there is no TTY),
``enabled=False`` off. Used by ``Api.list_all``, ``await_condition`` and
``manifests.apply``, which take the same ``progress=`` switch.
"""

from __future__ import annotations

import html
import shutil
import sys
import time
from types import TracebackType
from typing import Any, Callable, Optional, TextIO, Type

__all__ = ["MIN_INTERVAL", "REFRESH", "SHOW_AFTER", "Progress", "display_mode"]

#: Nothing is shown for an operation quicker than this (as tqdm's ``delay``): a list that
#: takes 50 ms should not flash a bar.
SHOW_AFTER = 0.5
#: Redraw at most this often: each HTML update is a message to the browser.
MIN_INTERVAL = 0.2
#: Without a TTY (``enabled=True`` in a log), one line per this many seconds at most.
LINE_INTERVAL = 5.0
#: How often a waiting operation should call ``update()`` to keep the elapsed time fresh.
REFRESH = 0.5


def _ipython_kernel() -> bool:
    # Only if IPython is loaded already: a plain script never imports it on our account.
    ipython = sys.modules.get("IPython")
    get = getattr(ipython, "get_ipython", None)
    shell = get() if get is not None else None
    return shell is not None and getattr(shell, "kernel", None) is not None


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or closed
        return False


def display_mode(enabled: Optional[bool] = None, stream: Optional[TextIO] = None
                 ) -> Optional[str]:
    """Where progress would show: ``"html"`` (Jupyter), ``"tty"`` (a terminal),
    ``"lines"`` (forced on without a TTY) or None (off)."""
    if enabled is False:
        return None
    if _ipython_kernel():
        return "html"
    if _isatty(stream if stream is not None else sys.stderr):
        return "tty"
    return "lines" if enabled else None


def _elapsed(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s"


class Progress:
    """One operation's progress line: ``update()`` as work gets done, ``close()`` at the end
    (or use it as a context manager). Cheap when off; never raises from drawing (a broken
    display switches it off). Not thread-safe: the operation's own thread updates it.
    """

    def __init__(
        self,
        label: str,
        *,
        total: Optional[int] = None,
        unit: str = "",
        enabled: Optional[bool] = None,
        stream: Optional[TextIO] = None,
        clock: Callable[[], float] = time.monotonic,
        show_after: Optional[float] = None,
    ):
        self.label = label
        self.total = total
        self.unit = unit
        self.done: Optional[int] = None
        self.note = ""
        self._stream = stream
        self._clock = clock
        self._started = clock()
        self._show_after = SHOW_AFTER if show_after is None else show_after
        self._mode = display_mode(enabled, stream)
        self._last_draw: Optional[float] = None
        self._width = 0  # of the last text line, to blank it out when the next is shorter
        self._handle: Any = None
        self._closed = False

    @property
    def active(self) -> bool:
        """True while updates may be drawn (on, and not closed)."""
        return self._mode is not None and not self._closed

    @property
    def elapsed(self) -> str:
        """Time since the start, as shown (``12.3s``, ``2m05s``)."""
        return _elapsed(self._clock() - self._started)

    @property
    def shown(self) -> bool:
        """True once something has been drawn."""
        return self._last_draw is not None

    def update(self, done: Optional[int] = None, *, total: Optional[int] = None,
               note: Optional[str] = None) -> None:
        """Record progress (``done`` of ``total``; ``note`` says what is happening) and
        redraw if it is time to."""
        if done is not None:
            self.done = done
        if total is not None:
            self.total = total
        if note is not None:
            self.note = note
        if not self.active:
            return
        now = self._clock()
        if now - self._started < self._show_after:
            return
        interval = LINE_INTERVAL if self._mode == "lines" else MIN_INTERVAL
        if self._last_draw is not None and now - self._last_draw < interval:
            return
        self._draw(self.line(now), final=False)
        self._last_draw = now

    def close(self, summary: Optional[str] = None) -> None:
        """End the line: ``summary`` (or the last state) stays, if anything was shown."""
        if not self.active:
            self._closed = True
            return
        if self.shown:
            self._draw(summary or self.line(self._clock()), final=True)
        self._closed = True

    def line(self, now: Optional[float] = None) -> str:
        """The text of the progress line."""
        now = self._clock() if now is None else now
        parts = [f"{self.label}:"]
        if self.done is not None:
            count = f"{self.done:,}" if self.total is None else f"{self.done:,}/{self.total:,}"
            parts.append(f"{count} {self.unit}".rstrip())
            if self.total:
                parts.append(f"({min(100, 100 * self.done // self.total)}%)")
        parts.append(_elapsed(now - self._started))
        if self.note:
            parts.append(f"- {self.note}")
        return " ".join(parts)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, exc_type: Optional[Type[BaseException]],
                 exc: Optional[BaseException], tb: Optional[TracebackType]) -> None:
        self.close()

    # -- drawing --------------------------------------------------------------------------

    def _draw(self, text: str, *, final: bool) -> None:
        try:
            if self._mode == "html":
                self._draw_html(text)
            else:
                self._draw_text(text, final)
        except Exception:  # a closed stream or a gone kernel must not fail the operation
            self._mode = None

    def _draw_text(self, text: str, final: bool) -> None:
        stream = self._stream if self._stream is not None else sys.stderr
        if self._mode == "lines":
            stream.write(text + "\n")
        else:
            columns = shutil.get_terminal_size().columns - 1  # a wrapped line defeats \r
            text = text[:columns]
            stream.write("\r" + text.ljust(self._width) + ("\n" if final else ""))
            self._width = len(text)
        stream.flush()

    def _draw_html(self, text: str) -> None:
        from IPython.display import HTML, display

        bar = ""
        if self.total and self.done is not None:
            bar = f'<progress value="{min(self.done, self.total)}" max="{self.total}"></progress> '
        body = HTML(f'<div class="kubesync-progress">{bar}{html.escape(text)}</div>')
        if self._handle is None:
            self._handle = display(body, display_id=True)
        else:
            self._handle.update(body)
