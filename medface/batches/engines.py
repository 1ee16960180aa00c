"""Where the items run: a process pool on this machine, or Ray tasks on a local or remote cluster.

A command that declares streaming stages runs on Ray as a Ray Data pipeline instead of one
task per item (:mod:`.streaming`). Both engines take :class:`Task` objects and hand every results row to a callback as soon as an
item finishes; the callback returns False to stop the batch (``--max-failures``), and then no
new item starts (the ones in flight finish or are cancelled).

A worker that **dies** (segfault, out-of-memory kill) is retried once and then recorded as
``crashed`` with its exit signal. In the local pool a dying worker breaks the whole pool, so
every item that was in flight is a suspect: each is rerun alone in its own process, which
finds the one that crashes without charging the others an attempt. Ray retries a task whose
worker died by itself (``max_retries=1``) and reports the second death.
"""

from __future__ import annotations

import itertools
import multiprocessing as mp
import signal
import warnings
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field

from ..errors import MedfaceError
from ..threads import share_cores, threads_per_worker
from .worker import CRASHED, run_item, worker_name

ATTEMPTS = 2  # a crashing item runs at most twice


@dataclass(frozen=True)
class Task:
    """One item to run: the command, the item's id, its full parameters and output folder."""

    command: str
    item_id: str
    params: dict
    out_param: str
    out_dir: str
    options: dict = field(default_factory=dict)

    def args(self) -> tuple:
        return self.command, self.item_id, self.params, self.out_param, self.out_dir, self.options


def crash_row(task: Task, attempts: int, how: str) -> dict:
    return {"id": task.item_id, "status": CRASHED, "attempts": attempts, "error_class": "WorkerCrashed",
            "error_message": f"the worker process died {how} on each of {attempts} attempts",
            "error_hint": "a crash or the memory limit: run the item alone to see why (medface <plugin> <command> ...)",
            "exit_code": 70, "worker": "", "duration_s": None, "output": ""}


def describe_exit(code: int | None) -> str:
    if code is None:
        return "without an exit code"
    if code < 0:
        try:
            return f"by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"by signal {-code}"
    return f"with exit code {code}"


class WorkersCannotStart(MedfaceError):
    """A worker process died while it started, before it was given its item: every item would
    fail the same way, so the batch stops (what finished is kept; ``--resume`` goes on)."""


STARTED = "started"  # an isolated child's first message: it is up and runs its item


def _isolated_child(conn, args) -> None:
    conn.send(STARTED)
    conn.send(run_item(*args))
    conn.close()


def run_isolated(task: Task, context) -> tuple[dict | None, int | None]:
    """(row, None) when the item ran to its end alone in a fresh process, (None, exit code) when
    the process died on it; :class:`WorkersCannotStart` when it died before it began the item."""
    parent, child = context.Pipe(duplex=False)
    proc = context.Process(target=_isolated_child, args=(child, task.args()), daemon=True)
    proc.start()
    child.close()
    messages = []
    try:
        while len(messages) < 2:  # blocks until a message comes or the child's end closes (it died)
            messages.append(parent.recv())
    except EOFError:
        pass
    proc.join()
    if not messages:
        raise WorkersCannotStart(
            f"a worker process died as it started ({describe_exit(proc.exitcode)}), before it ran any item",
            hint="workers are started afresh and import the calling script again: a script that calls "
                 "medface.batch must do so under 'if __name__ == \"__main__\":'; otherwise see the worker's "
                 "error printed above")
    return (messages[1], None) if len(messages) == 2 else (None, proc.exitcode)


class LocalEngine:
    """A pool of ``workers`` processes on this machine (spawned: no state shared with the driver)."""

    name = "local"

    def __init__(self, workers: int | None = None):
        self.workers = max(1, int(workers or mp.cpu_count()))
        self.context = mp.get_context("spawn")

    def run(self, tasks: Iterable[Task], on_row: Callable[[dict], bool]) -> None:
        pending: Iterator[Task] = iter(tasks)
        go = True
        while go:
            go, broken, unsent = self._pool_round(pending, on_row)
            if unsent is not None:
                pending = itertools.chain([unsent], pending)  # it never ran: back to the queue
            if broken:
                go = self._isolate(broken, on_row) and go
            elif go and unsent is None:
                break  # the pool ran every task

    def _pool_round(self, pending: Iterator[Task], on_row) -> tuple[bool, list[Task], Task | None]:
        """Run tasks in one pool until they are all done (True, [], None), the callback stops the
        batch (False, [], None) or the pool breaks (go on?, the tasks that were in flight, the task
        whose submission found the pool already broken, if any)."""
        flight: dict[Future, Task] = {}
        window = 2 * self.workers
        unsent: Task | None = None
        delivered = 0
        with ProcessPoolExecutor(self.workers, mp_context=self.context, initializer=share_cores,
                                 initargs=(threads_per_worker(self.workers),)) as pool:
            stop = False

            def fill():
                nonlocal unsent
                while not stop and unsent is None and len(flight) < window:
                    task = next(pending, None)
                    if task is None:
                        return
                    try:
                        flight[pool.submit(run_item, *task.args())] = task
                    except BrokenProcessPool:  # a worker died since the last wait
                        unsent = task

            fill()
            while flight:
                done, _ = wait(flight, return_when=FIRST_COMPLETED)
                for fut in done:
                    task = flight.pop(fut)
                    try:
                        row = fut.result()
                    except BrokenProcessPool:
                        broken = [task, *flight.values()]
                        for f in flight:
                            f.cancel()
                        return not stop, broken, unsent
                    row.setdefault("attempts", 1)
                    delivered += 1
                    if not on_row(row):
                        stop = True
                if not stop:
                    fill()
                elif not flight:
                    break
            if unsent is not None and not delivered:  # a pool that never ran anything: no new pool
                return not stop, [unsent], None           # for it, the task runs alone instead
            return not stop, [], unsent

    def _isolate(self, suspects: list[Task], on_row) -> bool:
        """Each suspect alone in its own process, up to :data:`ATTEMPTS` times in all (the
        broken pool was the first)."""
        go = True
        for task in suspects:
            if not go:
                break
            row, code = None, None
            for attempt in range(2, ATTEMPTS + 1):
                row, code = run_isolated(task, self.context)
                if row is not None:
                    row["attempts"] = attempt
                    break
            go = on_row(row if row is not None else crash_row(task, ATTEMPTS, describe_exit(code)))
        return go


class _DriverFailure(Exception):
    """Carries an exception of the driver's row callback through a pipeline's error handling."""


def use_streaming(stages: str | None, streaming: bool | None, gpus: int) -> bool:
    """Whether a batch runs as the command's streaming pipeline: never without ``stages``; as
    ``streaming`` says when it is True or False; by default (None) only on a cluster with GPUs.
    Why: on CPUs alone the pipeline gave nothing to gain (the model is not the bottleneck) and
    Ray Data's stages cost more than they saved; measured on the 2-core machine, phenotype
    screening after start-up ran at 9.3 photos/s streaming against 21.7 photos/s as one Ray task
    per photo (docs/performance.md)."""
    if not stages:
        return False
    return bool(gpus) if streaming is None else bool(streaming)


class RayEngine:
    """Ray tasks, one CPU each, on the cluster at ``address`` (``"auto"``: the running local
    cluster; None: a new local one with ``workers`` CPUs, shut down at the end); a command with
    streaming ``stages`` runs as its Ray Data pipeline where :func:`use_streaming` says so."""

    def __init__(self, workers: int | None = None, address: str | None = None, stages: str | None = None,
                 streaming: bool | None = None):
        self.workers, self.address, self.stages, self.streaming = workers, address, stages, streaming
        self.name = "ray"  # "ray (streaming)" once :meth:`run` has chosen the pipeline

    def start(self):
        try:
            import ray
        except ImportError:
            from ..errors import ParameterError

            raise ParameterError("the ray engine needs Ray, which is not installed", parameter="engine",
                                 hint="pip install 'medface[batch]' (make install does), or use --engine local") from None

        started = False
        if not ray.is_initialized():
            kwargs = {"address": self.address} if self.address else {"num_cpus": self.workers or mp.cpu_count()}
            ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False, **kwargs)
            started = True
        return ray, started

    def run(self, tasks: Iterable[Task], on_row: Callable[[dict], bool]) -> None:
        ray, started = self.start()
        try:
            streaming = use_streaming(self.stages, self.streaming, int(ray.cluster_resources().get("GPU", 0)))
            self.name = "ray (streaming)" if streaming else "ray"
            if streaming:
                self._run_streaming(ray, list(tasks), on_row)
            else:
                self._run(ray, iter(tasks), on_row)
        finally:
            if started:
                ray.shutdown()

    def _run_streaming(self, ray, tasks: list[Task], on_row) -> None:
        """The command's streaming pipeline; if the pipeline itself fails (a worker of one of its
        stages died twice on an item, which stops a Ray Data pipeline), the items it had not
        finished run as one Ray task each, where a crash is one item's row."""
        from .streaming import run_streaming

        seen: set[str] = set()

        def record(row: dict) -> bool:
            seen.add(row["id"])
            try:
                return on_row(row)
            except BaseException as exc:  # the driver's own failure (a full disk): not the pipeline's
                raise _DriverFailure() from exc

        try:
            run_streaming(self.stages, tasks, record)
        except _DriverFailure as exc:
            raise exc.__cause__ from None
        except Exception as exc:  # noqa: BLE001 - the pipeline's failure
            rest = [t for t in tasks if t.item_id not in seen]
            reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
            warnings.warn(f"the streaming pipeline stopped ({type(exc).__name__}: {reason}); its {len(rest)} "
                          "unfinished items run as one Ray task each", RuntimeWarning, stacklevel=2)
            self._run(ray, iter(rest), on_row)

    def _run(self, ray, pending: Iterator[Task], on_row) -> None:
        remote = ray.remote(num_cpus=1, max_retries=ATTEMPTS - 1, retry_exceptions=False)(run_item)
        window = 2 * max(1, int(ray.cluster_resources().get("CPU", 1)))
        flight: dict = {}
        stop = False

        def fill():
            while not stop and len(flight) < window:
                task = next(pending, None)
                if task is None:
                    return
                flight[remote.remote(*task.args())] = task

        fill()
        while flight:
            ready, _ = ray.wait(list(flight), num_returns=1)
            for ref in ready:
                task = flight.pop(ref)
                try:
                    row = ray.get(ref)
                    row.setdefault("attempts", 1)
                except (ray.exceptions.WorkerCrashedError, ray.exceptions.OutOfMemoryError,
                        ray.exceptions.NodeDiedError) as exc:
                    row = crash_row(task, ATTEMPTS, f"({type(exc).__name__})")
                except ray.exceptions.RayTaskError as exc:  # run_item catches everything; a failure of Ray itself
                    row = crash_row(task, 1, f"(Ray task error: {str(exc).splitlines()[0][:200]})")
                if not on_row(row):
                    stop = True
            if stop:
                for ref in flight:
                    ray.cancel(ref, force=True)
                break
            fill()


def make_engine(name: str, workers: int | None = None, address: str | None = None, stages: str | None = None,
                streaming: bool | None = None):
    """The engine ``name``; ``stages``: the command's streaming stages class and ``streaming``
    whether to use them (:func:`use_streaming`), both for the ray engine."""
    from ..errors import ParameterError

    if name == "local":
        if address:
            raise ParameterError("--ray-address needs --engine ray", parameter="ray_address")
        return LocalEngine(workers)
    if name == "ray":
        return RayEngine(workers, address, stages, streaming)
    raise ParameterError(f"unknown engine {name!r}: local or ray", parameter="engine")


__all__ = ["Task", "LocalEngine", "RayEngine", "make_engine", "worker_name"]
