"""nipype's MultiProc plugin, made to stop when a worker process dies instead of waiting forever.

When a worker is killed (by the kernel's out-of-memory killer, or any signal), the process pool
breaks: every running task's future fails with ``BrokenProcessPool``. nipype's MultiProc reads
task results in a future's done-callback, which then raises, so the result never arrives and
the scheduler polls for it forever. Here the failure is recorded instead, the node that was
running is reported as crashed (crash file included), and the run stops with
:class:`WorkerDiedError`.
"""

from __future__ import annotations

from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool

from nipype.pipeline.plugins.multiproc import MultiProcPlugin


class WorkerDiedError(RuntimeError):
    """A worker process of the run died (killed by a signal, most often for lack of memory)."""


class SafeMultiProcPlugin(MultiProcPlugin):
    """MultiProc that ends the run with :class:`WorkerDiedError` when a worker process dies."""

    def __init__(self, plugin_args=None):
        super().__init__(plugin_args=plugin_args)
        self._task_names: dict[int, str] = {}
        self._worker_errors: dict[Future, BaseException] = {}
        self._died: str | None = None

    def _submit_job(self, node, updatehash=False):
        if self._died is not None:  # the pool is broken: nothing more can run
            raise WorkerDiedError(self._died)
        taskid = super()._submit_job(node, updatehash=updatehash)
        self._task_names[taskid] = node.fullname
        return taskid

    def _async_callback(self, args: Future) -> None:
        error = None if args.cancelled() else args.exception()
        if error is None and not args.cancelled():
            super()._async_callback(args)
        elif error is not None:  # keyed by future: the task id may not be known yet
            self._worker_errors[args] = error

    def _get_result(self, taskid):
        future = self._task_obj.get(taskid)
        error = None if future is None else self._worker_errors.pop(future, None)
        if error is None:
            return super()._get_result(taskid)
        name = self._task_names.get(taskid, f"task {taskid}")
        if not isinstance(error, BrokenProcessPool):  # this task alone failed
            raise WorkerDiedError(f"{name}: the worker could not run it ({error!r})") from error
        if self._died is None:  # every running task fails with the pool: name them all
            running = [name] + [
                self._task_names.get(t, f"task {t}")
                for t, f in self._task_obj.items()
                if t != taskid and f in self._worker_errors
            ]
            self._died = (
                "a worker process died (killed by a signal; most often the system ran out of "
                "memory: lower --nprocs or raise the memory available); running at the time: "
                + ", ".join(running)
            )
        raise WorkerDiedError(self._died) from error

    def _send_procs_to_workers(self, updatehash=False, graph=None):
        if self._died is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)
            raise WorkerDiedError(self._died)
        super()._send_procs_to_workers(updatehash=updatehash, graph=graph)
