"""Stop a run cleanly on Ctrl-C (SIGINT) or SIGTERM, losing nothing.

A compiled chunk cannot be interrupted, so a signal only sets a flag; the
driver polls it between chunks (which it keeps under about half a second) and
stops with the chunk that just finished. The caller then writes its
checkpoint and run record and exits with ``exit_code`` (130 for SIGINT, 143
for SIGTERM), so scripts can tell an interrupted run from a finished one.

A second Ctrl-C means "now": it raises KeyboardInterrupt at once, except while
a checkpoint is being written (``with stop.protect():``), where it waits for
the write to finish, so no file is ever left half-written.

    with StopOnSignal() as stop:
        result = train_loop(..., should_stop=stop)
        with stop.protect():
            save(...)
    if stop.signum:
        sys.exit(stop.exit_code)
"""

import contextlib
import signal
import threading

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopOnSignal:
    """Context manager: catch SIGINT/SIGTERM, remember the first, stop politely.

    Calling the object (``stop()``) tells whether a stop was requested. Outside
    the main thread (where Python cannot install handlers) it does nothing and
    never requests a stop.
    """

    def __init__(self):
        self.signum: int | None = None
        self._previous: dict = {}
        self._protected = 0
        self._pending_exit = False

    def __call__(self) -> bool:
        return self.signum is not None

    @property
    def exit_code(self) -> int:
        """128 + the signal number (130 for SIGINT, 143 for SIGTERM), else 0."""
        return 0 if self.signum is None else 128 + self.signum

    @property
    def name(self) -> str:
        return "" if self.signum is None else signal.Signals(self.signum).name

    def _handle(self, signum, frame):
        if self.signum is None:
            self.signum = signum
            return
        if signum == signal.SIGINT:  # the second Ctrl-C: stop now
            if self._protected:
                self._pending_exit = True
            else:
                raise KeyboardInterrupt

    @contextlib.contextmanager
    def protect(self):
        """A block a second Ctrl-C may not cut (e.g. writing a checkpoint)."""
        self._protected += 1
        try:
            yield
        finally:
            self._protected -= 1
            if self._pending_exit and not self._protected:
                self._pending_exit = False
                raise KeyboardInterrupt

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for signum in SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc):
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()
        return False
