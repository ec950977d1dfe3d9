"""A real Asterisk 22 for the tests: a cached sid chroot, a per-session config, AMI and FastAGI.

Test modules import the fixtures: ``from tests.asterisk import asterisk, agi_server, ami``.

- ``asterisk`` (session): Asterisk running in the chroot from deploy/asterisk-chroot.sh with this
  project's dialplan (deploy/asterisk/extensions_pallay.conf, its AGI pointed at ``agi_port``), an AMI
  user made from deploy/asterisk/manager_pallay.conf with a random secret, PJSIP on loopback, all on
  free ports. Everything lives in a per-session folder inside the chroot, so the stock /etc/asterisk
  is never touched and two sessions cannot clash.
- ``agi_server`` (session): pallay's FastAGI server on ``asterisk.agi_port``, in a thread with its own
  event loop; tests put handlers in ``agi_server.routes``.
- ``ami`` (function): a small raw AMI client logged in as the pallay user. It is raw because the
  asterisk-ami package drops its listener after 3 s of silence (its socket timeout), which a test
  waiting for events cannot live with.

Without network the chroot cannot be built: the fixture skips with one line, or fails under CI=true.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import secrets
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ivr import server as agi_server_module
from tests.conftest import require

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "deploy" / "asterisk-chroot.sh"
DEPLOY = ROOT / "deploy" / "asterisk"
SOUNDS = "/usr/share/asterisk/sounds"

# Only what the phone line and its tests use: loads fast and logs little.
MODULES = [
    "pbx_config", "res_agi", "app_playback", "app_controlplayback", "app_senddtmf",
    "app_mixmonitor", "app_record", "app_userevent", "app_verbose", "app_stack", "app_exec",
    "res_speech", "res_pjsip_pubsub", "app_echo", "app_waitforsilence", "func_strings",
    "func_callerid", "func_channel", "func_timeout", "func_logic", "func_cut",
    "res_timing_timerfd", "format_gsm", "format_wav", "format_pcm", "format_sln", "codec_gsm",
    "codec_ulaw", "codec_alaw", "codec_a_mu", "codec_resample", "bridge_simple",
    "bridge_native_rtp", "res_rtp_asterisk", "res_sorcery_config", "res_sorcery_memory",
    "res_sorcery_astdb", "res_pjproject", "res_pjsip", "res_pjsip_session", "chan_pjsip",
    "res_pjsip_sdp_rtp", "res_pjsip_caller_id", "res_pjsip_endpoint_identifier_ip",
    "res_pjsip_endpoint_identifier_user", "res_pjsip_authenticator_digest",
    "res_pjsip_outbound_authenticator_digest", "res_pjsip_outbound_registration",
    "res_pjsip_registrar", "res_pjsip_acl", "res_pjsip_dtmf_info", "res_pjsip_nat",
    "res_audiosocket", "app_audiosocket",  # the line's streaming capture (ivr/audiosocket.py)
]

# Stock files copied as they are, so the modules that read them find their defaults.
STOCK_FILES = ["cdr.conf", "cel.conf", "features.conf", "indications.conf", "acl.conf", "udptl.conf",
               "pjproject.conf", "ccss.conf"]

# Ends every context whose calls record with MixMonitor. MixMonitor alone closes its file in its own
# thread, after the channel may already be gone (a test once read it half-written: "not a WAVE
# file"); StopMixMonitor closes it at once, so however the call ends the h extension closes the
# recording before the channel goes, then says so. Tests wait for that event (``wait_recording``).
RECORDING_CLOSED = "PallayRecordingClosed"
CLOSE_RECORDING = f"""exten => h,1,StopMixMonitor()
 same => n,UserEvent({RECORDING_CLOSED},File: ${{MIXMONITOR_FILENAME}})
"""

TEST_DIALPLAN = """
[pallay-test-caller]
; A caller: records what it hears, waits, presses keys, speaks, keeps listening, hangs up.
; Variables come from the Originate (inherited with __): PALLAY_REC, PALLAY_WAIT, PALLAY_KEYS,
; PALLAY_SAY (sound files the caller speaks, &-separated), PALLAY_HOLD.
exten => s,1,Answer()
 same => n,MixMonitor(${PALLAY_REC})
 same => n,Wait(${PALLAY_WAIT})
 same => n,ExecIf($["${PALLAY_KEYS}" != ""]?SendDTMF(${PALLAY_KEYS}))
 same => n,ExecIf($["${PALLAY_SAY}" != ""]?Playback(${PALLAY_SAY}))
 same => n,Wait(${PALLAY_HOLD})
 same => n,Hangup()
""" + CLOSE_RECORDING


class ChrootUnavailable(RuntimeError):
    """The chroot could not be built (typically: no network)."""


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def build_chroot() -> Path:
    """Build or find the cached chroot; raise ChrootUnavailable with the script's last words."""
    done = subprocess.run(["bash", str(SCRIPT), "build"], check=False, capture_output=True, text=True)
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines() or [f"exit {done.returncode}"]
        raise ChrootUnavailable(lines[-1])
    return Path(done.stdout.strip().splitlines()[-1])


@dataclass
class Asterisk:
    """One running Asterisk; paths named ``*_dir`` are as seen inside the chroot."""

    chroot: Path
    base_dir: str  # the session folder inside the chroot
    agi_port: int
    ami_port: int
    sip_port: int
    ami_user: str
    ami_secret: str
    process: subprocess.Popen | None = None
    started_seconds: float = 0.0
    _shared: list[Path] = field(default_factory=list)

    @property
    def conf(self) -> str:
        return f"{self.base_dir}/etc/asterisk.conf"

    def host_path(self, inside: str) -> Path:
        """Where a path inside the chroot is on this machine."""
        return self.chroot / inside.lstrip("/")

    @property
    def log_path(self) -> Path:
        return self.host_path(f"{self.base_dir}/log/messages.log")

    def cli(self, command: str, timeout: float = 10) -> str:
        """Run a console command (``asterisk -rx``) and return its output."""
        done = subprocess.run(
            ["chroot", str(self.chroot), "/usr/sbin/asterisk", "-C", self.conf, "-rx", command],
            check=False, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"asterisk -rx {command!r}: {done.stderr.strip() or done.stdout}")
        return done.stdout

    def add_dialplan(self, name: str, text: str) -> None:
        """Add contexts for one test module (extensions.d/NAME.conf) and reload the dialplan."""
        self.host_path(f"{self.base_dir}/etc/extensions.d/{name}.conf").write_text(text)
        self.cli("dialplan reload")

    def add_pjsip(self, name: str, text: str) -> None:
        """Add PJSIP objects (pjsip.d/NAME.conf), e.g. a softphone endpoint, and reload PJSIP."""
        self.host_path(f"{self.base_dir}/etc/pjsip.d/{name}.conf").write_text(text)
        self.cli("module reload res_pjsip.so")

    def share(self, host_dir: Path) -> str:
        """Bind-mount a folder of this machine into the chroot at the same path; return it.

        Media and message folders under tmp_path become playable and recordable by Asterisk
        with the same absolute paths pallay uses.
        """
        host_dir = host_dir.resolve()
        target = self.host_path(str(host_dir))
        target.mkdir(parents=True, exist_ok=True)
        if not os.path.ismount(target):
            subprocess.run(["mount", "--bind", str(host_dir), str(target)], check=True)
            self._shared.append(target)
        return str(host_dir)

    def log_lines(self, level: str = "ERROR") -> list[str]:
        if not self.log_path.exists():
            return []
        return [line for line in self.log_path.read_text(errors="replace").splitlines()
                if f"] {level}[" in line]


def write_config(ast: Asterisk) -> None:
    """Write a minimal, complete config set into the session folder."""
    base = ast.host_path(ast.base_dir)
    etc = base / "etc"
    for sub in ("etc/extensions.d", "etc/pjsip.d", "run", "log", "spool", "db", "rec"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    rtp = 20000 + (ast.sip_port % 20000) // 2 * 2  # even, as Asterisk wants, and near no default
    files = {
        "asterisk.conf": _asterisk_conf(ast.base_dir),
        "modules.conf": "[modules]\nautoload = no\n"
                        + "".join(f"load = {m}.so\n" for m in MODULES),
        "logger.conf": "[general]\ndateformat = %F %T.%3q\n[logfiles]\n"
                       "messages.log => notice,warning,error\n",
        "manager.conf": "[general]\nenabled = yes\nbindaddr = 127.0.0.1\n"
                        f"port = {ast.ami_port}\ndisplayconnects = no\n"
                        "#include manager_pallay.conf\n#include manager_test.conf\n",
        "manager_pallay.conf": (DEPLOY / "manager_pallay.conf").read_text().replace(
            "CHANGE-ME-TO-A-LONG-RANDOM-SECRET", ast.ami_secret),
        # The test caller's own AMI user: it plays her keys (PlayDTMF needs the "call" write class,
        # which pallay's least-privilege user rightly lacks).
        "manager_test.conf": f"[pallay-test]\nsecret = {ast.ami_secret}\n"
                             "deny = 0.0.0.0/0.0.0.0\npermit = 127.0.0.1/255.255.255.255\n"
                             "read = call,user\nwrite = call,originate\n",
        "extensions.conf": "[general]\nstatic = yes\nwriteprotect = yes\n[globals]\n\n"
                           "#include extensions_pallay.conf\n" + TEST_DIALPLAN
                           + "\n#tryinclude extensions.d/*.conf\n",
        "extensions_pallay.conf": (DEPLOY / "extensions_pallay.conf").read_text().replace(
            "agi://127.0.0.1:4573/", f"agi://127.0.0.1:{ast.agi_port}/"),
        "pjsip.conf": f"[loopback]\ntype = transport\nprotocol = udp\n"
                      f"bind = 127.0.0.1:{ast.sip_port}\n\n#tryinclude pjsip.d/*.conf\n",
        "rtp.conf": f"[general]\nrtpstart = {rtp}\nrtpend = {rtp + 400}\n",
    }
    for name in STOCK_FILES:
        shutil.copy(ast.host_path(f"/etc/asterisk/{name}"), etc / name)
    for name, text in files.items():
        (etc / name).write_text(text)


def _asterisk_conf(base: str) -> str:
    return f"""[directories]
astcachedir => {base}/run
astetcdir => {base}/etc
astmoddir => /usr/lib/x86_64-linux-gnu/asterisk/modules
astvarlibdir => /var/lib/asterisk
astdbdir => {base}/db
astkeydir => /var/lib/asterisk
astdatadir => /usr/share/asterisk
astagidir => /usr/share/asterisk/agi-bin
astspooldir => {base}/spool
astrundir => {base}/run
astlogdir => {base}/log
astsbindir => /usr/sbin
[options]
nocolor = yes
defaultlanguage = es
transmit_silence = yes
"""


def start(ast: Asterisk, timeout: float = 30.0) -> None:
    """Start Asterisk in the chroot and wait until it is fully booted."""
    started = time.monotonic()
    env = {**os.environ, "PALLAY_ASTERISK_CHROOT": str(ast.chroot)}
    out = ast.host_path(f"{ast.base_dir}/log/stdout.log").open("wb")
    ast.process = subprocess.Popen(["bash", str(SCRIPT), "start", "-C", ast.conf],
                                   stdout=out, stderr=subprocess.STDOUT, env=env)
    out.close()
    control = ast.host_path(f"{ast.base_dir}/run/asterisk.ctl")
    while time.monotonic() - started < timeout:
        if ast.process.poll() is not None:
            raise RuntimeError(f"Asterisk exited with {ast.process.returncode}: "
                               + ast.host_path(f"{ast.base_dir}/log/stdout.log").read_text()[-800:])
        if control.exists():
            try:
                ast.cli("core waitfullybooted", timeout=timeout)
                ast.started_seconds = time.monotonic() - started
                return
            except (RuntimeError, subprocess.TimeoutExpired):
                pass
        time.sleep(0.05)  # polling for the control socket to appear, not hiding a race
    raise RuntimeError(f"Asterisk not fully booted within {timeout} s")


def stop(ast: Asterisk) -> None:
    if ast.process and ast.process.poll() is None:
        try:
            ast.cli("core stop now", timeout=10)
            ast.process.wait(timeout=10)
        except (RuntimeError, subprocess.TimeoutExpired):
            ast.process.kill()
            ast.process.wait(timeout=10)
    for target in reversed(ast._shared):
        subprocess.run(["umount", "-l", str(target)], check=False)
    subprocess.run(["bash", str(SCRIPT), "umount"], check=False,
                   env={**os.environ, "PALLAY_ASTERISK_CHROOT": str(ast.chroot)})
    if not os.environ.get("PALLAY_KEEP_ASTERISK"):
        shutil.rmtree(ast.host_path(ast.base_dir), ignore_errors=True)


def configured(chroot: Path, folder: str) -> Asterisk:
    """A new Asterisk in ``chroot``: its own config under /srv/FOLDER/<random>, free ports."""
    ast = Asterisk(chroot=chroot, base_dir=f"/srv/{folder}/{secrets.token_hex(4)}",
                   agi_port=free_port(), ami_port=free_port(), sip_port=free_port(socket.SOCK_DGRAM),
                   ami_user="pallay", ami_secret=secrets.token_hex(24))
    write_config(ast)
    return ast


@pytest.fixture(scope="session")
def asterisk() -> Iterator[Asterisk]:
    try:
        chroot = build_chroot()
    except ChrootUnavailable as exc:
        require(False, f"Asterisk chroot unavailable: {exc}")
    ast = configured(chroot, "pallay-test")
    try:
        start(ast)
        yield ast
    finally:
        stop(ast)


class AgiTestServer:
    """pallay's FastAGI server in a background thread; ``routes`` may change between tests."""

    def __init__(self, port: int):
        self.port = port
        self.routes: dict[str, Callable] = {}
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._server = None

    def start(self) -> None:
        self._thread.start()
        self._server = self.run(agi_server_module.start("127.0.0.1", self.port, self.routes))

    def run(self, coro, timeout: float = 30):
        """Run a coroutine on the server's loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def wait_idle(self, timeout: float = 15) -> None:
        """Return once every call has ended, its last log line written."""
        async def idle():
            while self._server.calls:
                await asyncio.wait(set(self._server.calls))
        self.run(idle(), timeout)

    def close(self) -> None:
        if self._server is not None:
            self.run(self._server.close(grace=5))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)


@pytest.fixture(scope="session")
def agi_server(asterisk: Asterisk) -> Iterator[AgiTestServer]:
    server = AgiTestServer(asterisk.agi_port)
    server.start()
    yield server
    server.close()


class Ami:
    """A raw AMI connection: actions with replies, and every event kept for ``wait_event``."""

    def __init__(self, port: int, user: str, secret: str, timeout: float = 10):
        self.timeout = timeout
        self.events: list[dict[str, str]] = []
        self._replies: dict[str, dict[str, str]] = {}
        self._cond = threading.Condition()
        self._ids = itertools.count(1)
        self._sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self._file = self._sock.makefile("rb")
        self.banner = self._file.readline().decode().strip()
        self._sock.settimeout(None)
        self._reader = threading.Thread(target=self._read_loop, daemon=True)
        self._reader.start()
        reply = self.action("Login", Username=user, Secret=secret)
        if reply.get("Response") != "Success":
            raise RuntimeError(f"AMI login failed: {reply}")

    def _read_loop(self) -> None:
        # Asterisk restarting (a test's own doing) resets the socket: the stream simply ends.
        with contextlib.suppress(ConnectionError):
            self._read_packets()

    def _read_packets(self) -> None:
        packet: dict[str, str] = {}
        for raw in self._file:
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            if line:
                key, _, value = line.partition(": ")
                packet[key] = value
                continue
            with self._cond:
                if "Event" in packet and "ActionID" not in packet:
                    self.events.append(packet)
                elif "ActionID" in packet:
                    self._replies.setdefault(packet["ActionID"], packet)
                    if "Event" in packet:
                        self.events.append(packet)
                self._cond.notify_all()
            packet = {}

    def action(self, name: str, **fields: str) -> dict[str, str]:
        """Send an action and return its first reply packet."""
        action_id = f"t{next(self._ids)}"
        lines = [f"Action: {name}", f"ActionID: {action_id}"]
        for key, value in fields.items():
            values = value if isinstance(value, list) else [value]
            lines += [f"{key}: {v}" for v in values]
        self._sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        with self._cond:
            if not self._cond.wait_for(lambda: action_id in self._replies, self.timeout):
                raise TimeoutError(f"no AMI reply to {name}")
            return self._replies.pop(action_id)

    def wait_recording(self, path: str, timeout: float | None = None) -> dict[str, str]:
        """Wait until Asterisk has closed the recording at ``path`` (inside the chroot)."""
        return self.wait_event(lambda e: e.get("UserEvent") == RECORDING_CLOSED
                               and e.get("File") == path, timeout)

    def wait_event(self, predicate: Callable[[dict[str, str]], bool],
                   timeout: float | None = None) -> dict[str, str]:
        """Return the first event (already received or coming) that matches ``predicate``."""
        with self._cond:
            found: list[dict[str, str]] = []

            def match() -> bool:
                found[:] = [e for e in self.events if predicate(e)][:1]
                return bool(found)

            if not self._cond.wait_for(match, timeout or self.timeout):
                raise TimeoutError("no matching AMI event")
            return found[0]

    def close(self) -> None:
        try:
            self._sock.sendall(b"Action: Logoff\r\n\r\n")
        except OSError:
            pass
        self._sock.close()


@pytest.fixture
def ami(asterisk: Asterisk) -> Iterator[Ami]:
    client = Ami(asterisk.ami_port, asterisk.ami_user, asterisk.ami_secret)
    yield client
    client.close()


def restart(ast: Asterisk, timeout: float = 30.0) -> None:
    """Kill Asterisk (as a crash or power cut would) and start it again with the same configuration
    and ports: every call and AMI session is cut. (``core stop now`` can hang with a live AGI call.)"""
    ast.process.kill()
    ast.process.wait(timeout=10)
    start(ast, timeout)


@pytest.fixture
def ami_caller(asterisk: Asterisk) -> Iterator[Ami]:
    """AMI as the test caller: places calls and presses her keys (PlayDTMF)."""
    client = Ami(asterisk.ami_port, "pallay-test", asterisk.ami_secret)
    yield client
    client.close()
