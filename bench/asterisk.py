"""The test Asterisk for the phone-line benchmarks (root, the cached sid chroot)."""

from __future__ import annotations

import os

from bench import Unavailable
from tests.asterisk import Asterisk, ChrootUnavailable, build_chroot, configured


def bench_asterisk() -> Asterisk:
    """A configured, not yet started Asterisk; Unavailable says in one line why there is none."""
    if os.geteuid() != 0:
        raise Unavailable("needs root: it runs Asterisk in a chroot")
    try:
        chroot = build_chroot()
    except ChrootUnavailable as exc:
        raise Unavailable(f"no Asterisk chroot ({exc}): deploy/asterisk-chroot.sh build needs "
                          "the Debian mirror once") from exc
    return configured(chroot, "pallay-bench")
