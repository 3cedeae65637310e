"""Stopping on SIGTERM or SIGINT with nothing lost: what preemption and time limits on a cluster need.

Slurm, Kubernetes and a user's Ctrl-C send SIGTERM or SIGINT first and SIGKILL after a grace period. Answers in
flight at that moment already cost minutes of GPU time, so the first signal only *asks* to stop: long-running loops
stop taking new work, wait a bounded time for what is in flight, write it, and leave with STOPPED_EXIT and a
one-line summary of what a rerun will redo. A second signal stops at once, still between two whole records (the
handlers run between steps of the event loop or between Python statements, never inside a write).

    with GracefulStop() as stop:          # installs the handlers, restores the old ones on exit
        for item in work:
            if stop.requested:
                break
            ...
"""
import asyncio
import signal
import threading

# EX_TEMPFAIL from sysexits.h: "try again later". Distinct from success (0), a user error (1), argparse (2) and an
# unhandled Ctrl-C (130), so a job script or Slurm's --requeue can tell "stopped, resumable" from "failed".
STOPPED_EXIT = 75
SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Stopped(Exception):
    """A run that ended early on a signal after saving what was finished; the message says what a rerun redoes."""

    exit_code = STOPPED_EXIT


class GracefulStop:
    """First SIGTERM/SIGINT: `requested` becomes true and the on_request callbacks run. Second: `urgent` too, and
    with `raise_on_second`, Stopped is raised where the program is.

    Inside an event loop, use `install_in(loop)` so the handlers run as loop callbacks. Only the main thread may
    install signal handlers; elsewhere (a test calling a command in a thread) this does nothing.
    """

    def __init__(self, raise_on_second=True, on_request=None):
        self.requested = False
        self.urgent = False
        self.signal_name = None
        self.raise_on_second = raise_on_second
        self.on_request = [on_request] if on_request else []
        self._old = {}
        self._loop = None

    def _handle(self, signum, frame=None):
        name = signal.Signals(signum).name
        if self.requested:
            self.urgent = True
            for callback in self.on_request:
                callback(urgent=True)
            if self.raise_on_second and self._loop is None:
                raise Stopped(f"{name} again: stopped at once")
            return
        self.requested = True
        self.signal_name = name
        for callback in self.on_request:
            callback(urgent=False)

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in SIGNALS:
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def install_in(self, loop):
        """Route the signals through the running loop instead (no handler may interrupt a coroutine midway)."""
        if threading.current_thread() is not threading.main_thread():
            return self
        self._loop = loop
        for sig in SIGNALS:
            self._old.setdefault(sig, signal.getsignal(sig))
            loop.add_signal_handler(sig, self._handle, sig)
        return self

    def __exit__(self, *exc):
        if self._loop is not None:
            for sig in SIGNALS:
                try:
                    self._loop.remove_signal_handler(sig)
                except (RuntimeError, ValueError):  # the loop is already closed
                    pass
        for sig, old in self._old.items():
            signal.signal(sig, old if old is not None else signal.SIG_DFL)
        self._old = {}
        return False


async def wait_or_timeout(aws, timeout):
    """Wait up to `timeout` seconds for the awaitables; return (done, pending) without cancelling the pending."""
    if not aws:
        return set(), set()
    return await asyncio.wait(aws, timeout=timeout)


async def unless_stopped(coro, stop):
    """Await `coro` (a wait for servers, say), cancelling it at the first stop request; True if it finished, False
    if a signal stopped it. A wait of minutes must not make SIGTERM wait too."""
    if stop.requested:
        coro.close()
        return False
    task = asyncio.ensure_future(coro)

    def cancel(urgent):
        task.cancel()

    stop.on_request.append(cancel)
    try:
        await task
        return True
    except asyncio.CancelledError:
        outer = asyncio.current_task()
        if stop.requested and not (hasattr(outer, "cancelling") and outer.cancelling()):
            return False
        raise
    finally:
        stop.on_request.remove(cancel)
