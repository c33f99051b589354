"""Exit codes and the errors that end a ``jobbench`` command with one line instead of a traceback.

The rule (dramatiq names its exit codes ``RET_*`` the same way): an error the *user* can fix (a
malformed option or variable, an unwritable ``--out``, a run that does not exist, a service that
cannot be reached or started) is one of the classes below, printed as one line with its
``exit_code``. Anything else is a bug and propagates: a traceback and exit 1 from Python, never
dressed up as bad input.
"""

from __future__ import annotations

from typing import ClassVar

#: Success: the command did what was asked (a report that names failed jobs is still success).
EXIT_OK = 0
#: The command ran but found a problem: jobs missing, a slowdown beyond the allowed threshold, a
#: missed target with ``--check``. Also what Python exits with on an uncaught exception (a bug).
EXIT_FAILURE = 1
#: Bad input: an unknown option value, a malformed URL, an unwritable results directory, no such
#: run, an unreachable configured service.
EXIT_USAGE = 2
#: Interrupted with Ctrl-C (128 + SIGINT), after everything started was stopped.
EXIT_INTERRUPTED = 130


class JobbenchError(Exception):
    """An error with a one-line message the user can act on; ``exit_code`` says how it ends."""

    exit_code: ClassVar[int] = EXIT_USAGE


class BadInput(JobbenchError):
    """The user's input cannot be used: an option value, a file or directory they named."""


class ResultsError(BadInput):
    """The results directory cannot be written, or a results file the user named cannot be read."""


class RunNotFound(ResultsError):
    """No run by that name on disk or in Redis."""


class ServiceError(JobbenchError):
    """A service could not be started or reached (Redis, a worker, Flower, the HTTP target)."""
