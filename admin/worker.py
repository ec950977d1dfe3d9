"""Uploads are prepared in a child process, so pages stay fast while a long recording is processed.

Preparing decodes, measures loudness and resamples in numpy: in the panel's own process that holds
the GIL and slowed every page 3-8x during a 50 MB upload (bench_admin); in one niced child the web
threads keep their pace and the big arrays never swell the panel's memory. One worker: the machine
has 2 cores and uploads are rare; a second upload waits for the first.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from audio_lessons import media
from audio_lessons.config import MediaSettings

NICE = 19  # the lowest priority: pages first, the upload when a core is free
_lock = threading.Lock()
_pool: ProcessPoolExecutor | None = None


def _lower_priority() -> None:
    os.nice(NICE)  # ffmpeg, started by the worker, inherits it


def _executor() -> ProcessPoolExecutor:
    global _pool
    with _lock:
        if _pool is None:
            _pool = ProcessPoolExecutor(max_workers=1, initializer=_lower_priority,
                                        mp_context=multiprocessing.get_context("spawn"))
        return _pool


def prepare(src: Path, media_dir: Path, settings: MediaSettings,
            original_name: str | None = None) -> media.Prepared:
    """``media.prepare`` in the worker process (its MediaError comes back as it is)."""
    return _executor().submit(media.prepare, src, media_dir, settings, original_name).result()
