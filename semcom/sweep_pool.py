"""Independent sweep points on Dask distributed: a local pool of worker processes, or a running cluster.

Why Dask (``README.md``, "Beyond one machine"): a local cluster of 2 worker processes starts in
about 1.5 s here (Ray: about 5 s), it installs 39 MB of pure-Python wheels (Ray: 252 MB), supports
Python 3.11 and numpy < 2, and a cluster is two commands (``dask scheduler``, ``dask worker ADDRESS``).

    with Pool(workers=2) as pool:            # or Pool(cluster="tcp://host:8786")
        for job, result in pool.run(fn, jobs, common):
            ...                              # in completion order; fn(common, job) ran on a worker

``fn`` must be importable by the workers (a module-level function of an installed package); the
driver keeps one result handler, so whatever it writes has one writer. ``worker_cache(key)`` is a
dict that lives as long as the worker process (one per ``key``: the last key only), for what a
worker loads once (model weights) and reuses for every job it runs.

Errors are ``PoolError`` (a ``ValueError``) with one line: an unreachable ``--cluster`` address
names the address and the timeout (no hang), a scheduler without workers says so.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any, Callable, Iterable, Iterator

__all__ = ["Pool", "PoolError", "Progress", "worker_cache", "cluster_address", "CLUSTER_ENV"]

CLUSTER_ENV = "DASK_SCHEDULER_ADDRESS"  # Dask's own variable: the scheduler a client attaches to


class PoolError(ValueError):
    """The pool cannot start or attach (the message names the address / the reason)."""


def cluster_address(arg: str | None) -> str | None:
    """The scheduler address to attach to: ``arg`` (``--cluster``), else ``$DASK_SCHEDULER_ADDRESS``, else None."""
    return (arg or os.environ.get(CLUSTER_ENV) or "").strip() or None


_CACHE: dict[str, dict] = {}


def worker_cache(key: str) -> tuple[dict, bool]:
    """``(cache, fresh)``: this process's dict for ``key`` (a run's fingerprint), ``fresh`` when just made.
    Only the last key is kept, so a long-lived cluster worker does not pile up older runs' models."""
    if key not in _CACHE:
        _CACHE.clear()
        _CACHE[key] = {}
        return _CACHE[key], True
    return _CACHE[key], False


class Pool:
    """A Dask client on a local pool of ``workers`` processes (one thread each, torch/BLAS threads
    ``cpu_count // workers``), or on the scheduler at ``cluster`` (``host:port`` or ``tcp://...``;
    ``workers`` is then ignored: the cluster's size is what it has). ``timeout_s`` bounds connecting
    to a cluster and waiting for its first worker. ``size``: threads available (jobs run at once);
    ``startup_s`` / ``close_s``: seconds to start or attach / to close."""

    def __init__(self, workers: int = 2, cluster: str | None = None, timeout_s: float = 10.0):
        if workers < 1:
            raise PoolError(f"--workers must be >= 1, got {workers}")
        self.workers, self.cluster_address, self.timeout_s = workers, cluster, timeout_s
        self.client = self._cluster = None
        self.size = 0
        self.startup_s = self.close_s = 0.0

    def __enter__(self) -> "Pool":
        t0 = time.perf_counter()
        try:
            from distributed import Client, LocalCluster
        except ImportError as e:  # pragma: no cover - a dependency of the package
            raise PoolError(f"Dask distributed is not installed ({e}); pip install distributed") from None
        if self.cluster_address:
            addr = self.cluster_address
            try:
                from distributed.comm import resolve_address

                resolve_address(addr if "://" in addr else f"tcp://{addr}")
            except (ValueError, OSError) as e:
                raise PoolError(f"--cluster {addr}: bad or unresolvable scheduler address ({e}); "
                                f"give tcp://HOST:PORT") from None
            try:
                self.client = Client(addr, timeout=self.timeout_s, set_as_default=False)
            except Exception as e:  # noqa: BLE001 - OSError, TimeoutError, ValueError (bad address) ...
                raise PoolError(f"--cluster {addr}: no Dask scheduler answered within {self.timeout_s:g} s "
                                f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None
            try:
                self.client.wait_for_workers(1, timeout=self.timeout_s)
            except Exception:  # noqa: BLE001 - TimeoutError
                self.close()
                raise PoolError(f"--cluster {addr}: the scheduler has no worker after {self.timeout_s:g} s "
                                f"(start some: dask worker {addr})") from None
        else:
            threads = str(max(1, (os.cpu_count() or 1) // self.workers))
            env = {k: threads for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
            self._cluster = LocalCluster(n_workers=self.workers, threads_per_worker=1, processes=True,
                                         dashboard_address=None, silence_logs=logging.ERROR, env=env)
            self.client = Client(self._cluster, set_as_default=False)
        self.size = sum(w.get("nthreads", 1) for w in self.client.scheduler_info()["workers"].values()) or 1
        self.startup_s = time.perf_counter() - t0
        return self

    def run(self, fn: Callable[[Any, Any], Any], jobs: Iterable[Any], common: Any = None,
            window: int | None = None) -> Iterator[tuple[Any, Any]]:
        """Run ``fn(common, job)`` for every job on the workers; yield ``(job, result)`` as each finishes.

        At most ``window`` jobs (default ``2 x size``) are submitted at a time, so a stopped driver
        leaves little work in flight; ``common`` is sent to the workers once. A job's exception is
        raised here (the others are cancelled)."""
        from distributed import as_completed

        window = window or 2 * self.size
        it = iter(jobs)
        shared = self.client.scatter([common], broadcast=True)[0]  # a list: one future, not one per item
        futures = {}
        ac = as_completed(loop=self.client.loop)

        def submit() -> bool:
            job = next(it, _END)
            if job is _END:
                return False
            fut = self.client.submit(fn, shared, job, pure=False)
            futures[fut.key] = (fut, job)
            ac.add(fut)
            return True

        for _ in range(window):
            if not submit():
                break
        try:
            for fut in ac:
                result = fut.result()
                _, job = futures.pop(fut.key)
                fut.release()
                submit()
                yield job, result
        finally:  # an error or a stopped driver: drop what is still queued
            for fut, _ in futures.values():
                fut.cancel()
            futures.clear()
            ac.clear()

    def close(self) -> None:
        t0 = time.perf_counter()
        for obj in (self.client, self._cluster):
            if obj is not None:
                try:
                    obj.close()
                except Exception:  # noqa: BLE001 - closing a half-dead cluster: nothing more to do
                    pass
        self.client = self._cluster = None
        self.close_s = time.perf_counter() - t0

    def __exit__(self, *exc) -> None:
        self.close()


_END = object()


class Progress:
    """Progress lines across workers: ``LABEL: 12/40 (30%) on 2 workers, 3.1/s, ETA 9 s``, at most one
    every ``every_s`` seconds and the last; the rate (and so the ETA) counts from the first job."""

    def __init__(self, total: int, workers: int, log: Callable[[str], None], label: str = "campaign",
                 unit: str = "payloads", every_s: float = 2.0):
        self.total, self.workers, self.log, self.label, self.unit = total, workers, log, label, unit
        self.every_s = every_s
        self.done = 0
        self.t0 = time.perf_counter()
        self.t_last = -float("inf")

    def line(self) -> str:
        dt = time.perf_counter() - self.t0
        rate = self.done / dt if dt > 0 else 0.0
        eta = (self.total - self.done) / rate if rate > 0 else float("nan")
        return (f"{self.label}: {self.done}/{self.total} {self.unit} ({100 * self.done / max(self.total, 1):.0f}%) "
                f"on {self.workers} worker{'s' if self.workers != 1 else ''}, {rate:.2f}/s, ETA "
                + (f"{eta:.0f} s" if eta == eta else "?"))

    def step(self, n: int = 1) -> None:
        self.done += n
        now = time.perf_counter()
        if self.done >= self.total or now - self.t_last >= self.every_s:
            self.t_last = now
            self.log(self.line())
