"""Future work on simulated time: the ``jobs`` table (this module alone reads and writes it) and the lanes that run
what falls due.

A job is a row (due_at, kind, lane, key, payload) written in the same transaction as the change that needs it, so a
restart with a state file resumes it. ``key`` is the job's typed identity (a delivery id, a request slug, ...), so
jobs are found by (kind, key), never by matching payload text. A handler removes its job with ``finish`` inside the
transaction that records what the job did, so a crash either leaves the job (it runs again, nothing was recorded) or
removes it with its effects (it never runs twice).

Each lane runs its own jobs: one lane per partner for webhook work and one global lane for the admin's jobs. A lane
sleeps until its next job is due on the simulated clock, a job is added to it, or the clock moves; nothing polls.
Within a lane, jobs start in due order: the jobs of one due instant run concurrently (up to the lane's bound, and
jobs added for an instant that is running join it), and a later instant starts only once every running job has
finished or has run ``STALL_SECONDS`` of wall time
(a hanging receiver then holds only its own lane's slots, never another partner's). Claims are a column, so no query
grows with the number of running jobs.

``advance(target)`` walks the global lane's jobs in time order, setting the clock to each one's due time before it
runs, then sets the clock to ``target`` and waits until no lane has a job due by then, left or running. Work done
by a job is stamped with its due time (``Job.due``), so timestamps and retry schedules come out exactly as
production would produce them, however long a lane took to get to it.

Reset is an epoch: ``reset`` cancels what runs and bumps ``epoch``; a handler checks ``current(job)`` before it
records, so nothing from before a reset is recorded into the state after it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mock_server.clock import Clock, format_instant, parse_instant
from mock_server.store import Store, dumps, loads

log = logging.getLogger("zest_mock.scheduler")
CLOCK_META_KEY = "clock_now"  # where simulated now is kept; ``Runtime.build`` resumes from it after a restart
GLOBAL_LANE = ""  # the admin's jobs (review, completion, reconciler); webhook jobs run in their partner's lane
GLOBAL_CONCURRENCY = 1
STALL_SECONDS = 1.0  # wall time after which a running job no longer holds back its lane's later jobs


@dataclass(frozen=True, slots=True)
class Job:
    id: int
    due_at: str
    kind: str
    lane: str
    key: str
    payload: dict[str, Any]
    epoch: int = 0

    @property
    def due(self) -> datetime:
        return parse_instant(self.due_at)


Handler = Callable[[Job], Awaitable[dict[str, Any] | None]]


def schedule(store: Store, kind: str, due: datetime | str, payload: dict[str, Any] | None = None, *,
             lane: str = GLOBAL_LANE, key: str = "") -> None:
    """Add a job; call inside the transaction of the change that needs it. Its lane wakes once that commits."""
    due_at = due if isinstance(due, str) else format_instant(due)
    store.run("INSERT INTO jobs (due_at, kind, lane, key, payload) VALUES (?, ?, ?, ?, ?)",
              due_at, kind, lane, key, dumps(payload or {}))
    store.jobs_added(lane)


def finish(store: Store, job: Job) -> None:
    """Remove a job; call inside the transaction that records what it did."""
    store.run("DELETE FROM jobs WHERE id = ?", job.id)


def exists(store: Store, kind: str, key: str, due_at: str | None = None) -> bool:
    """Whether a job of ``kind`` with ``key`` (and, if given, that due time) is waiting."""
    if due_at is None:
        return store.one("SELECT 1 FROM jobs WHERE kind = ? AND key = ? LIMIT 1", kind, key) is not None
    return store.one("SELECT 1 FROM jobs WHERE kind = ? AND key = ? AND due_at = ? LIMIT 1",
                     kind, key, due_at) is not None


def keys(store: Store, kind: str) -> set[str]:
    return {r["key"] for r in store.all("SELECT key FROM jobs WHERE kind = ?", kind)}


def count(store: Store) -> int:
    row = store.one("SELECT COUNT(*) AS n FROM jobs")
    return int(row["n"]) if row else 0


def pending(store: Store) -> list[Job]:
    return [_job(r) for r in store.all("SELECT * FROM jobs ORDER BY due_at, id")]


class Scheduler:
    def __init__(self, store: Store, clock: Clock, lane_concurrency: int) -> None:
        self.store, self.clock = store, clock
        self.lane_concurrency = lane_concurrency
        self.handlers: dict[str, Handler] = {}
        self.on_failure: Callable[[Job], None] | None = None  # e.g. reschedule what a failed job left pending
        self.epoch = 0
        self.lanes: dict[str, _Lane] = {}
        self._advance_lock = asyncio.Lock()
        self._ran: list[dict[str, Any]] | None = None  # summaries collected by a running ``advance``
        self._started = False
        store.on_jobs_added(self._wake)
        clock.on_change(self._wake_all)

    def register(self, kind: str, handler: Handler) -> None:
        self.handlers[kind] = handler

    def start(self) -> None:
        """Release claims a previous process held, then wake every lane that has work."""
        self._started = True
        self.store.run("UPDATE jobs SET claimed = 0 WHERE claimed = 1")
        for row in self.store.all("SELECT DISTINCT lane FROM jobs"):
            self._wake(row["lane"])

    async def stop(self) -> None:
        self._started = False
        lanes, self.lanes = list(self.lanes.values()), {}
        await asyncio.gather(*(lane.close() for lane in lanes), return_exceptions=True)

    async def reset(self) -> None:
        """A new epoch: cancel every running job and forget every lane (their state was wiped)."""
        self.epoch += 1
        lanes, self.lanes = list(self.lanes.values()), {}
        await asyncio.gather(*(lane.close() for lane in lanes), return_exceptions=True)

    def current(self, job: Job) -> bool:
        """Whether ``job`` still belongs to the live state (no reset since it started)."""
        return job.epoch == self.epoch

    async def advance(self, target: datetime) -> list[dict[str, Any]]:
        """Run every job due up to ``target`` in time order, then leave the clock at ``target``."""
        async with self._advance_lock:
            self._ran = ran = []
            try:
                while (due := self._next_due(GLOBAL_LANE, format_instant(target))) is not None:
                    if parse_instant(due) > self.clock.now():
                        self._move_clock(parse_instant(due))
                    await self._lane(GLOBAL_LANE).settled()
                if target > self.clock.now():
                    self._move_clock(target)
                await self._drain()
            finally:
                self._ran = None
        return sorted(ran, key=lambda summary: summary["dueAt"])

    async def run_due(self) -> list[dict[str, Any]]:
        """Run what is due at simulated now (and wait for it): ``advance`` by zero."""
        return await self.advance(self.clock.now())

    # -- lanes ---------------------------------------------------------------------------------------------------

    def _lane(self, name: str) -> _Lane:
        lane = self.lanes.get(name)
        if lane is None:
            bound = GLOBAL_CONCURRENCY if name == GLOBAL_LANE else self.lane_concurrency
            lane = self.lanes[name] = _Lane(self, name, bound)
        return lane

    def _wake(self, name: str) -> None:
        if not self._started:
            return
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # a job added before serving (a --scenario at start-up): ``start`` wakes its lane
            return
        self._lane(name).wake()

    def _wake_all(self) -> None:
        for lane in list(self.lanes.values()):
            lane.wake()

    async def _drain(self) -> None:
        """Until every lane, including lanes the running jobs add work to, has nothing due left."""
        while True:
            lanes = list(self.lanes.values())
            for lane in lanes:
                await lane.settled()
            if len(self.lanes) == len(lanes) and all(lane.quiet() for lane in self.lanes.values()):
                return

    def _move_clock(self, instant: datetime) -> None:
        """Set the clock and keep it in the store before any job runs at that time, so a crash in the middle of
        ``advance`` cannot resume simulated time below what those jobs already recorded."""
        self.store.set_meta(CLOCK_META_KEY, format_instant(instant))
        self.clock.set_to(instant)

    def _next_due(self, lane: str, until: str | None = None) -> str | None:
        """The earliest unclaimed due time in ``lane`` (by ``until``, if given)."""
        if until is None:
            row = self.store.one("SELECT MIN(due_at) AS due FROM jobs WHERE lane = ? AND claimed = 0", lane)
        else:
            row = self.store.one("SELECT MIN(due_at) AS due FROM jobs WHERE lane = ? AND claimed = 0 "
                                 "AND due_at <= ?", lane, until)
        return row["due"] if row else None

    def _claim(self, lane: str, due_at: str, limit: int) -> list[Job]:
        rows = self.store.all(
            "UPDATE jobs SET claimed = 1 WHERE id IN (SELECT id FROM jobs WHERE lane = ? AND claimed = 0 "
            "AND due_at = ? ORDER BY id LIMIT ?) RETURNING *", lane, due_at, limit,
        )
        return sorted((_job(r, self.epoch) for r in rows), key=lambda job: job.id)

    async def _run(self, job: Job) -> None:
        summary: dict[str, Any] = {"kind": job.kind, "dueAt": job.due_at, **job.payload}
        failed = False
        try:
            handler = self.handlers.get(job.kind)
            if handler is None:
                raise LookupError(f"no handler for job kind {job.kind!r}")
            summary.update(await handler(job) or {})
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a failing job is reported and removed, never retried in a loop
            log.exception("job %s %s failed", job.kind, job.id)
            summary["error"] = f"{type(exc).__name__}: {exc}"
            failed = True
        if not self.current(job):
            return
        finish(self.store, job)  # a handler that returned early recorded nothing: removing its job is enough
        if failed and self.on_failure:
            self.on_failure(job)
        if self._ran is not None:
            self._ran.append(summary)


class _Lane:
    """One lane's loop: claims due jobs in due order, runs them, sleeps until there is something to do."""

    def __init__(self, scheduler: Scheduler, name: str, bound: int) -> None:
        self.scheduler, self.name, self.bound = scheduler, name, bound
        self.running: dict[int, tuple[asyncio.Task[None], float, str]] = {}  # task, started, due_at
        self._wakeup = asyncio.Event()
        self._quiet = asyncio.Event()
        self._closed = False
        self._task = asyncio.get_running_loop().create_task(self._loop(), name=f"lane:{name or 'global'}")

    def wake(self) -> None:
        self._quiet.clear()
        self._wakeup.set()

    def quiet(self) -> bool:
        return self._quiet.is_set()

    async def settled(self) -> None:
        """Wait until nothing is running and nothing is due by the clock's now (or the lane is closed)."""
        if self._closed:
            return
        self.wake()
        await self._quiet.wait()

    async def close(self) -> None:
        self._closed = True
        tasks = [self._task, *(task for task, _, _ in self.running.values())]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.running.clear()
        self._quiet.set()  # an advance waiting on this lane goes on (with the lanes of the new epoch)

    async def _loop(self) -> None:
        while True:
            self._wakeup.clear()
            try:
                timeout = self._step()
            except Exception:  # the loop must survive anything the store throws
                log.exception("scheduler lane %r", self.name)
                timeout = 1.0
            if timeout == 0:
                continue
            try:
                async with asyncio.timeout(timeout):
                    await self._wakeup.wait()
            except TimeoutError:
                pass

    def _step(self) -> float | None:
        """Start what may start; how long to sleep (None: until woken, 0: look again now)."""
        clock = self.scheduler.clock
        now = format_instant(clock.now())
        free = self.bound - len(self.running)
        stalled_until = self._stalled_until()
        due = self.scheduler._next_due(self.name, now) if free > 0 else None
        if due is not None and (stalled_until is None or due <= max(d for _, _, d in self.running.values())):
            for job in self.scheduler._claim(self.name, due, free):
                task = asyncio.get_running_loop().create_task(self._run(job))
                self.running[job.id] = (task, time.monotonic(), job.due_at)
            return 0 if len(self.running) < self.bound else None
        if self.running:  # a full lane waits for a slot; a stall deadline only matters while one is free
            return None if stalled_until is None or free <= 0 else max(stalled_until - time.monotonic(), 0.001)
        self._quiet.set()
        upcoming = self.scheduler._next_due(self.name)
        return None if upcoming is None else clock.wall_seconds_until(parse_instant(upcoming))

    def _stalled_until(self) -> float | None:
        """While a running job has run less than ``STALL_SECONDS``, when the last of them stalls."""
        if not self.running:
            return None
        deadline = max(started for _, started, _ in self.running.values()) + STALL_SECONDS
        return deadline if deadline > time.monotonic() else None

    async def _run(self, job: Job) -> None:
        try:
            await self.scheduler._run(job)
        finally:
            self.running.pop(job.id, None)
            self.wake()


def _job(row: dict[str, Any], epoch: int = 0) -> Job:
    return Job(row["id"], row["due_at"], row["kind"], row["lane"], row["key"], loads(row["payload"]), epoch)
