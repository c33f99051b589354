"""``interpreter_pool``: a model added as one file (``producer/runners/interpreter_pool.py``)
and this test. Before Python 3.14 it reports itself unavailable with the reason: listed, never in
the default run, and asking for it is a one-line error (exit 2), not a traceback."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from producer.cli import EXIT_USAGE, main
from producer.runners import registry

OLD_PYTHON = sys.version_info < (3, 14)


def test_it_is_listed_but_not_a_default() -> None:
    assert "interpreter_pool" in registry.names()
    assert "interpreter_pool" not in registry.default_models()


@pytest.mark.skipif(not OLD_PYTHON, reason="InterpreterPoolExecutor exists from Python 3.14")
def test_before_3_14_it_says_why_it_cannot_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    why = registry.load("interpreter_pool").available()
    assert why is not None and "Python 3.14" in why and sys.version.split()[0] in why
    code = main(["bench", "--models", "interpreter_pool", "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == EXIT_USAGE
    assert err.count("\n") == 1 and "interpreter_pool is not available" in err, err
    assert "Traceback" not in err
    assert not (tmp_path / "r" / "latest").exists()  # nothing ran
