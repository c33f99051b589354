"""The terminal: one way to make a rich ``Console``, the progress display of long commands, and
how a duration is shown in every table (``fmt_s``, which report.md uses too)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

#: Columns of a console that is not a terminal (a pipe, a file, CI logs): wide enough that no
#: table is squeezed to rich's 80-column fallback and wrapped mid-cell.
PIPE_WIDTH = 190

#: Progress of a long run: (what is happening, measured repeats done, measured repeats in all).
ProgressFn = Callable[[str, int, int], None]
#: Progress of a run made of named steps: what is happening now.
StatusFn = Callable[[str], None]


def make_console(stderr: bool = False) -> Console:
    """A console on stdout (or stderr) that keeps terminal behaviour on a terminal and does not
    squeeze tables when piped."""
    console = Console(stderr=stderr)
    if not console.is_terminal:
        console = Console(stderr=stderr, width=PIPE_WIDTH)
    return console


@contextlib.contextmanager
def live_progress(
    console: Console, enabled: bool, unit: str = "repeats"
) -> Iterator[ProgressFn | None]:
    """A progress bar over the timed repeats (model, workload, repeat), or the steps ``unit``
    names, on ``console``; nothing when ``enabled`` is false (``--quiet``, or not a terminal)."""
    if not enabled:
        yield None
        return
    columns = (
        SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
        MofNCompleteColumn(), TextColumn(unit), TimeElapsedColumn(),
    )  # fmt: skip
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("starting", total=None)

        def update(message: str, done: int, total: int) -> None:
            bar.update(task, description=message, completed=done, total=total)

        yield update


@contextlib.contextmanager
def live_status(console: Console, enabled: bool) -> Iterator[StatusFn]:
    """A spinner naming the current step on ``console``; a no-op when ``enabled`` is false."""
    if not enabled:
        yield lambda _message: None
        return
    with console.status("starting", spinner="dots") as status:
        yield lambda message: status.update(message)


def fmt_s(value: float | None) -> str:
    """A duration given in seconds, in the unit that keeps three significant digits readable
    (16.1 s, 71.6 ms, 84 µs), as hyperfine prints them."""
    if value is None:
        return "–"
    size = abs(value)
    if size >= 1.0 or size == 0.0:
        return f"{value:.3g} s"
    if size >= 1e-3:
        return f"{value * 1e3:.3g} ms"
    return f"{value * 1e6:.3g} µs"
