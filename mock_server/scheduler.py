"""Future work on simulated time: the ``jobs`` table and the loop that runs what falls due.

A job is a row (due_at, kind, payload) written in the same transaction as the change that needs it, so a restart
with a state file resumes it. Jobs due now run promptly in the background in every clock mode; ``advance`` walks
every job due up to a target in time order, setting the clock to each job's due time before running it (jobs due
at the same instant run concurrently), and returns only when all of them, and the ones they scheduled, have run.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mock_server.clock import Clock, format_instant, parse_instant
from mock_server.store import Store, dumps, loads

log = logging.getLogger("zest_mock.scheduler")
POLL_SECONDS = 0.01
CLOCK_META_KEY = "clock_now"  # where simulated now is kept; ``Runtime.build`` resumes from it after a restart
BACKGROUND_BATCH = 64  # jobs started per background tick, so a burst of due jobs never stalls the API


@dataclass(frozen=True, slots=True)
class Job:
    id: int
    due_at: str
    kind: str
    payload: dict[str, Any]


Handler = Callable[[Job], Awaitable[dict[str, Any] | None]]


def schedule(store: Store, kind: str, due: datetime | str, payload: dict[str, Any]) -> None:
    """Add a job; call inside the transaction of the change that needs it."""
    due_at = due if isinstance(due, str) else format_instant(due)
    store.run("INSERT INTO jobs (due_at, kind, payload) VALUES (?, ?, ?)", due_at, kind, dumps(payload))


class Scheduler:
    def __init__(self, store: Store, clock: Clock) -> None:
        self.store, self.clock = store, clock
        self.handlers: dict[str, Handler] = {}
        self._running: dict[int, asyncio.Task[dict[str, Any] | None]] = {}
        self._advance_lock = asyncio.Lock()
        self._loop_task: asyncio.Task[None] | None = None

    def register(self, kind: str, handler: Handler) -> None:
        self.handlers[kind] = handler

    def start(self) -> None:
        self._loop_task = asyncio.get_running_loop().create_task(self._background())

    async def stop(self) -> None:
        if self._loop_task:
            self._loop_task.cancel()
        tasks = list(self._running.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, *(t for t in [self._loop_task] if t), return_exceptions=True)
        self._running.clear()

    async def advance(self, target: datetime) -> list[dict[str, Any]]:
        """Run every job due up to ``target`` in time order, then leave the clock at ``target``."""
        ran: list[dict[str, Any]] = []
        async with self._advance_lock:
            await self._settle()
            while batch := self._due(format_instant(target)):
                due = parse_instant(batch[0].due_at)
                if due > self.clock.now():
                    self._move_clock(due)
                ran += await asyncio.gather(*(self._start(job) for job in batch))
                await self._settle()
            if target > self.clock.now():
                self._move_clock(target)
        return ran

    async def run_due(self) -> list[dict[str, Any]]:
        """Run what is due at simulated now (and wait for it): ``advance`` by zero."""
        return await self.advance(self.clock.now())

    def pending(self) -> list[Job]:
        return [_job(r) for r in self.store.all("SELECT * FROM jobs ORDER BY due_at, id")]

    def forget_running(self) -> None:
        """After a reset: running jobs belong to wiped state; let them finish unobserved."""
        self._running.clear()

    async def _background(self) -> None:
        while True:
            try:
                if not self._advance_lock.locked():
                    for job in self._due(format_instant(self.clock.now()), BACKGROUND_BATCH):
                        self._start(job)
            except Exception:  # the loop must survive anything a job or the store throws
                log.exception("scheduler loop")
            await asyncio.sleep(POLL_SECONDS)

    def _move_clock(self, instant: datetime) -> None:
        """Set the clock and keep it in the store before any job runs at that time, so a crash in the middle of
        ``advance`` cannot resume simulated time below what those jobs already recorded."""
        self.clock.set_to(instant)
        self.store.set_meta(CLOCK_META_KEY, format_instant(instant))

    def _due(self, until: str, limit: int = -1) -> list[Job]:
        """The earliest not-yet-running jobs due by ``until``, all sharing one due time (at most ``limit``)."""
        idle = f"AND id NOT IN ({','.join('?' * len(self._running))})" if self._running else ""
        rows = self.store.all(
            f"SELECT * FROM jobs WHERE due_at <= ? {idle} AND due_at = "
            f"(SELECT MIN(due_at) FROM jobs WHERE due_at <= ? {idle}) ORDER BY id LIMIT ?",
            until, *self._running, until, *self._running, limit,
        )
        return [job for job in map(_job, rows) if job.id not in self._running]

    def _start(self, job: Job) -> asyncio.Task[dict[str, Any] | None]:
        task = asyncio.get_running_loop().create_task(self._run(job))
        self._running[job.id] = task
        return task

    async def _settle(self) -> None:
        """Wait for jobs already running (started by the background loop or an earlier step)."""
        while self._running:
            await asyncio.gather(*list(self._running.values()), return_exceptions=True)

    async def _run(self, job: Job) -> dict[str, Any]:
        summary: dict[str, Any] = {"kind": job.kind, "dueAt": job.due_at, **job.payload}
        try:
            handler = self.handlers.get(job.kind)
            if handler is None:
                summary["error"] = f"no handler for job kind {job.kind!r}"
            else:
                summary.update(await handler(job) or {})
        except Exception as exc:  # a failing job is reported and dropped, never retried forever
            log.exception("job %s %s failed", job.kind, job.id)
            summary["error"] = f"{type(exc).__name__}: {exc}"
        finally:
            self.store.run("DELETE FROM jobs WHERE id = ?", job.id)
            self._running.pop(job.id, None)
        return summary


def _job(row: dict[str, Any]) -> Job:
    return Job(row["id"], row["due_at"], row["kind"], loads(row["payload"]))
