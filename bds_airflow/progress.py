"""Progress of long runs (`bds run` over many days, `bds demo`) for the person watching.

One line per billing day, as `runner.run_days` reports it, followed by the tenant-level
values billed that day (`bds_metrics.summary.day_values`); on a terminal, a `rich`
progress bar (days done, elapsed, time left) stays under those lines. Piped or
redirected output gets the plain lines only, so it stays a log a script can read.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import sys
from collections.abc import Callable, Iterator

from bds_metrics.config import TenantConfig


@contextlib.contextmanager
def day_progress(t: TenantConfig, days: int, label: str | None = None,
                 lines: list[str] | None = None) -> Iterator[Callable[[str], None]]:
    """An `echo` for `run_days`: prints each day's line with its values and advances the
    bar. `lines`, when given, also collects the printed lines."""
    from bds_metrics.summary import day_values

    live = sys.stdout.isatty() and sys.stderr.isatty()
    progress = None
    if live:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        progress = Progress(TextColumn("{task.description}"), BarColumn(),
                            MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
                            console=Console(highlight=False), transient=True)
    task = progress.add_task(label or f"{t.id}: billing days", total=days) if progress else None

    def echo(line: str) -> None:
        parts = line.split(maxsplit=3)
        values = ""
        if len(parts) > 2 and parts[2] == "ok":
            with contextlib.suppress(Exception):  # the values are a courtesy; the line stands
                values = day_values(t, dt.date.fromisoformat(parts[1]))
        text = f"{line}  {values}" if values else line
        if lines is not None:
            lines.append(text)
        if progress is not None:
            progress.console.print(text, markup=False, soft_wrap=True)
            progress.advance(task)
        else:
            print(text, flush=True)

    if progress is None:
        yield echo
        return
    with progress:
        yield echo
