"""A one-line progress bar for a task, redrawn in place on a terminal.

Pure rendering (`render`) apart from the terminal writes (`ProgressBar`), so the drawing is
tested without a terminal and the pty test only checks that it reaches one.
"""

from __future__ import annotations

import shutil
import sys
import time
from typing import TextIO

FULL = "█"
EMPTY = "░"
CLEAR_LINE = "\r\x1b[K"


def render(label: str, fraction: float | None, elapsed: float, columns: int = 80) -> str:
    """`vm.start [████████░░░░░░░░]  52%  1.2s`, fitted to `columns`."""
    tail = f"{elapsed:5.1f}s"
    if fraction is None:
        percent = "  …%"
        fraction = 0.0
    else:
        fraction = min(max(fraction, 0.0), 1.0)
        percent = f"{fraction * 100:3.0f}%"
    label = label if len(label) <= 30 else label[:29] + "…"
    fixed = len(label) + len(percent) + len(tail) + 6  # spaces and brackets
    width = max(10, min(40, columns - fixed - 1))
    filled = round(fraction * width)
    return f"{label} [{FULL * filled}{EMPTY * (width - filled)}] {percent}  {tail}"


class ProgressBar:
    def __init__(self, label: str, stream: TextIO | None = None) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.started = time.monotonic()
        self.fraction: float | None = None
        self._drawn = False
        self._finished = False

    def update(self, fraction: float | None) -> None:
        if fraction is not None:
            self.fraction = fraction
        self.draw()

    def draw(self) -> None:
        columns = shutil.get_terminal_size((80, 24)).columns
        line = render(self.label, self.fraction, time.monotonic() - self.started, columns)
        self.stream.write(CLEAR_LINE + line)
        self.stream.flush()
        self._drawn = True

    def finish(self, success: bool) -> None:
        if self._finished:
            return
        self._finished = True
        if success:
            self.fraction = 1.0
        if self._drawn or success:
            self.draw()
            self.stream.write("\n")
            self.stream.flush()
