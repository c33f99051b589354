"""One way to stop a child: SIGTERM, a shared grace, then SIGKILL (of its group when asked)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from producer.errors import ServiceError
from producer.processes import spawn, stop, stop_process, wait_until

#: A child that ignores SIGTERM and starts a grandchild in its process group, printing its pid.
STUBBORN = (
    "import signal, subprocess, sys, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
    "print(child.pid, flush=True)\n"
    "time.sleep(60)\n"
)


def _grandchild(log: Path) -> int:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        text = log.read_text().strip() if log.exists() else ""
        if text:
            return int(text)
        time.sleep(0.02)
    raise AssertionError("no grandchild started")


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_stop_kills_a_child_ignoring_sigterm_and_its_group(tmp_path: Path) -> None:
    log = tmp_path / "out.log"
    proc = spawn([sys.executable, "-c", STUBBORN], log=log, own_session=True)
    grandchild = _grandchild(log)
    started = time.monotonic()
    stop([proc], grace_s=0.3, group=True)
    assert proc.returncode is not None and time.monotonic() - started < 5
    deadline = time.monotonic() + 5
    while not _gone(grandchild) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _gone(grandchild), "the group's other process survived"


def test_stop_process_is_safe_twice_and_on_an_exited_child() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    stop_process(proc, grace_s=0.1)
    stop_process(proc, grace_s=0.1)
    assert proc.returncode == 0


def test_wait_until_names_a_child_that_exits_during_start_up() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    with pytest.raises(ServiceError, match="the thing exited with code 3"):
        wait_until(lambda: False, 10.0, "the thing", proc)
    assert proc.returncode == 3
