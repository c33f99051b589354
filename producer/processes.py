"""Child processes: start one that cannot outlive jobbench, wait for it to be ready, stop it.

One stopping rule for every child jobbench starts (the HTTP target, Redis, Flower, the simulated
hosts' workers, the Celery workers): SIGTERM, a grace period shared by everything being stopped,
then SIGKILL, of the process group when the child leads one (``start_new_session``: a prefork
worker's children, ``ip netns exec`` wrappers). Always bounded: a stop never hangs the caller.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, TypeAlias

from producer.errors import ServiceError

#: Seconds a stopped child gets between SIGTERM and SIGKILL: enough for a warm shutdown.
STOP_GRACE_S = 10.0
#: Seconds to reap a child after SIGKILL. SIGKILL cannot be ignored, so this is only a bound
#: against a child stuck in the kernel (or a signal handler re-entering a wait on the same Popen).
REAP_TIMEOUT_S = 5.0
#: Seconds between two readiness checks of a starting service.
READY_POLL_S = 0.02
#: prctl(2) option: the signal a process gets when its parent dies.
PR_SET_PDEATHSIG = 1

Popen: TypeAlias = subprocess.Popen[bytes]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now (the kernel's pick)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def spawn(
    argv: Sequence[str],
    *,
    log: Path | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    own_session: bool = False,
    die_with_parent: bool = False,
) -> Popen:
    """Start ``argv`` with stdin closed and its output in ``log`` (appended; None: discarded).

    ``own_session``: the child leads a process group of its own, so the terminal's Ctrl-C reaches
    jobbench only (which then stops it) and ``stop`` can kill the whole group.
    ``die_with_parent``: the child gets SIGKILL when this thread's process dies, even by SIGKILL
    (Linux ``PR_SET_PDEATHSIG``). The signal stops at the first exec that changes privileges;
    ``ip netns exec`` and ``unshare`` do not.
    """
    preexec: Callable[[], None] | None = None
    if die_with_parent:
        prctl = ctypes.CDLL(None, use_errno=True).prctl  # resolved here: the child only calls it

        def preexec() -> None:
            prctl(PR_SET_PDEATHSIG, signal.SIGKILL)

    with contextlib.ExitStack() as files:
        out: IO[bytes] | int = subprocess.DEVNULL
        if log is not None:
            out = files.enter_context(open(log, "ab"))
        return subprocess.Popen(
            list(argv), env=None if env is None else dict(env), cwd=cwd,
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=own_session, preexec_fn=preexec,
        )  # fmt: skip


def wait_until(check: Callable[[], object], timeout_s: float, what: str, proc: Popen) -> None:
    """Poll ``check`` until it returns true; ``ServiceError`` if ``proc`` exits or time runs out.
    An exception from ``check`` counts as "not yet" (the service is still coming up)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServiceError(f"{what} exited with code {proc.returncode} during start-up")
        with contextlib.suppress(Exception):
            if check():
                return
        time.sleep(READY_POLL_S)
    raise ServiceError(f"{what} did not become ready within {timeout_s:.0f} s")


def stop(procs: Sequence[Popen], grace_s: float = STOP_GRACE_S, *, group: bool = False) -> None:
    """SIGTERM every process still running, wait up to ``grace_s`` for all of them together, then
    SIGKILL what is left: the process, or with ``group`` its whole process group (even when the
    leader is gone: its children may not be). Safe to call twice."""
    for proc in procs:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for proc in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(max(0.0, deadline - time.monotonic()))
        if group:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        elif proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(REAP_TIMEOUT_S)


def stop_process(proc: Popen, grace_s: float = STOP_GRACE_S, *, group: bool = False) -> None:
    """``stop`` for one process."""
    stop([proc], grace_s, group=group)
