"""A command's streaming pipeline on Ray Data, for batches where a model should stay busy.

A command that declares ``streaming = "package.module:Class"`` in its manifest is split into
three stages, and ``medface batch --engine ray`` runs it as one Ray Data pipeline::

    items -> map(prepare)          CPU tasks: read, decode, detect, align (one item each)
          -> map_batches(Model)    an actor pool: each actor loads the model once and runs it
                                   on batches (num_gpus per actor when GPUs exist)
          -> map(finish)           CPU tasks: the command's Result from the model's output,
                                   written by the runner like the command's own outputs

The stages class (the plugin's) has this contract::

    class Stages:                                   # constructed without arguments
        def prepare(self, values: dict) -> dict     # one item's bound parameters -> numpy arrays / numbers
                                                    # (a MedfaceError is recorded as the item's failure)
        def placeholder(self) -> dict               # a payload of the right shapes for a failed item
        def model(self, values: dict, device: str)  # -> callable: stacked payloads -> dict of arrays
        def finish(self, values: dict, payload: dict, output: dict) -> Result

``values`` are the parameters as the manifest binds them (converted, range-checked, defaults
filled); the model stage gets the first item's, so what it reads (the model package, the
device) must be the same for the whole batch (given once on the command line).

A failed ``prepare`` travels on as the placeholder with its error row, is skipped by the model
and comes out as a ``failed`` row; ``finish`` runs through :func:`medface.plugin.runner.run_command`
with the stage as the implementation, so result.json, the report and the provenance are what
the command writes. Ray restarts a stage's actor that died and retries its task once; a second
death stops the pipeline (:class:`~medface.batches.engines.RayEngine` then runs the unfinished
items as one Ray task each).
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import time
import warnings
from collections.abc import Callable, Iterable

import numpy as np

from .engines import ATTEMPTS, Task, crash_row
from .worker import DONE, FAILED, REFUSED, first_line, headline, worker_name

#: the CPU stages are Ray tasks retried once when their worker dies (a second death raises, which
#: stops the pipeline, and the engine runs what it had not finished one by one); the model's
#: actor is restarted once and its task retried once (Ray Data's default for actors: forever, and a
#: pipeline whose actors keep dying was seen to hang rather than fail, hence the CPU stages as tasks)
TASK_RETRY_ONCE = {"max_retries": ATTEMPTS - 1, "retry_exceptions": False}
RETRY_ONCE = {"max_restarts": ATTEMPTS - 1, "max_task_retries": ATTEMPTS - 1}
ERROR = "_medface_error"  # the column carrying a failed item's row (JSON), "" when it is fine


def load_stages(python_name: str, command: str):
    """The plugin's stages object, imported the way the registry imports the command."""
    from ..plugin.registry import get_registry

    registry = get_registry()
    return registry.load_callable(registry.command(command)[0], python_name)()


@functools.lru_cache(maxsize=4)
def _stages(python_name: str, command: str):
    """The stages object of a worker process, made once."""
    return load_stages(python_name, command)


def bound_values(command: str, params: dict) -> dict:
    from ..plugin.params import bind
    from ..plugin.registry import get_registry

    return dict(bind(get_registry().command(command)[1], params).values)


def _error_row(item_id: str, exc: BaseException) -> dict:
    from ..errors import MedfaceError

    if isinstance(exc, MedfaceError):
        return {"id": item_id, "status": FAILED, "error_class": type(exc).__name__,
                "error_message": first_line(getattr(exc, "message", exc)), "error_hint": first_line(exc.hint or ""),
                "exit_code": exc.exit_code}
    return {"id": item_id, "status": FAILED, "error_class": type(exc).__name__, "error_message": first_line(exc),
            "error_hint": "an internal error of medface or the plugin; rerun the item alone with --verbose",
            "exit_code": 70}


def _prepare(item: dict, *, python_name: str, command: str) -> dict:
    """One item's payload (a Ray task): the stages' ``prepare``, or the placeholder and its error row."""
    stages, started = _stages(python_name, command), time.perf_counter()
    try:
        payload, error = stages.prepare(bound_values(command, json.loads(item["params"]))), ""
    except Exception as exc:  # noqa: BLE001 - recorded as the item's row
        payload, error = stages.placeholder(), json.dumps(_error_row(item["id"], exc))
    return {**item, **payload, ERROR: error, "_prepare_s": time.perf_counter() - started}


_META = ("id", "params", "out_dir", ERROR, "_prepare_s")


class _Model:
    """The actor: loads the model once, runs it on the good rows of each batch."""

    def __init__(self, python_name: str, command: str, first_params: dict, device: str):
        self.stages = load_stages(python_name, command)
        self.model = self.stages.model(bound_values(command, first_params), device)

    def __call__(self, batch: dict) -> dict:
        good = np.array([not e for e in batch[ERROR]], bool)
        merged = dict(batch)
        if good.any():
            result = self.model({k: np.asarray(v)[good] for k, v in batch.items() if k not in _META})
            for k, v in result.items():
                v = np.asarray(v)
                full = np.zeros((len(good),) + v.shape[1:], v.dtype)
                full[good] = v
                merged[f"out_{k}"] = full
        return merged


def _finish(row: dict, *, python_name: str, command: str, out_param: str, options: dict) -> dict:
    """One item's row (a Ray task): the command's Result from the model's output, written by the runner."""
    from ..plugin.runner import run_command
    from ..policy import RunOptions

    stages = _stages(python_name, command)
    item_id, started = row["id"], time.perf_counter()
    if row[ERROR]:
        done = json.loads(row[ERROR])
    else:
        payload = {k: v for k, v in row.items() if k not in _META and not k.startswith("out_")}
        output = {k[4:]: v for k, v in row.items() if k.startswith("out_")}
        done = {"id": item_id}
        try:
            result = run_command(command, {**json.loads(row["params"]), out_param: row["out_dir"]},
                                 options=RunOptions.from_kwargs(options), quiet=True,
                                 implementation=lambda **values: stages.finish(values, payload, output))
        except Exception as exc:  # noqa: BLE001 - recorded as the item's row
            done = _error_row(item_id, exc)
        else:
            done.update(status=REFUSED if result.refused else DONE, exit_code=result.exit_code,
                        error_class="", error_hint="",
                        error_message=first_line(result.refusal or "") if result.refused else "")
            done.update(headline(result.summary))
    done.update(duration_s=round(float(row["_prepare_s"]) + time.perf_counter() - started, 3),
                worker=worker_name(), output=f"items/{item_id}", attempts=1)
    return {"row": json.dumps(done, default=str)}


def model_resources(gpus: int) -> dict:
    """What one model actor reserves: a GPU when the cluster has GPUs; else no CPU of its own,
    so that on a CPU machine the prepare and finish tasks are not left one core short while the
    actor waits for its next batch (it then shares the cores with them)."""
    return {"num_gpus": 1} if gpus else {"num_cpus": 0}


def run_streaming(python_name: str, tasks: Iterable[Task], on_row: Callable[[dict], bool], *,
                  batch_size: int = 32, actors: int | None = None) -> None:
    """Run ``tasks`` through the stages class ``python_name`` on the running Ray cluster: one
    model actor per GPU (one GPU each) when the cluster has GPUs, else ``actors`` (default 1)
    CPU actors beside the CPU tasks."""
    import ray

    tasks = list(tasks)
    if not tasks:
        return
    with _quiet_ray_data(ray):
        _stream(ray, python_name, tasks, on_row, batch_size, actors)


@contextlib.contextmanager
def _quiet_ray_data(ray):
    """Ray Data's own progress (logged line by line to a stdout that is not a terminal) and its
    notes off while the pipeline runs: the batch has its progress bar and summary; its warnings stay."""
    context = ray.data.DataContext.get_current()
    levels = {"ray.data": logging.WARNING, "ray.data._internal.progress": logging.ERROR}
    before = context.enable_progress_bars, {name: logging.getLogger(name).level for name in levels}
    context.enable_progress_bars = False
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)
    try:
        yield
    finally:
        context.enable_progress_bars, previous = before
        for name, level in previous.items():
            logging.getLogger(name).setLevel(level)


def _stream(ray, python_name: str, tasks: list[Task], on_row, batch_size: int, actors: int | None) -> None:
    first = tasks[0]
    gpus = int(ray.cluster_resources().get("GPU", 0))
    n_actors = actors or max(gpus, 1)
    items = [{"id": t.item_id, "params": json.dumps(t.params, default=str), "out_dir": t.out_dir} for t in tasks]
    by_id = {t.item_id: t for t in tasks}
    with warnings.catch_warnings():
        # the retry settings have no named parameter yet in the pinned Ray (2.60): only the
        # deprecated **ray_remote_args carries them
        warnings.filterwarnings("ignore", message=".*ray_remote_args.*deprecated", category=DeprecationWarning)
        ds = ray.data.from_items(items)
        ds = ds.map(_prepare, fn_kwargs={"python_name": python_name, "command": first.command}, **TASK_RETRY_ONCE)
        ds = ds.map_batches(_Model, fn_constructor_args=(python_name, first.command, first.params,
                                                         "cuda" if gpus else "cpu"),
                            batch_size=batch_size, compute=ray.data.ActorPoolStrategy(size=n_actors),
                            batch_format="numpy",
                            **model_resources(gpus), **RETRY_ONCE)
        ds = ds.map(_finish, fn_kwargs={"python_name": python_name, "command": first.command,
                                        "out_param": first.out_param, "options": first.options}, **TASK_RETRY_ONCE)
    seen = set()
    for out in ds.iter_rows():
        row = json.loads(out["row"])
        seen.add(row["id"])
        if not on_row(row):
            return
    for item_id in by_id.keys() - seen:  # lost in the pipeline (a worker that died twice)
        if not on_row(crash_row(by_id[item_id], ATTEMPTS, "(lost in the streaming pipeline)")):
            return

