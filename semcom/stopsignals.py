"""Stop a long-running command cleanly on SIGINT / SIGTERM (results are written, not lost).

``with StopOnSignals() as stop:`` replaces the handlers of SIGINT and SIGTERM for the duration
of the block: the first signal sets ``stop.event`` (a ``threading.Event``, so worker threads
can poll it too) and records ``stop.signum`` instead of raising ``KeyboardInterrupt`` in
whatever code runs (a Qt slot, a GNU Radio call) or killing the process. The command then ends
its loop, writes what it has and returns ``stop.exit_status`` (128 + signal number: 130 for
SIGINT, 143 for SIGTERM, the shell's convention). A second signal raises ``KeyboardInterrupt``
(the way out when flushing hangs). A signal the process ignores (``SIG_IGN``, e.g. SIGINT of a
background job started by a non-interactive shell) stays ignored. Outside the main thread the
handlers cannot be changed and the block only provides the event.
"""

from __future__ import annotations

import signal
import threading
from typing import Callable

__all__ = ["StopOnSignals"]


class StopOnSignals:
    """Context manager turning SIGINT / SIGTERM into a stop request (see the module docstring).

    ``on_signal(signum)``, when given, is called from the handler (main thread) on the first signal.
    """

    def __init__(self, signals: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM),
                 on_signal: Callable[[int], None] | None = None, event: threading.Event | None = None):
        self.signals = tuple(signals)
        self.on_signal = on_signal
        self.event = event if event is not None else threading.Event()
        self.signum: int | None = None
        self._previous: dict[int, object] = {}

    @property
    def name(self) -> str | None:
        """``"SIGINT"`` / ``"SIGTERM"`` once a signal arrived, else None."""
        return None if self.signum is None else signal.Signals(self.signum).name

    @property
    def exit_status(self) -> int:
        """128 + the signal number (0 when no signal arrived)."""
        return 0 if self.signum is None else 128 + int(self.signum)

    def is_set(self) -> bool:
        return self.event.is_set()

    def _handle(self, signum, frame) -> None:
        if self.signum is not None:  # second signal: give up flushing
            raise KeyboardInterrupt
        self.signum = signum
        self.event.set()
        if self.on_signal is not None:
            self.on_signal(signum)

    def __enter__(self) -> "StopOnSignals":
        if threading.current_thread() is threading.main_thread():
            for s in self.signals:
                prev = signal.getsignal(s)
                if prev is signal.SIG_IGN:
                    continue
                self._previous[s] = prev
                signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for s, prev in self._previous.items():
            signal.signal(s, prev if prev is not None else signal.SIG_DFL)
        self._previous.clear()
