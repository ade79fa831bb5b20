"""A worker process's life: the model cache, preloading before the fork, GC tuning, recycling
and readiness.

Imported by worker/tasks.py, so the Celery signal handlers below are connected in every worker.
"""

from __future__ import annotations

import gc
import logging
import os
import resource
import signal
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

from celery import signals

from classifiers import ModelLoadError, TopicModel, load_model
from worker.ingest import warm_up
from worker.settings import get_settings
from worker.store import get_engine

log = logging.getLogger("newsclass.worker")

WARM_UP_TEXT = "Warm-up: the navy, tariffs and a parliament vote."
_settings = get_settings()


@cache
def get_model() -> TopicModel:
    """The model, loaded once per process and tried once, so that a model that cannot predict
    stops the worker at start-up instead of failing every job."""
    model = load_model(_settings.model_path)
    model.predict([WARM_UP_TEXT])
    return model


def get_model_at(path: str | Path | None) -> TopicModel:
    """The model at ``path`` (None: the configured one), loaded and tried once per process for
    each version of the file, so a batch of reclassify jobs loads it once. A path that does not
    hold a usable model raises ``ModelLoadError`` naming it (and is tried again next time)."""
    if path is None:
        return get_model()
    file = Path(path)
    try:
        stat = file.resolve().stat()
    except OSError:
        return load_model(file)  # raises ModelLoadError saying why
    if file.resolve() == Path(_settings.model_path).resolve():
        return get_model()
    return _model_file(str(file.resolve()), stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=4)
def _model_file(path: str, mtime_ns: int, size: int) -> TopicModel:
    model = load_model(path)
    try:
        model.predict([WARM_UP_TEXT])
    except Exception as exc:
        raise ModelLoadError(
            f"{path} loads but cannot predict: {type(exc).__name__}: {exc}"
        ) from exc
    return model


_recycle = {"enabled": False, "jobs": 0}


@signals.worker_init.connect
def _preload(sender: Any = None, **_: Any) -> None:
    # Load the model in the parent so forked processes share its arrays instead of each loading.
    # A model that cannot load stops the worker here (SystemExit passes through Celery's signal
    # dispatch), instead of failing every job.
    try:
        get_model()
    except Exception as exc:
        log.critical("cannot use the model %s: %s", _settings.model_path, exc)
        raise SystemExit(3) from exc
    warm_up()
    # A solo worker runs the jobs itself: it recycles itself (Celery does so only for prefork).
    _recycle["enabled"] = "solo" in str(getattr(sender, "pool_cls", "")).lower()


def maybe_recycle(jobs_done: int) -> None:
    """In a solo worker, past the job or memory budget: warm shutdown (unacknowledged messages
    return to the queue), and the process group starts a fresh process."""
    if not _recycle["enabled"]:
        return
    _recycle["jobs"] += jobs_done
    max_jobs = _settings.worker_max_tasks_per_child
    max_kib = _settings.worker_max_memory_per_child
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if (max_jobs and _recycle["jobs"] >= max_jobs) or (max_kib and peak_kib >= max_kib):
        log.warning("recycling after %d jobs at %d KiB peak memory", _recycle["jobs"], peak_kib)
        _recycle["enabled"] = False
        os.kill(os.getpid(), signal.SIGTERM)


def tune_gc() -> None:
    """Python's cyclic GC, as configured by default, scans the worker's whole heap (Celery, kombu,
    the model's vocabulary) over and over while a batch allocates its many small objects: measured
    at a fifth of a worker process's CPU. Freeze what start-up built (never collected again) and
    collect young objects every 100,000 allocations instead of 700. Memory stays bounded: garbage
    without cycles is freed at once as always, and the process group recycles workers."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)


@signals.worker_ready.connect
def _announce_ready(**_: Any) -> None:
    tune_gc()
    if _settings.ready_file is not None:
        _settings.ready_file.write_text(f"{os.getpid()}\n")


@signals.worker_process_init.connect
def _fresh_connections(**_: Any) -> None:
    # A forked process must not reuse the parent's database connections.
    get_engine(_settings.database_url).dispose(close=False)
