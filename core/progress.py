"""How far a long operation is (the billing run, webhook replays, key rotation).

An operation takes a `report(done, total)` callable and calls it as it goes; what the
report does depends on who started it:

- `TerminalProgress`, for a management command: a bar redrawn in place at most ten times
  a second on a terminal ("[#####     ] 512/1,000 (51%) 120/s ETA 4s"), or when the
  output is a file or a pipe a plain line ("512/1000 done (51%)") every tenth of the way
  and at least once a minute, so logs stay readable and a slow run still shows signs of
  life;
- `JobProgress`, for a job started from the admin and run by a worker: the figures kept
  in the cache under the job's id, for the admin's progress page to read.
"""

import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TextIO

from django.core.cache import cache
from django.core.management.base import OutputWrapper

WIDTH = 30
REDRAW_SECONDS = 0.1
LOG_LINE_SECONDS = 60
JOB_TTL_SECONDS = 24 * 3600


def _eta(done: int, total: int, rate: float) -> str:
    if rate <= 0 or done >= total:
        return ""
    left = (total - done) / rate
    return f" ETA {left:.0f}s" if left < 120 else f" ETA {left / 60:.0f}min"


def _write(out: "TextIO | OutputWrapper", text: str) -> None:
    if isinstance(out, OutputWrapper):
        out.write(text, ending="")  # a command's stdout would add a newline to each
    else:
        out.write(text)


class TerminalProgress:
    def __init__(
        self,
        out: "TextIO | OutputWrapper",
        *,
        label: str = "",
        tty: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.out = out
        self.label = f"{label}: " if label else ""
        self.tty = out.isatty() if tty is None else tty
        self.clock = clock
        self.started = clock()
        self._drawn_at = float("-inf")
        self._drawn = ""  # the bar on screen, not yet ended by a newline
        self._tenth = -1
        self._logged_at = self.started

    def __call__(self, done: int, total: int) -> None:
        now = self.clock()
        rate = done / (now - self.started) if now > self.started else 0.0
        share = done / total if total else 1.0
        if self.tty:
            if now - self._drawn_at < REDRAW_SECONDS and done < total:
                return
            self._drawn_at = now
            bar = "#" * int(WIDTH * share)
            line = (
                f"{self.label}[{bar:<{WIDTH}}] {done:,}/{total:,} ({share:.0%}) "
                f"{rate:,.0f}/s{_eta(done, total, rate)}"
            )
            # Padded to the last bar's length: a shorter line would leave its tail shown.
            _write(self.out, "\r" + line.ljust(len(self._drawn)))
            self._drawn = line
            if done >= total:
                self.close()
            self.out.flush()
            return
        tenth = int(share * 10)
        if tenth > self._tenth or done >= total or now - self._logged_at >= LOG_LINE_SECONDS:
            self._tenth, self._logged_at = tenth, now
            _write(self.out, f"{self.label}{done}/{total} done ({share:.0%})\n")

    def note(self, text: str, *, out: "TextIO | OutputWrapper | None" = None) -> None:
        """A line of its own while the bar is drawn (on `out`, the same terminal): the bar
        is wiped first and drawn again at the next report, so they never share a line."""
        if self._drawn:
            _write(self.out, "\r" + " " * len(self._drawn) + "\r")
            self.out.flush()
            self._drawn, self._drawn_at = "", float("-inf")
        _write(out or self.out, text + "\n")

    def close(self) -> None:
        """Ends the bar's line, so what the command prints next starts on its own (the
        last report may fall short of the count: rows gone since it was taken)."""
        if self._drawn:
            _write(self.out, "\n")
            self.out.flush()
            self._drawn = ""


@dataclass
class JobState:
    label: str
    done: int = 0
    total: int = 0
    state: str = "queued"  # queued | running | finished | failed
    summary: str = ""

    @property
    def percent(self) -> int:
        return int(100 * self.done / self.total) if self.total else 0


class JobProgress:
    """A job's progress in the cache (Redis in production), written by the worker."""

    def __init__(self, job_id: str):
        self.key = f"progress:{job_id}"
        self._saved_at = 0.0

    @classmethod
    def create(cls, label: str) -> tuple[str, "JobProgress"]:
        job_id = uuid.uuid4().hex
        progress = cls(job_id)
        progress._save(JobState(label=label))
        return job_id, progress

    def read(self) -> JobState | None:
        found = cache.get(self.key)
        return JobState(**found) if isinstance(found, dict) else None

    def _save(self, state: JobState) -> None:
        cache.set(self.key, asdict(state), JOB_TTL_SECONDS)

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self._saved_at < 0.5 and done < total:
            return  # a cache write per item would cost more than the page needs
        self._saved_at = now
        state = self.read() or JobState(label="")
        state.done, state.total, state.state = done, total, "running"
        self._save(state)

    def finish(self, summary: str, *, failed: bool = False) -> None:
        state = self.read() or JobState(label="")
        state.state, state.summary = ("failed" if failed else "finished"), summary
        if not failed:
            state.done = state.total
        self._save(state)
