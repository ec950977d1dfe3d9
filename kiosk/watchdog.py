"""systemd notifications: READY once started, WATCHDOG while the controller loop turns.

The protocol is one datagram on $NOTIFY_SOCKET, so no library (sdnotify, systemd-python) is
needed. Without systemd every call does nothing.
"""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger(__name__)


class Notifier:
    def __init__(self, environ: dict[str, str] | None = None):
        environ = os.environ if environ is None else environ
        address = environ.get("NOTIFY_SOCKET", "")
        self.address = "\0" + address[1:] if address.startswith("@") else address
        usec = environ.get("WATCHDOG_USEC", "")
        # ping twice per watchdog period, as sd_watchdog_enabled(3) advises
        self.interval_s = int(usec) / 2e6 if usec.isdigit() and int(usec) > 0 else 1.0

    def notify(self, message: str) -> None:
        if not self.address:
            return
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.sendto(message.encode(), self.address)
        except OSError as exc:
            log.debug("sd_notify %r failed: %s", message, exc)

    def ready(self) -> None:
        self.notify("READY=1")

    def ping(self) -> None:
        self.notify("WATCHDOG=1")

    def status(self, text: str) -> None:
        self.notify(f"STATUS={text}")

    def stopping(self) -> None:
        self.notify("STOPPING=1")
