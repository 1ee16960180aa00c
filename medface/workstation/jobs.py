"""Commands run by the workstation: one worker process per run, so the app stays responsive.

A :class:`Job` runs ``medface.run(command, **params)`` in a fresh (spawned) Python process. The
worker reports each stage the command announces, then its outcome: the result's status,
summary, warnings and output folder, or the error's class, one-line message and exit code.
The app polls :meth:`Job.poll`; :meth:`Job.cancel` stops the worker (terminate, then kill).
A worker that dies without reporting (a crash, the out-of-memory killer) ends the job as
failed with the exit code or signal; nothing is lost but that run.
"""

from __future__ import annotations

import multiprocessing
import queue
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

RUNNING, DONE, REFUSED, FAILED, CANCELLED = "running", "done", "refused", "failed", "cancelled"
FINISHED = (DONE, REFUSED, FAILED, CANCELLED)


@dataclass
class Job:
    """One run of a command in a worker process."""

    command: str
    out_dir: Path
    state: str = RUNNING
    stages: list[str] = field(default_factory=list)
    error: str = ""
    exit_code: int | None = None
    summary: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None
    _process: multiprocessing.Process | None = field(default=None, repr=False)
    _messages: object = field(default=None, repr=False)

    @property
    def done(self) -> bool:
        return self.state in FINISHED

    @property
    def seconds(self) -> float:
        return (self.finished or time.monotonic()) - self.started

    @property
    def progress_text(self) -> str:
        if self.state == RUNNING:
            return f"{len(self.stages)}. {self.stages[-1]}" if self.stages else "starting the worker"
        return {DONE: "finished", REFUSED: "input refused", FAILED: "failed", CANCELLED: "cancelled"}[self.state]

    def poll(self) -> bool:
        """Take the worker's news; True when something changed."""
        if self.done:
            return False
        changed = False
        while True:
            try:
                message = self._messages.get_nowait()
            except (queue.Empty, EOFError, OSError):
                break
            changed |= self._take(message)
            if self.done:
                self._reap()
                return True
        if not self._process.is_alive():
            self._process.join(timeout=1)
            try:  # a last message may have arrived between the two checks
                changed |= self._take(self._messages.get(timeout=0.5))
            except (queue.Empty, EOFError, OSError):
                pass
            if not self.done:
                self._end(FAILED, error=_death_message(self._process.exitcode), exit_code=70)
            self._reap()
            return True
        return changed

    def wait(self, timeout: float = 600.0, interval: float = 0.1) -> "Job":
        """Block until the job ends (for scripts and tests; the app polls)."""
        deadline = time.monotonic() + timeout
        while not self.done and time.monotonic() < deadline:
            self.poll()
            time.sleep(interval)
        if not self.done:
            raise TimeoutError(f"{self.command} still running after {timeout:.0f} s")
        return self

    def cancel(self) -> None:
        """Stop the worker; the job ends as cancelled (its output folder keeps what was written)."""
        if self.done:
            return
        process = self._process
        process.terminate()
        process.join(timeout=3)
        if process.is_alive():
            process.kill()
            process.join(timeout=3)
        self._end(CANCELLED, error="cancelled by the user")
        self._reap()

    def _take(self, message: tuple) -> bool:
        kind, payload = message
        if kind == "stage":
            self.stages.append(payload)
        elif kind == "result":
            self.summary = payload["summary"]
            self.warnings = payload["warnings"]
            refused = payload["status"] == "refused"
            self._end(REFUSED if refused else DONE, error=payload.get("refusal") or "", exit_code=8 if refused else 0)
        elif kind == "error":
            self._end(FAILED, error=payload["message"], exit_code=payload["exit_code"])
        return True

    def _end(self, state: str, *, error: str = "", exit_code: int | None = None) -> None:
        self.state, self.error, self.exit_code = state, error, exit_code
        self.finished = time.monotonic()

    def _reap(self) -> None:
        if self._process is not None and not self._process.is_alive():
            self._process.close()
            self._process = None
            self._messages = None


def start_job(command: str, params: dict, out_dir: Path, out_param: str | None = "out") -> Job:
    """Run ``command`` with ``params`` (paths and values) in a new worker; its output parameter
    ``out_param`` is set to ``out_dir`` (None: a command that writes no output folder)."""
    context = multiprocessing.get_context("spawn")  # no fork of a process that holds VTK and an event loop
    messages = context.Queue()
    process = context.Process(target=_work, args=(messages, command, {**params, **({out_param: str(out_dir)} if out_param else {})}), daemon=True,
                              name=f"medface-{command}")
    process.start()
    return Job(command=command, out_dir=Path(out_dir), _process=process, _messages=messages)


def _death_message(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        return f"the worker stopped with {name} before finishing (out of memory?); the app keeps working"
    return f"the worker stopped with exit code {exitcode} before finishing; the app keeps working"


def _work(messages, command: str, params: dict) -> None:  # runs in the worker process
    import medface
    from medface.errors import MedfaceError
    from medface.progress import add_stage_listener

    add_stage_listener(lambda _command, _number, text: messages.put(("stage", text)))
    try:
        result = medface.run(command, **params)
    except MedfaceError as exc:
        messages.put(("error", {"message": one_line(str(exc)), "exit_code": exc.exit_code}))
    except Exception as exc:  # a bug: the app shows it and goes on
        messages.put(("error", {"message": one_line(f"internal error: {type(exc).__name__}: {exc}"),
                                "exit_code": 70}))
    else:
        messages.put(("result", {"status": result.status, "refusal": one_line(result.refusal),
                                 "summary": _plain(result.summary), "warnings": [str(w) for w in result.warnings]}))


def one_line(text: str) -> str:
    """The first line of a message, at most 500 characters (what the page shows)."""
    first = text.strip().splitlines()[0] if text.strip() else ""
    return first[:500]


def _plain(summary: dict) -> dict:
    """The summary with values a queue can carry and a page can show."""
    out = {}
    for key, value in (summary or {}).items():
        out[str(key)] = value if isinstance(value, (str, int, float, bool)) or value is None else str(value)
    return out
