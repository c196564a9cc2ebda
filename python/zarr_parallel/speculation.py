"""Speculative copies of slow jobs in a dask run (issue 34): dask has none for plain futures.

When no job is left to start and a worker is idle, that worker gets a copy of the oldest running
job that a copy would finish first (the local executor's rule, src/plan/copy_rule.hpp, without
heartbeat progress here): once a few jobs finished (3, half the jobs in a run of fewer than 6), a
job that has run longer than the median finished job; the first result wins and the other future
is cancelled. Correct because a job's output is deterministic and
every file is written by an atomic rename: a loser that still runs rewrites the same bytes."""
import asyncio
import sys
import time


def finished_before_copies(jobs):
    """As plan/copy_rule.cpp: 3, half the jobs (at least 1) in a run of fewer than 6."""
    return min(3, max(1, jobs // 2))


class DaskJobs:
    """Runs `jobs` through `submit(job, worker)` (worker: None, or the address a copy must run on)
    until each has one successful result; `log(text)` reports copies."""

    def __init__(self, client, submit, jobs, log):
        self.client = client
        self.submit = submit
        self.live = {submit(job, None): job for job in jobs}
        self.unfinished = set(jobs)
        self.needed = finished_before_copies(len(self.unfinished))
        self.copied = set()
        self.seen = {}  # job -> when it was first seen running
        self.durations = []
        self.log = log

    def run(self, on_done):
        from dask.distributed import wait
        while self.unfinished:
            try:
                done, _ = wait(list(self.live), timeout=1.0, return_when="FIRST_COMPLETED")
            except (TimeoutError, asyncio.TimeoutError):
                done = ()
            for future in done:
                if self._finished(future):
                    on_done(len(self.unfinished))
            if self.unfinished:
                self._copy_stragglers()

    def _finished(self, future):
        """True when `future` is the first success of its job; raises a job's error when no copy of
        it is left running."""
        job = self.live.pop(future, None)
        if job is None:
            return False  # the other copy of a job that won earlier in the same wait(): cancelled
        if job not in self.unfinished:
            return False  # the other copy won
        others = [f for f, j in self.live.items() if j == job]
        if future.status != "finished":
            if others:
                self.log(f"job {job}: one copy failed, the other goes on")
                return False
            future.result()  # raises the job's error
        self.unfinished.discard(job)
        if job in self.seen:  # one that ended between two looks has no time to count
            self.durations.append(time.monotonic() - self.seen[job])
        for other in others:
            del self.live[other]
            other.cancel()
            self.log(f"job {job}: the {'copy' if job in self.copied else 'first'} finished first, "
                     "cancelled the other")
        return True

    def _running(self):
        """Per running job, its worker; and the idle workers."""
        by_key = {f.key: j for f, j in self.live.items()}
        running, idle = {}, []
        now = time.monotonic()
        for worker, keys in self.client.processing().items():
            if not keys:
                idle.append(worker)
            for key in keys:
                if key in by_key:
                    running.setdefault(by_key[key], worker)
                    self.seen.setdefault(by_key[key], now)
        return running, idle

    def _copy_stragglers(self):
        running, idle = self._running()
        if not idle or len(running) < len(self.unfinished) or len(self.durations) < self.needed:
            return  # some job still waits for a worker, or too few finished for a median
        # The median as the local executor takes it: the middle, or upper middle, of the sorted times.
        # A job with no progress report is expected at twice its time so far once past the median,
        # and a copy at the median: the copy wins once the job has run longer than the median.
        after = sorted(self.durations)[len(self.durations) // 2]
        now = time.monotonic()
        for job in sorted(running, key=lambda j: self.seen[j]):
            if not idle:
                break
            if job in self.copied or now - self.seen[job] <= after:
                continue
            self.copied.add(job)
            worker = idle.pop()
            self.live[self.submit(job, worker)] = job
            self.log(f"job {job}: started a copy on {worker}, the first was slow")


def stderr_log(text):
    print(f"zarr-parallel: {text}", file=sys.stderr)
