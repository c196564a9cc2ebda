"""Speculative copies of slow jobs in a dask run (issue 34): dask has none for plain futures.

When no job is left to start and a worker is idle, that worker gets a copy of the oldest running
job once the job has run 5 s and twice the median job time (the local executor's rule); the first
result wins and the other future is cancelled. Correct because a job's output is deterministic and
every file is written by an atomic rename: a loser that still runs rewrites the same bytes."""
import asyncio
import sys
import time

AFTER_SECONDS = 5.0
AFTER_MEDIAN = 2.0


class DaskJobs:
    """Runs `jobs` through `submit(job, worker)` (worker: None, or the address a copy must run on)
    until each has one successful result; `log(text)` reports copies."""

    def __init__(self, client, submit, jobs, log):
        self.client = client
        self.submit = submit
        self.live = {submit(job, None): job for job in jobs}
        self.unfinished = set(jobs)
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
        job = self.live.pop(future)
        if job not in self.unfinished:
            return False  # the other copy won
        others = [f for f, j in self.live.items() if j == job]
        if future.status != "finished":
            if others:
                self.log(f"job {job}: one copy failed, the other goes on")
                return False
            future.result()  # raises the job's error
        self.unfinished.discard(job)
        self.durations.append(time.monotonic() - self.seen.get(job, time.monotonic()))
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
        if not idle or len(running) < len(self.unfinished):
            return  # some job still waits for a worker
        # The median as the local executor takes it: the middle, or upper middle, of the sorted times.
        median = sorted(self.durations)[len(self.durations) // 2] if self.durations else 0.0
        after = max(AFTER_SECONDS, AFTER_MEDIAN * median)
        now = time.monotonic()
        for job in sorted(running, key=lambda j: self.seen[j]):
            if not idle:
                break
            if job in self.copied or now - self.seen[job] < after:
                continue
            self.copied.add(job)
            worker = idle.pop()
            self.live[self.submit(job, worker)] = job
            self.log(f"job {job}: started a copy on {worker}, the first was slow")


def stderr_log(text):
    print(f"zarr-parallel: {text}", file=sys.stderr)
