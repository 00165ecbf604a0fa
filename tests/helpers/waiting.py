"""Readiness barriers for tests: wait for a condition, never for a guessed number of seconds.

`wait_until` polls a condition until a deadline and fails naming what it waited for. `StartLine` lets a few
processes begin their work at the same moment once every one of them is ready (Airflow imported, DAGs parsed),
however long that takes on a busy machine. Imports nothing but the standard library: the worker scripts next to
this file (`dag_runner.py`, `token_worker.py`) use it too.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path


def wait_until(predicate, timeout: float, what: str, every: float = 0.1):
    """Call `predicate` until it returns something truthy, and return that. After `timeout` seconds raise an
    AssertionError that names `what` and the last value seen. An exception from `predicate` is not caught."""
    deadline = time.monotonic() + timeout
    while True:
        last = predicate()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what} (last: {last!r})")
        time.sleep(every)


class StartLine:
    """Processes that must start their work at the same moment: each reports ready, then all are released at once.

    The test starts the processes with `start`, each one (a worker script) calls `StartLine.ready_then_wait(folder)`
    when its start-up is done, and `release` lets them go once all are ready. Their output goes to files in the
    folder, so that no process can block on a full pipe while the others are still starting.
    """

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, name: str, argv: list[str], **popen_kw) -> subprocess.Popen:
        with open(self.folder / f"{name}.out", "w") as out, open(self.folder / f"{name}.err", "w") as err:
            self.procs[name] = subprocess.Popen(argv, stdout=out, stderr=err, text=True, **popen_kw)
        return self.procs[name]

    def _ready(self) -> bool:
        for name, p in self.procs.items():
            if p.poll() is not None:
                err = self.output(name)[1][-3000:]
                raise AssertionError(f"{name} exited ({p.returncode}) before it was ready:\n{err}")
        return len(list(self.folder.glob("ready-*"))) >= len(self.procs)

    def release(self, timeout: float = 300) -> float:
        """Wait until every started process is ready, then let all of them go; return the seconds waited."""
        started = time.monotonic()
        try:
            wait_until(self._ready, timeout, f"{len(self.procs)} processes to be ready", every=0.1)
        except AssertionError:
            self.kill()
            raise
        (self.folder / "go").touch()
        return time.monotonic() - started

    def finish(self, name: str, timeout: float) -> tuple[int, str, str]:
        """Wait for one process to end; (exit code, stdout, stderr)."""
        self.procs[name].wait(timeout=timeout)
        return (self.procs[name].returncode, *self.output(name))

    def output(self, name: str) -> tuple[str, str]:
        return tuple((self.folder / f"{name}.{kind}").read_text(errors="replace") for kind in ("out", "err"))

    def kill(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                p.kill()
                p.wait(timeout=30)

    @staticmethod
    def ready_then_wait(folder: str | Path, timeout: float = 900) -> None:
        """In the worker: say "ready", then wait for the start signal (checked every 10 ms)."""
        folder = Path(folder)
        (folder / f"ready-{os.getpid()}").touch()
        wait_until((folder / "go").exists, timeout, "the start signal", every=0.01)
