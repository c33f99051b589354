"""Exit codes: bad input is one line and exit 2, jobs missing exit 1, and a bug is a traceback
(exit 1 from Python), never dressed up as bad input."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from producer.cli import main
from producer.cli import verify as verify_command
from producer.errors import (
    EXIT_USAGE,
    BadInput,
    ResultsError,
    RunNotFound,
    ServiceError,
)


@pytest.mark.parametrize("error", [BadInput, ResultsError, RunNotFound, ServiceError])
def test_a_known_problem_is_one_line_and_exit_2(
    error: type[Exception], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def fails(args: argparse.Namespace) -> int:
        raise error("no such thing: 'x'")

    monkeypatch.setattr(verify_command, "run", fails)
    assert main(["verify", "x"]) == EXIT_USAGE
    captured = capsys.readouterr()
    assert captured.err == "jobbench: error: no such thing: 'x'\n" and not captured.out


def test_an_os_error_from_a_bug_is_not_bad_input(monkeypatch: pytest.MonkeyPatch) -> None:
    def bug(args: argparse.Namespace) -> int:
        raise FileNotFoundError(2, "No such file or directory", "/nonexistent/by/mistake")

    monkeypatch.setattr(verify_command, "run", bug)
    with pytest.raises(FileNotFoundError):
        main(["verify", "x"])


def test_a_bug_exits_1_with_a_traceback() -> None:
    probe = (
        "import producer.cli.verify as v\n"
        "from producer.cli import main\n"
        "def bug(args):\n"
        "    raise PermissionError(13, 'Permission denied', '/root/by-mistake')\n"
        "v.run = bug\n"
        "raise SystemExit(main(['verify', 'x']))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "Traceback" in done.stderr and "PermissionError" in done.stderr
