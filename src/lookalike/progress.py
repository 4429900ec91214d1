"""Progress reporting for long work: library code reports, an interface decides how to show it."""

from __future__ import annotations

from types import TracebackType
from typing import Protocol


class Progress(Protocol):
    """Receives progress events; one phase at a time."""

    def phase(self, name: str, total: int | None, unit: str = "images") -> None:
        """A new phase begins (``total`` items, or None when unknown), counted in ``unit``."""

    def advance(self, n: int = 1) -> None:
        """``n`` more items of the current phase are done."""

    def close(self) -> None:
        """No more events."""


class NoProgress:
    """Shows nothing."""

    def phase(self, name: str, total: int | None, unit: str = "images") -> None:
        pass

    def advance(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


class RichProgress:
    """A terminal progress bar per phase, with items/s and time remaining (to stderr)."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TaskID,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.progress import Progress as Bar

        self._bar = Bar(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=False,
        )
        self._task: TaskID | None = None
        self._unit = "images"
        self._bar.start()

    def phase(self, name: str, total: int | None, unit: str = "images") -> None:
        if self._task is not None:
            self._bar.stop_task(self._task)
        self._unit = unit
        self._task = self._bar.add_task(name, total=total, rate="")

    def advance(self, n: int = 1) -> None:
        if self._task is None:
            return
        self._bar.advance(self._task, n)
        speed = self._bar.tasks[self._task].speed
        rate = f"{speed:,.1f} {self._unit}/s" if speed else ""
        self._bar.update(self._task, rate=rate)

    def close(self) -> None:
        self._bar.stop()

    def __enter__(self) -> RichProgress:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
