"""A real SIP call: the baresip softphone rings Asterisk's PJSIP on loopback and navigates pallay's
lesson line with RFC 4733 keys (telephone-event), as a phone behind a SIP trunk or GSM gateway would.

baresip runs headless: its audio device is ``aubridge`` (a timed in-memory device: what it plays it
sends back, so no sound card is needed) and its ``sndfile`` filter writes what it received to a WAV
file, which the test checks for sound. The test drives it over ``ctrl_tcp`` (netstring JSON).
"""

from __future__ import annotations

import json
import queue
import secrets
import socket
import subprocess
import threading
import time
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from audio_lessons import actions as a
from audio_lessons import catalog, listeners, store
from ivr.agi import AgiChannel
from ivr.line import LessonLine
from tests.asterisk import Asterisk, agi_server, asterisk, free_port
from tests.conftest import require_program
from tests.test_line import library

__all__ = ["agi_server", "asterisk", "library"]  # fixtures, imported for pytest

NUMBER = "51999777001"  # the softphone's SIP user, which is also its caller id

PJSIP_SOFTPHONE = """
[{user}]
type = endpoint
context = pallay-lessons
disallow = all
allow = ulaw
auth = {user}-auth
aors = {user}
dtmf_mode = rfc4733
rtp_symmetric = yes
direct_media = no

[{user}-auth]
type = auth
auth_type = userpass
username = {user}
password = {password}

[{user}]
type = aor
max_contacts = 1
"""

BARESIP_CONFIG = """poll_method epoll
sip_listen 127.0.0.1:{sip_port}
audio_player aubridge,pallay
audio_source aubridge,pallay
module_path /usr/lib/baresip/modules
module g711.so
module aubridge.so
module sndfile.so
module_app account.so
module_app menu.so
module_app ctrl_tcp.so
ctrl_tcp_listen 127.0.0.1:{ctrl_port}
snd_path {snd_dir}
"""


class Softphone:
    """baresip as a subprocess, driven over ctrl_tcp; ``events`` receives its JSON events."""

    def __init__(self, folder: Path, user: str, password: str, registrar_port: int):
        self.folder = folder
        self.snd_dir = folder / "snd"
        self.snd_dir.mkdir(parents=True)
        self.ctrl_port = free_port()
        (folder / "config").write_text(BARESIP_CONFIG.format(
            sip_port=free_port(socket.SOCK_DGRAM), ctrl_port=self.ctrl_port, snd_dir=self.snd_dir))
        (folder / "accounts").write_text(
            f"<sip:{user}@127.0.0.1:{registrar_port}>;auth_pass={password};regint=0;"
            "audio_codecs=PCMU\n")
        self.log = (folder / "baresip.log").open("wb")
        self.process = subprocess.Popen(["baresip", "-f", str(folder)], stdin=subprocess.DEVNULL,
                                        stdout=self.log, stderr=subprocess.STDOUT)
        self.events: queue.Queue = queue.Queue()
        self.responses: queue.Queue = queue.Queue()
        self.sock = self._connect()
        self._reader = threading.Thread(target=self._read_loop, daemon=True)
        self._reader.start()

    def _connect(self, timeout: float = 10) -> socket.socket:
        deadline = time.monotonic() + timeout
        while True:
            try:
                return socket.create_connection(("127.0.0.1", self.ctrl_port), timeout=timeout)
            except ConnectionRefusedError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("baresip did not open its control port: "
                                       + self.output()[-600:]) from None
                time.sleep(0.05)  # polling for baresip's listening socket, not hiding a race

    def _read_loop(self) -> None:
        buffer = b""
        while True:
            try:
                chunk = self.sock.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            buffer += chunk
            while b":" in buffer:  # netstrings: LENGTH ":" JSON ","
                length, _, rest = buffer.partition(b":")
                if len(rest) < int(length) + 1:
                    break
                message = json.loads(rest[:int(length)])
                buffer = rest[int(length) + 1:]
                (self.events if message.get("event") else self.responses).put(message)

    def command(self, name: str, params: str = "") -> dict:
        body = json.dumps({"command": name, "params": params, "token": name}).encode()
        self.sock.sendall(str(len(body)).encode() + b":" + body + b",")
        reply = self.responses.get(timeout=10)
        assert reply.get("ok"), (name, reply)
        return reply

    def wait_event(self, kind: str, timeout: float = 20) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            try:
                event = self.events.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"baresip: no {kind} event; log: {self.output()[-800:]}") \
                    from None
            if event.get("type") == kind:
                return event

    def output(self) -> str:
        self.log.flush()
        return (self.folder / "baresip.log").read_text(errors="replace")

    def received_wav(self) -> Path:
        """sndfile's dump of the decoded audio baresip received (``dump-*-dec.wav``)."""
        found = sorted(self.snd_dir.glob("*-dec.wav"))
        assert found, f"no decoded-audio dump in {self.snd_dir}: {list(self.snd_dir.iterdir())}"
        return found[-1]

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                self.command("quit")
            except (AssertionError, OSError, queue.Empty):
                pass
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.sock.close()
        self.log.close()


@pytest.fixture
def softphone(asterisk: Asterisk, tmp_path) -> Iterator[Softphone]:
    require_program("baresip")
    password = secrets.token_hex(12)
    asterisk.add_pjsip("softphone", PJSIP_SOFTPHONE.format(user=NUMBER, password=password))
    phone = Softphone(tmp_path / "baresip", NUMBER, password, asterisk.sip_port)
    yield phone
    phone.close()


@pytest.fixture
def line_steps(agi_server, library) -> Iterator[queue.Queue]:
    """pallay's lesson line on the test FastAGI server; yields what it does for the softphone's call."""
    steps: queue.Queue = queue.Queue()

    def observe(channel: AgiChannel, item) -> None:
        if channel.caller_id == NUMBER:
            steps.put(item)

    secret = listeners.load_or_create_secret(library.secret_path)
    agi_server.routes["lessons"] = LessonLine(library, secret, observer=observe)
    yield steps
    agi_server.wait_idle()


def expect(steps: queue.Queue, kind, timeout: float = 30):
    """The next step of ``kind`` pallay takes for the call (earlier steps of other kinds pass)."""
    seen = []
    deadline = time.monotonic() + timeout
    while True:
        try:
            item = steps.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise AssertionError(f"no {kind.__name__} from pallay; saw {seen[-5:]}") from None
        seen.append(item)
        if isinstance(item, kind):
            return item


def sound_seconds(path: Path) -> float:
    """Seconds of 20 ms frames above -45 dBFS."""
    with wave.open(str(path)) as w:
        rate = w.getframerate()
        samples = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(float)
    frame = rate // 50
    frames = samples[: len(samples) // frame * frame].reshape(-1, frame)
    level = 20 * np.log10(np.maximum(np.sqrt((frames ** 2).mean(axis=1)) / 32768, 1e-9))
    return float((level > -45).sum() * 0.02)


def test_a_sip_softphone_reaches_a_lesson_by_rfc4733_keys(asterisk, softphone, line_steps,
                                                          library):
    softphone.command("dial", f"sip:100@127.0.0.1:{asterisk.sip_port}")
    softphone.wait_event("CALL_ESTABLISHED")
    expect(line_steps, a.Ask)  # first call from this number: the language question
    softphone.command("sndcode", "1")  # Spanish
    assert expect(line_steps, a.Key).digit == "1"
    expect(line_steps, a.PlayLesson)  # a first-time caller: the first lesson at once
    softphone.command("sndcode", "0")  # to the menu
    assert expect(line_steps, a.Key).digit == "0"
    menu = expect(line_steps, a.Ask)
    assert "menu" in [p.name for p in menu.prompts]
    softphone.command("sndcode", "2")  # the second lesson
    assert expect(line_steps, a.Key).digit == "2"
    play = expect(line_steps, a.PlayLesson)
    assert play.lesson_id == catalog.get_lesson(store.connect(library.db_path), "terreno").id
    time.sleep(4)  # she listens to about 4 s of the lesson (wall time the test must let pass)
    softphone.command("sndcode", "0")  # back to the menu
    pressed = expect(line_steps, a.Key)
    assert pressed.digit == "0" and pressed.position_ms >= 2_000
    expect(line_steps, a.Ask)
    softphone.command("hangup")
    softphone.wait_event("CALL_CLOSED")
    expect(line_steps, a.HangUp)  # pallay saw her leave

    db = store.connect(library.db_path)
    row = db.execute("SELECT furthest_ms, channel, input_method FROM listen_events "
                     "WHERE lesson_id = ? ORDER BY rowid DESC LIMIT 1", [play.lesson_id]).fetchone()
    assert row[1:] == ("phone", "key") and row[0] >= 2_000, row
    # What the softphone received over RTP: about 4 s of lesson (she pressed every key as soon as
    # she was asked, cutting the prompts short).
    assert sound_seconds(softphone.received_wav()) > 3.5
