"""The one clean-up path: SIGINT, SIGTERM and SIGHUP become an exception, installed before anything
starts, so every ``finally`` and context manager on the way out (Flower, the HTTP target, the
Celery workers and their queues, the embedded Redis, the process pools) stops what it started,
the run's evidence is written, and ``jobbench`` exits with 128 + the signal's number and one line.

Python's own SIGINT handler already raises ``KeyboardInterrupt``; SIGTERM and SIGHUP would kill
the process without running anything. Here all three raise ``Interrupted`` (a
``KeyboardInterrupt``), once: a second or third signal while the clean-up runs is noted and
ignored, so an impatient Ctrl-C cannot abort it half-way (leaving a queue with its messages). Every
stop the clean-up makes is bounded (``producer.processes``), so it never hangs.

A process forked from jobbench (a ``multiprocessing`` or ``ProcessPoolExecutor`` child) does not
inherit the handlers: SIGTERM and SIGHUP kill it the default way (``Pool.terminate`` relies on
it), and it ignores SIGINT. The terminal sends Ctrl-C to the whole foreground process group; the
parent alone handles it and stops its pools, so no child prints a ``KeyboardInterrupt`` traceback.
"""

from __future__ import annotations

import os
import signal
import threading
from types import FrameType

#: The signals that end a command cleanly, each with its exit code 128 + n (the shell's rule).
HANDLED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Interrupted(KeyboardInterrupt):
    """A handled signal arrived; unwinding stops everything that was started."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        #: The one line ``jobbench`` ends with; set by whoever knows more (the run and its
        #: evidence), else a generic one.
        self.message: str | None = None
        super().__init__(self.signal_name)

    @property
    def signal_name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


_owner_pid = 0
_at_fork_registered = False
#: Signals received so far (the first raised ``Interrupted``; later ones were ignored).
received: list[int] = []
#: One-line remarks the clean-up made (a queue it could not drop, messages a dead worker held):
#: the run's evidence reports them.
notes: list[str] = []


def note(text: str) -> None:
    """Record a remark of the clean-up for the run's evidence."""
    notes.append(text)


def _on_signal(signum: int, frame: FrameType | None) -> None:
    if os.getpid() != _owner_pid:  # a forked child that kept the handler: die the default way
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        return
    received.append(signum)
    if len(received) > 1:
        return  # already unwinding: never abort the clean-up half-way
    raise Interrupted(signum)


def _in_child() -> None:
    """After a fork: default SIGTERM/SIGHUP, SIGINT ignored (the parent handles Ctrl-C)."""
    if os.getpid() == _owner_pid:
        return
    received.clear()
    notes.clear()
    for signum in HANDLED:
        try:
            if signal.getsignal(signum) is _on_signal:
                signal.signal(signum, signal.SIG_IGN if signum == signal.SIGINT else signal.SIG_DFL)
        except ValueError:  # forked from a thread other than the main one
            continue


def install() -> None:
    """Turn SIGINT, SIGTERM and SIGHUP into ``Interrupted`` for this process (main thread only;
    call it before anything is started). Safe to call twice."""
    global _owner_pid, _at_fork_registered
    if threading.current_thread() is not threading.main_thread():
        return
    _owner_pid = os.getpid()
    received.clear()
    notes.clear()
    for signum in HANDLED:
        signal.signal(signum, _on_signal)
    if not _at_fork_registered:
        os.register_at_fork(after_in_child=_in_child)
        _at_fork_registered = True


def uninstall() -> None:
    """Restore the default handlers (SIGINT: Python's ``KeyboardInterrupt``)."""
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in HANDLED:
        if signal.getsignal(signum) is _on_signal:
            default = signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL
            signal.signal(signum, default)
