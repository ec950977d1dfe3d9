"""The README's test call, run as written: its commands (``make run``'s ``pallay init`` and
``pallay serve``, then ``deploy/asterisk-chroot.sh build``, ``configure`` and ``start``) against a
real Asterisk 22 with Debian's stock configuration plus pallay's files, and baresip registering as
the test extension and dialling its number, as the technician's phone on the LAN would.

The chroot steps run in a throwaway overlay of the cached chroot (``PALLAY_ASTERISK_CHROOT`` points
at it): ``configure`` writes into the chroot's /etc/asterisk, and other test sessions, or a
technician, may be using the cached chroot at the same time. Ports are free ones, set the way the
script documents (``PALLAY_IVR_LISTEN``, ``PALLAY_IVR_AMI_PORT``, ``PALLAY_SIP_BIND``); the rest is
what she types, in a folder of its own with a relative ``./data``, as ``make run`` makes it.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import wave
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from audio_lessons import config
from tests.asterisk import ROOT, ChrootUnavailable, build_chroot, free_port
from tests.conftest import require, require_program
from tests.test_sip import Softphone

README = ROOT / "README.md"
PALLAY = Path(sys.executable).with_name("pallay")
USER = "pallay-phone"  # the test extension in deploy/asterisk/pjsip_pallay_phone.conf
NUMBER = "100"  # what the README tells her to dial
# What `make run` runs (the Makefile's run target), for the README's first step:
# `pallay --data data init`, then `pallay --data data serve`.
MAKE_RUN = ["init", "serve"]
TROUBLESHOOTING = ['deploy/asterisk-chroot.sh cli -rx "pjsip show endpoints"',
                   'deploy/asterisk-chroot.sh cli -rx "agi set debug on"']
AGI_LINE = re.compile(r"^<(?P<channel>[^>]+)>AGI (?P<way>Rx <<|Tx >>) (?P<text>.*)$")
PLAYBACK = re.compile(r"^(CONTROL )?STREAM FILE ")


def phone_line_section() -> str:
    text = README.read_text(encoding="utf-8")
    return text.split("\n## The phone line\n", 1)[1].split("\n## ", 1)[0]


def walkthrough_steps() -> list[list[str]]:
    """The commands of the README's walk-through: its shell block that builds the chroot."""
    blocks = re.findall(r"```sh\n(.*?)```", phone_line_section(), re.DOTALL)
    block = next(b for b in blocks if "deploy/asterisk-chroot.sh build" in b)
    return [words for line in block.splitlines() if (words := shlex.split(line, comments=True))]


def test_the_readme_walkthrough_is_what_the_test_runs():
    assert walkthrough_steps() == [
        ["make", "run"],
        ["deploy/asterisk-chroot.sh", "build"],
        ["deploy/asterisk-chroot.sh", "configure"],
        ["deploy/asterisk-chroot.sh", "start"]]
    section = phone_line_section()
    for words in (USER, f"**{NUMBER}**", "sip-phone.secret", "5060", *TROUBLESHOOTING):
        assert words in section, words
    makefile = (ROOT / "Makefile").read_text()
    assert "DATA ?= data\n" in makefile
    for command in MAKE_RUN:
        assert f"pallay --data $(DATA) {command}\n" in makefile, command


def test_a_relative_data_folder_becomes_absolute(tmp_path, monkeypatch):
    # Asterisk reads a relative STREAM FILE path as one under its own sounds folder.
    monkeypatch.chdir(tmp_path)
    assert config.load("data", environ={}).media_dir == tmp_path.resolve() / "data" / "media"
    assert config.load(environ={"PALLAY_DATA": "./x/../d"}).data_dir == tmp_path.resolve() / "d"


@dataclass
class Site:
    """The technician's folder (``./data`` lives here), her terminals' output and environment."""

    folder: Path
    chroot: Path  # the overlay the script works on
    env: dict[str, str]
    sip_port: int
    logs: Path
    terminals: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def data(self) -> Path:
        return self.folder / "data"

    def run(self, words: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
        """A command that ends, run from her folder; fails the test with its output if it fails."""
        done = subprocess.run(words, cwd=self.folder, env=self.env, capture_output=True, text=True,
                              timeout=timeout, check=False)
        assert done.returncode == 0, f"{shlex.join(words)}: {done.stderr}{done.stdout}"
        return done

    def open_terminal(self, name: str, words: list[str]) -> None:
        """A command that keeps running (pallay serve, Asterisk), its output in ``logs/NAME``."""
        with (self.logs / name).open("wb") as out:
            self.terminals[name] = subprocess.Popen(words, cwd=self.folder, env=self.env,
                                                    stdout=out, stderr=subprocess.STDOUT)

    def output(self, name: str) -> str:
        return (self.logs / name).read_text(errors="replace")

    def cli(self, command: str) -> str:
        return self.run(["deploy/asterisk-chroot.sh", "cli", "-rx", command], timeout=20).stdout

    def wait_for(self, what: str, found: Callable[[], object], timeout: float = 60):
        deadline = time.monotonic() + timeout
        while not (result := found()):
            for name, process in self.terminals.items():
                assert process.poll() is None, f"{name} exited: {self.output(name)[-1500:]}"
            assert time.monotonic() < deadline, f"no {what} within {timeout} s"
            time.sleep(0.1)  # polling a log or a socket for what a person would watch for
        return result

    def asterisk_up(self) -> bool:
        probe = subprocess.run(["deploy/asterisk-chroot.sh", "cli", "-rx", "core waitfullybooted"],
                               cwd=self.folder, env=self.env, capture_output=True, timeout=20,
                               check=False)
        return probe.returncode == 0


def mounts_below(folder: Path) -> list[str]:
    prefix = str(folder) + "/"
    with open("/proc/mounts") as mounts:
        return [line.split()[1] for line in mounts if line.split()[1].startswith(prefix)]


@pytest.fixture(scope="module")
def overlay(tmp_path_factory) -> Iterator[Path]:
    """A private, writable copy of the cached chroot (an overlay: no copying, gone afterwards)."""
    require(os.geteuid() == 0, "the chroot needs root")
    try:
        cached = build_chroot()  # the README's `build`, on the shared cache
    except ChrootUnavailable as exc:
        require(False, f"Asterisk chroot unavailable: {exc}")
    base = tmp_path_factory.mktemp("overlay")
    merged = base / "chroot"
    for sub in ("upper", "work", "chroot"):
        (base / sub).mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "overlay", "overlay", "-o",
         f"lowerdir={cached},upperdir={base / 'upper'},workdir={base / 'work'}", str(merged)],
        capture_output=True, text=True, check=False)
    require(mounted.returncode == 0, f"cannot mount an overlay: {mounted.stderr.strip()}")
    assert os.path.ismount(merged)  # never let configure write into the shared cache
    yield merged
    for target in sorted(mounts_below(merged), reverse=True):
        subprocess.run(["umount", "-l", target], check=False)
    subprocess.run(["umount", "-l", str(merged)], check=True)


@pytest.fixture(scope="module")
def site(overlay, tmp_path_factory) -> Iterator[Site]:
    """Everything the walk-through starts, started by its own steps, and stopped at the end."""
    require_program("baresip")
    folder = tmp_path_factory.mktemp("site")
    (folder / "deploy").symlink_to(ROOT / "deploy")  # she runs deploy/... from the checkout
    (folder / "logs").mkdir()
    sip_port = free_port(socket.SOCK_DGRAM)
    env = {key: value for key, value in os.environ.items() if not key.startswith("PALLAY_")}
    env.update(PALLAY_ASTERISK_CHROOT=str(overlay), PALLAY_SIP_BIND=f"127.0.0.1:{sip_port}",
               PALLAY_IVR_LISTEN=f"127.0.0.1:{free_port()}", PALLAY_IVR_AMI_PORT=str(free_port()))
    site = Site(folder, overlay, env, sip_port, folder / "logs")
    try:
        for words in walkthrough_steps():
            perform(site, words)
        site.wait_for("Asterisk", site.asterisk_up)
        site.wait_for("pallay's FastAGI server",
                      lambda: "FastAGI listening" in site.output("pallay"))
        yield site
    finally:
        stop(site)


def perform(site: Site, words: list[str]) -> None:
    """One step of the README, as she would type it."""
    if words == ["make", "run"]:
        site.run([str(PALLAY), "--data", "data", MAKE_RUN[0]], timeout=300)
        site.open_terminal("pallay", [str(PALLAY), "--data", "data", MAKE_RUN[1]])
    elif words[1:] == ["start"]:
        site.open_terminal("asterisk", words)
    else:
        site.logs.joinpath(words[1]).write_text(site.run(words).stdout)


def stop(site: Site) -> None:
    """Ctrl-C in her first terminal, then the README's `stop` for Asterisk."""
    if (pallay := site.terminals.pop("pallay", None)) is not None:
        pallay.send_signal(signal.SIGINT)
        end(pallay)
    subprocess.run(["deploy/asterisk-chroot.sh", "stop"], cwd=site.folder, env=site.env,
                   timeout=60, check=False)
    if (asterisk := site.terminals.pop("asterisk", None)) is not None:
        end(asterisk)


def end(process: subprocess.Popen) -> None:
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


@pytest.fixture
def phone(site, tmp_path) -> Iterator[Softphone]:
    """baresip set up as the README says: user, the password `configure` made, this machine."""
    password = (site.data / "sip-phone.secret").read_text().strip()
    softphone = Softphone(tmp_path / "baresip", USER, password, site.sip_port, regint=60)
    yield softphone
    softphone.close()


@dataclass(frozen=True)
class Exchange:
    """One AGI command pallay sent and Asterisk's reply, from ``agi set debug on``."""

    command: str
    reply: str

    @property
    def result(self) -> int:
        return int(re.search(r"result=(-?\d+)", self.reply).group(1))

    @property
    def played(self) -> str | None:
        """The file a (CONTROL) STREAM FILE named, without its extension."""
        return shlex.split(self.command)[3 if self.command.startswith("CONTROL") else 2] \
            if PLAYBACK.match(self.command) else None


def exchanges(asterisk_output: str, channel_prefix: str) -> list[Exchange]:
    """Pairs each ``AGI Rx << COMMAND`` with the next numbered ``AGI Tx >>`` reply::

        <PJSIP/pallay-phone-00000000>AGI Rx << STREAM FILE /srv/data/media/0541....phone "" 0
        <PJSIP/pallay-phone-00000000>AGI Tx >> 200 result=0 endpos=70560
    """
    found, command = [], None
    for line in asterisk_output.splitlines():
        match = AGI_LINE.match(line)
        if not match or not match["channel"].startswith(channel_prefix):
            continue
        if match["way"] == "Rx <<":
            command = match["text"]
        elif command and re.match(r"\d{3} ", match["text"]):
            found.append(Exchange(command, match["text"]))
            command = None
    return found


def best_match(received: Path, prompt: Path) -> tuple[float, float]:
    """Where the prompt best lines up in what the phone received: (correlation, seconds covered).

    1.0 is the very same audio; G.711 and the network leave it above 0.99.
    """
    heard, rate = wav_samples(received)
    said, prompt_rate = wav_samples(prompt)
    assert rate == prompt_rate == 8000, (rate, prompt_rate)
    size = 1 << (len(heard) + len(said)).bit_length()
    lags = np.fft.irfft(np.fft.rfft(heard, size) * np.conj(np.fft.rfft(said, size)), size)
    lag = int(np.argmax(lags[:len(heard)]))
    part = heard[lag:lag + len(said)]
    said = said[:len(part)]
    score = float(part @ said / (np.linalg.norm(part) * np.linalg.norm(said) or 1.0))
    return score, len(part) / rate


def wav_samples(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path)) as w:
        return np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(float), w.getframerate()


def test_a_softphone_on_the_lan_hears_the_welcome(site, phone):
    # Her first check when nothing is heard: the extension lists the phone's contact.
    site.wait_for("the phone's registration", lambda: re.search(
        rf"Contact:\s+{USER}/sip:\S+\s+\S+\s+Avail", site.cli("pjsip show endpoints")), timeout=20)
    site.cli("agi set debug on")  # her second: what pallay asks Asterisk to play
    heard_from = len(site.output("asterisk"))

    phone.command("dial", NUMBER)
    phone.wait_event("CALL_ESTABLISHED")
    first = site.wait_for("the reply to pallay's first STREAM FILE", lambda: next(
        (e for e in exchanges(site.output("asterisk")[heard_from:], f"PJSIP/{USER}-")
         if e.played), None), timeout=60)
    phone.command("hangup")
    phone.wait_event("CALL_CLOSED")
    site.wait_for("the end of the call in pallay's log",
                  lambda: re.search(r"call [\d.]+: (done|caller gone)", site.output("pallay")))

    # The first prompt pallay played, named by the absolute path of the data folder she made...
    path = first.played
    assert path.startswith(str(site.data.resolve() / "media") + "/"), first
    assert first.result == 0, first  # ...played to its end, not "result=-1 endpos=0" (no file)
    calls = exchanges(site.output("asterisk")[heard_from:], f"PJSIP/{USER}-")
    played = [e for e in calls if e.played]
    assert all(e.result >= 0 for e in played[:-1]), played  # only the last one may meet her hang-up
    assert "does not exist in any format" not in site.output("asterisk")
    assert "sorry prompt" not in site.output("pallay"), site.output("pallay")[-2000:]
    assert re.search(r"AMI connected to 127\.0\.0\.1:\d+ as pallay", site.output("pallay"))

    # ...and what reached the phone over RTP is that prompt, all of it but the packets still in
    # flight when she hung up (measured: 0.9999 over 8.78 s of 8.82 s; another prompt: 0.19).
    prompt = next(Path(path).parent.glob(Path(path).name + ".*"))
    score, seconds = best_match(phone.received_wav(), prompt)
    assert score > 0.9 and seconds >= wav_seconds(prompt) - 0.5, (score, seconds)


def wav_seconds(path: Path) -> float:
    with wave.open(str(path)) as w:
        return w.getnframes() / w.getframerate()


def test_configure_again_keeps_the_secrets_and_adds_nothing_twice(site):
    secrets_before = [(site.data / name).read_text() for name in ("ami.secret", "sip-phone.secret")]
    site.run(["deploy/asterisk-chroot.sh", "configure"])  # Asterisk is running: it reloads
    assert [(site.data / n).read_text() for n in ("ami.secret", "sip-phone.secret")] == \
        secrets_before
    for name in ("ami.secret", "sip-phone.secret"):
        assert (site.data / name).stat().st_mode & 0o777 == 0o600
    etc = site.chroot / "etc" / "asterisk"
    pjsip = (etc / "pjsip.conf").read_text()
    assert pjsip.count("#include pjsip_pallay.conf\n") == 1
    assert pjsip.count("#include pjsip_pallay_phone.conf\n") == 1
    assert (etc / "extensions.conf").read_text().count("#include extensions_pallay.conf\n") == 1
    assert "CHANGE-ME" not in (etc / "pjsip_pallay_phone.conf").read_text()
    assert "pallay-phone" in site.cli("pjsip show endpoints")


def test_stop_unmounts_and_start_works_again(site):
    data_inside = site.chroot / str(site.data.resolve()).lstrip("/")
    assert sorted(mounts_below(site.chroot)) == sorted([str(site.chroot / "proc"),
                                                        str(data_inside)])
    second = subprocess.run(["deploy/asterisk-chroot.sh", "start"], cwd=site.folder, env=site.env,
                            capture_output=True, text=True, timeout=30, check=False)
    assert second.returncode != 0 and "already running" in second.stdout + second.stderr
    assert mounts_below(site.chroot).count(str(data_inside)) == 1  # not mounted twice

    site.run(["deploy/asterisk-chroot.sh", "stop"], timeout=60)
    site.terminals.pop("asterisk").wait(timeout=20)
    assert mounts_below(site.chroot) == []
    assert not (data_inside / "pallay.db").exists()  # the chroot no longer sees her data

    site.open_terminal("asterisk", ["deploy/asterisk-chroot.sh", "start"])
    site.wait_for("Asterisk started again", site.asterisk_up)
    assert (data_inside / "pallay.db").exists()
    assert "pallay-phone" in site.cli("pjsip show endpoints")
