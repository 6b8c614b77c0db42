"""Shared test helpers: bounded GNU Radio flowgraph runs (a broken flowgraph hangs instead of exiting).

Import them as ``from conftest import run_flowgraph, stop_flowgraph`` (pytest puts ``tests/`` on
``sys.path``). Nothing here imports GNU Radio: the helpers work on any object with
``start()`` / ``stop()`` / ``wait()`` (top blocks, the radio wrappers).
"""

from __future__ import annotations

import threading
import time
from typing import Callable

import pytest

STOP_TIMEOUT = 10.0  # s for stop() + wait() to return


def stop_flowgraph(*graphs, timeout: float = STOP_TIMEOUT) -> None:
    """``stop()`` then ``wait()`` each graph in a daemon thread; fail the test if one takes over ``timeout`` s."""
    for tb in graphs:
        errors: list[BaseException] = []

        def stop_and_wait(tb=tb) -> None:
            try:
                tb.stop()
                tb.wait()
            except BaseException as e:  # re-raised in the test's thread below
                errors.append(e)

        t = threading.Thread(target=stop_and_wait, daemon=True)
        t.start()
        t.join(timeout)
        if t.is_alive():
            pytest.fail(f"{type(tb).__name__}: stop()/wait() did not return within {timeout} s")
        if errors:
            raise errors[0]


def run_flowgraph(tb, until: Callable[[], bool] | None = None, timeout: float = 20.0,
                  feed: Callable[[], None] | None = None) -> bool:
    """Start ``tb``, call ``feed()``, then wait at most ``timeout`` s and stop it (bounded).

    ``until``: polled every 20 ms; the run ends as soon as it holds and the result says whether it
    did. ``until=None``: a finite flowgraph that must finish by itself; the test fails if it
    does not within ``timeout`` s.
    """
    tb.start()
    try:
        if feed is not None:
            feed()
        if until is None:
            waiter = threading.Thread(target=tb.wait, daemon=True)
            waiter.start()
            waiter.join(timeout)
            if waiter.is_alive():
                pytest.fail(f"flowgraph did not finish within {timeout} s")
            return True
        deadline = time.monotonic() + timeout
        while not until():
            if time.monotonic() >= deadline:
                return bool(until())
            time.sleep(0.02)
        return True
    finally:
        stop_flowgraph(tb)
