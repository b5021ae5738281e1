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
        error = args.exception()
        if error is None:
            super()._async_callback(args)
            return
        self._worker_errors[args] = error  # keyed by future: the task id may not be known yet

    def _get_result(self, taskid):
        future = self._task_obj.get(taskid)
        error = None if future is None else self._worker_errors.pop(future, None)
        if error is None:
            return super()._get_result(taskid)
        name = self._task_names.get(taskid, f"task {taskid}")
        if isinstance(error, BrokenProcessPool):
            message = (
                f"a worker process died while running {name} (killed by a signal; most often "
                "the system ran out of memory: lower --nprocs or raise the memory available)"
            )
        else:
            message = f"{name}: the worker could not run it ({type(error).__name__}: {error})"
        self._died = self._died or message
        raise WorkerDiedError(message) from error

    def _send_procs_to_workers(self, updatehash=False, graph=None):
        if self._died is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)
            raise WorkerDiedError(self._died)
        super()._send_procs_to_workers(updatehash=updatehash, graph=graph)
