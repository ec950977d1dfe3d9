"""Blocking work from asyncio code, in a worker thread that a cancel does not leave behind."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


async def in_thread(fn: Callable[..., T], *args: object) -> T:
    """``asyncio.to_thread``, except that when cancelled it first waits for ``fn`` to return.

    A thread cannot be stopped: with plain ``to_thread`` a cancelled caller moves on (to its
    clean-up, say) while ``fn`` still runs, and both then use the same store connection at once
    (a shutdown that cuts a call as it is being recognised). A second cancel stops the wait.
    """
    work = asyncio.ensure_future(asyncio.to_thread(fn, *args))
    try:
        return await asyncio.shield(work)
    except asyncio.CancelledError:
        await asyncio.wait([work])
        raise
