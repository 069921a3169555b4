"""Progress reports: a bar on a terminal, plain lines in a log.

Every long loop of the tools (decoding, training, scoring, rendering, detection,
the synthetic generator) reports through :func:`progress_bar`. On a terminal it is
a tqdm bar on stderr. When stderr is a file or a pipe, a bar's ``\\r`` redraws
would fill the log with thousands of frames, so it writes one plain line at most
once a minute (``desc: 120/1200 step (10 %), 3.2 step/s, 60 s, loss=0.53``), and
one at the end only where the caller asks (train.py: a line per epoch). A short
run of a tool thus writes nothing to a log, and bad input found late still leaves
exactly its one error line.
"""

import sys
import time
from typing import Dict, Optional, TextIO

PLAIN_INTERVAL_S = 60.0


def is_terminal(stream: Optional[TextIO] = None) -> bool:
    """Whether ``stream`` (default stderr) is an interactive terminal."""
    stream = stream if stream is not None else sys.stderr
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # closed or not a real stream
        return False


class PlainProgress:
    """The bar's interface (update, set_postfix, close) written as plain lines.

    Args:
        total: units in all (None: unknown).
        desc: what is counted, the line's prefix.
        unit: the unit's name.
        initial: units already done (a resumed run).
        leave: kept for the bar's interface (a tqdm bar's ``leave``).
        end_line: write a last line at close.
        stream: where the lines go (default stderr).
        interval_s: seconds between two lines at most once (default a minute).
        clock: a monotonic clock in seconds (tests pass their own).
    """

    def __init__(self, total: Optional[int] = None, desc: str = "", unit: str = "it",
                 initial: int = 0, leave: bool = True, stream: Optional[TextIO] = None,
                 interval_s: float = PLAIN_INTERVAL_S, clock=time.monotonic,
                 end_line: bool = False):
        self.total = total
        self.desc = desc
        self.unit = unit
        self.n = initial
        self._initial = initial
        self.leave = leave
        self.end_line = end_line
        self._stream = stream
        self._interval_s = interval_s
        self._clock = clock
        self._started = clock()
        self._last_line = self._started
        self._postfix: Dict[str, str] = {}
        self._closed = False

    def __enter__(self) -> "PlainProgress":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def set_postfix(self, refresh: bool = True, **values) -> None:
        """Values shown after the count (loss, accuracy, ...)."""
        self._postfix = {key: str(value) for key, value in values.items()}

    def set_description(self, desc: str, refresh: bool = True) -> None:
        self.desc = desc

    def update(self, count: int = 1) -> None:
        """Counts ``count`` more units; writes a line when a minute has passed."""
        self.n += count
        now = self._clock()
        if now - self._last_line >= self._interval_s:
            self._last_line = now
            self._write(now)

    def close(self) -> None:
        """Writes the last line (with ``end_line``), once."""
        if self._closed:
            return
        self._closed = True
        if self.end_line:
            self._write(self._clock())

    def line(self, now: Optional[float] = None) -> str:
        """The text of a progress line at time ``now``."""
        elapsed = (self._clock() if now is None else now) - self._started
        count = f"{self.n}/{self.total}" if self.total is not None else f"{self.n}"
        parts = [f"{count} {self.unit}"]
        if self.total:
            parts[0] += f" ({100 * self.n / self.total:.0f} %)"
        done = self.n - self._initial
        if elapsed >= 1 and done > 0:  # (a rate over milliseconds says nothing)
            parts.append(f"{done / elapsed:.1f} {self.unit}/s")
        parts.append(f"{elapsed:.0f} s")
        parts += [f"{key}={value}" for key, value in self._postfix.items()]
        prefix = f"{self.desc}: " if self.desc else ""
        return prefix + ", ".join(parts)

    def _write(self, now: float) -> None:
        stream = self._stream if self._stream is not None else sys.stderr
        stream.write(self.line(now) + "\n")
        stream.flush()


class NoProgress(PlainProgress):
    """Counts silently (progress switched off)."""

    def update(self, count: int = 1) -> None:
        self.n += count

    def close(self) -> None:
        self._closed = True


def progress_bar(total: Optional[int] = None, desc: str = "", unit: str = "it",
                 initial: int = 0, leave: bool = True, enabled: bool = True,
                 stream: Optional[TextIO] = None, interval_s: float = PLAIN_INTERVAL_S,
                 plain_end_line: bool = False):
    """A progress report for a loop of ``total`` units.

    Args:
        total: units in all (None: unknown).
        desc: what is counted.
        unit: the unit's name.
        initial: units already done.
        leave: keep the bar on the terminal when done.
        enabled: False: nothing is shown.
        stream: where it goes (default stderr, looked up at each write).
        interval_s: plain mode: seconds between two lines at least.
        plain_end_line: plain mode: also a line when done.

    Returns:
        A tqdm bar on a terminal, else a :class:`PlainProgress` (or, with
        ``enabled`` False, a :class:`NoProgress`); all three take ``update(n)``,
        ``set_postfix(**values)``, ``close()`` and ``with``.
    """
    if not enabled:
        return NoProgress(total, desc, unit, initial, leave, stream)
    if is_terminal(stream):
        from tqdm import tqdm
        return tqdm(total=total, desc=desc or None, unit=unit, initial=initial, leave=leave,
                    file=stream if stream is not None else sys.stderr, dynamic_ncols=True)
    return PlainProgress(total, desc, unit, initial, leave, stream, interval_s,
                         end_line=plain_end_line)
