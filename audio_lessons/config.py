"""Settings: defaults in code, then a TOML file, then PALLAY_* environment variables.

Validated once at start-up; passed explicitly, never read from a global.
Example TOML (``DATA/pallay.toml``)::

    [media]
    max_seconds = 1200
    [speech]
    engine = "pocketsphinx"
    model = "/opt/models/pocketsphinx-es"

Environment variables name a field as ``PALLAY_<SECTION>_<FIELD>``, e.g. ``PALLAY_MEDIA_MAX_SECONDS``;
``PALLAY_DATA`` chooses the data folder.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from audio_lessons.errors import ConfigError


@dataclass(frozen=True)
class MediaSettings:
    max_seconds: float = 1800.0  # longest accepted upload, after trimming silence
    min_seconds: float = 0.5  # shorter than this (after trimming) is "empty" (prompts: 0.2)
    max_bytes: int = 200_000_000
    silence_dbfs: float = -45.0  # frames quieter than this are silence
    target_lufs: float = -18.0  # integrated loudness of every variant
    peak_dbfs: float = -1.0  # never louder than this, whatever the gain
    phone_rate: int = 8000  # what Asterisk plays natively (slin)
    kiosk_rate: int = 22050  # wider band for the kiosk speaker


@dataclass(frozen=True)
class SpeechSettings:
    # auto: the best model installed in DATA/models (whisper, then Spanish vosk, then
    # pocketsphinx); none: voice off, keys only; or one engine: whisper | vosk | pocketsphinx
    engine: str = "auto"
    model: str = ""  # model folder; empty: the engine's best one installed in DATA/models
    dictionary: str = ""  # pocketsphinx pronunciation dictionary (defaults to one in the model)
    # below this confidence a word is rejected; 0: the engine's own (whisper 0.75, others 0.6)
    accept_threshold: float = 0.0
    confirm_threshold: float = 0.8  # below this a costly command is confirmed first
    suggest_threshold: float = 0.4  # between this and accept: "do you want the lesson on ...?"

    def __post_init__(self) -> None:
        if self.engine not in ("auto", "none", "whisper", "vosk", "pocketsphinx"):
            raise ConfigError(f"El ajuste speech.engine debe ser auto, none, whisper, vosk o "
                              f"pocketsphinx, no {self.engine!r}.")


@dataclass(frozen=True)
class VoiceSettings:
    """Text-to-speech for prompts and placeholders (pyttsx3 on espeak-ng)."""

    voice_es: str = "roa/es-419"
    voice_qu: str = "roa/es-419"  # no Quechua voice exists; Spanish phonetics read it acceptably
    rate: int = 150  # words per minute
    timeout_seconds: float = 60.0


@dataclass(frozen=True)
class MenuSettings:
    languages: tuple[str, ...] = ("es", "qu")
    default_language: str = "es"
    listen_seconds: float = 6.0  # how long to wait for a key or a word after a prompt
    max_attempts: int = 3  # repeat a prompt this many times on silence or a wrong key
    # A first-time caller hears the first lesson as soon as her language is known (or assumed
    # after one silence): in a large service 52% of callers never got past the home menu.
    first_lesson_at_once: bool = True
    skip_ms: int = 10_000  # back / forward step during a lesson
    resume_min_ms: int = 10_000  # offer to resume only past this point ...
    resume_tail_ms: int = 10_000  # ... and not in the last seconds of a lesson
    pause_seconds: float = 60.0  # a paused lesson waits this long, max_attempts times, then ends
    message_max_seconds: int = 120


@dataclass(frozen=True)
class IvrSettings:
    """The phone line: FastAGI, AMI, missed-call callbacks and outbound alerts."""

    listen: str = "127.0.0.1:4573"  # the FastAGI server
    device: str = "line-1"  # names this line in statistics
    ami_host: str = "127.0.0.1"
    ami_port: int = 5038
    ami_user: str = "pallay"
    ami_secret_file: str = "ami.secret"  # relative to the data folder; never put the secret in git
    outbound_channel: str = "PJSIP/{number}@pallay-trunk"  # or Quectel/quectel0/{number}
    outbound_context: str = "pallay-outbound"  # where an answered callback or alert lands
    outbound_caller_id: str = ""  # shown on her phone; empty: the trunk's own number
    ring_seconds: int = 30  # how long her phone rings before a try counts as unanswered
    max_channels: int = 2  # outgoing calls at once (a USB GSM modem carries 1)
    callback_daily_cap: int = 3  # callbacks per number per local day
    callback_tries: int = 3
    callback_retry_minutes: float = 10.0
    callback_hours: str = "07:00-20:00"  # local time; outside it calls wait for the morning
    callback_expiry_hours: float = 16.0  # a callback not placed by then is given up (overnight fits)
    timezone: str = "America/Lima"  # Peru: UTC-5 all year
    alert_tries: int = 3
    alert_retry_minutes: float = 30.0
    alerts_per_minute: int = 6  # new-lesson and safety calls placed per minute at most
    # A spoken answer: "stream" (AudioSocket: ends ~0.45 s after her last sound) or "record"
    # (RECORD FILE: ends after a whole second of silence); stream falls back to record by itself.
    capture: str = "stream"
    audiosocket_listen: str = "127.0.0.1:0"  # where Asterisk streams her voice; port 0: any free


@dataclass(frozen=True)
class SyncSettings:
    """An edge (kiosk or second phone line) syncing with the central admin server."""

    server: str = ""  # e.g. "http://192.168.1.10:8000"; empty: sync by USB packs only
    token_file: str = "sync.token"  # relative to the data folder; printed by `pallay kiosks add`
    edge: str = ""  # this edge's name on the server (learnt from the server when empty)
    variants: tuple[str, ...] = ("kiosk",)  # media this edge plays: kiosk, or phone for a line
    interval_minutes: float = 15.0  # background sync after a success ...
    retry_minutes: float = 1.0  # ... and after a failure, doubling up to max_backoff_minutes
    max_backoff_minutes: float = 60.0
    timeout_seconds: float = 30.0  # one HTTP request without a byte moving
    batch: int = 2000  # events per request


@dataclass(frozen=True)
class KioskSettings:
    """The kiosk box: sound, inputs, voice, attract mode and group listening."""

    device: str = "kiosk-1"  # names this kiosk in statistics
    keys: tuple[str, ...] = ("auto",)  # keyboard, gpio, keypad, usb; auto: every one present
    output_device: str = ""  # PortAudio device name or number; empty: the default device
    input_device: str = ""  # the microphone; "none" turns voice off
    latency_ms: float = 50.0  # PortAudio underflows on a Raspberry Pi below about 30 ms
    mic_rate: int = 16000
    volume: float = 0.8  # 0..1, changed with the volume keys and remembered across restarts
    volume_step: float = 0.1
    attract_minutes: float = 5.0  # invite passers-by this often when idle; 0 turns it off
    quiet_hours: str = "21:00-07:00"  # local time without invitations; empty: never quiet
    timezone: str = "America/Lima"
    ask_group: bool = True  # after a lesson heard to the end: "how many people listened?"
    talk: str = "press"  # push-to-talk: hold (speak while held), press (then speak), open, off
    # GPIO (BCM numbers): "KEY:PIN" for each big button, KEY one of 0-9 * # vol+ vol- talk.
    buttons: tuple[str, ...] = ()
    keypad_rows: tuple[str, ...] = ()  # a 3x4 matrix keypad: four row pins ...
    keypad_cols: tuple[str, ...] = ()  # ... and three column pins
    usb_keypad: str = ""  # an evdev path; empty: the first keypad-like device found
    message_silence_s: float = 5.0  # a message ends after this much silence


@dataclass(frozen=True)
class AdminSettings:
    """The web panel (``pallay serve``): where it listens and how it keeps sessions."""

    host: str = "0.0.0.0"  # every address of this machine, so leaders reach it on the LAN
    port: int = 8080
    threads: int = 6  # requests served at once (a long upload holds one)
    max_upload_mb: int = 100  # bigger uploads get a friendly "too big" page
    session_minutes: int = 480  # log-in lasts a working day
    secure_cookies: bool = False  # True only behind HTTPS; plain HTTP on a LAN needs False
    language: str = "es"  # es | en


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path("data")
    media: MediaSettings = field(default_factory=MediaSettings)
    speech: SpeechSettings = field(default_factory=SpeechSettings)
    voice: VoiceSettings = field(default_factory=VoiceSettings)
    menu: MenuSettings = field(default_factory=MenuSettings)
    ivr: IvrSettings = field(default_factory=IvrSettings)
    sync: SyncSettings = field(default_factory=SyncSettings)
    kiosk: KioskSettings = field(default_factory=KioskSettings)
    admin: AdminSettings = field(default_factory=AdminSettings)

    @property
    def db_path(self) -> Path:
        return self.data_dir / "pallay.db"

    @property
    def media_dir(self) -> Path:
        return self.data_dir / "media"

    @property
    def messages_dir(self) -> Path:
        return self.data_dir / "messages"

    @property
    def cache_dir(self) -> Path:
        return self.data_dir / "cache"

    @property
    def secret_path(self) -> Path:
        """The HMAC key for listener pseudonyms: a file beside, never inside, the database."""
        return self.data_dir / "secret.key"


SECTIONS = {"media": MediaSettings, "speech": SpeechSettings, "voice": VoiceSettings,
            "menu": MenuSettings, "ivr": IvrSettings, "sync": SyncSettings,
            "kiosk": KioskSettings, "admin": AdminSettings}


def load(data_dir: str | Path | None = None, config_file: str | Path | None = None,
         environ: dict[str, str] | None = None) -> Settings:
    """Build settings from defaults, a TOML file and the environment; raise ConfigError if invalid."""
    environ = dict(os.environ if environ is None else environ)
    # Absolute: Asterisk takes a relative STREAM FILE path as one under its own sounds folder.
    data = Path(data_dir or environ.get("PALLAY_DATA") or "data").resolve()
    config_file = Path(config_file) if config_file else data / "pallay.toml"
    sections: dict[str, dict] = {name: {} for name in SECTIONS}
    if config_file.exists():
        try:
            parsed = tomllib.loads(config_file.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{config_file} no es un archivo TOML válido: {exc}") from exc
        for name, values in parsed.items():
            if name not in SECTIONS or not isinstance(values, dict):
                raise ConfigError(f"{config_file}: la sección [{name}] no existe (hay: "
                                  f"{', '.join(SECTIONS)}).")
            sections[name].update(values)
    for name, cls in SECTIONS.items():
        for f in dataclasses.fields(cls):
            key = f"PALLAY_{name}_{f.name}".upper()
            if key in environ:
                sections[name][f.name] = environ[key]
    built = {name: _build(cls, sections[name], name) for name, cls in SECTIONS.items()}
    return Settings(data_dir=data, **built)


def _build(cls, values: dict, section: str):
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, raw in values.items():
        if key not in fields:
            raise ConfigError(f"El ajuste {section}.{key} no existe.")
        default = getattr(cls(), key)
        kwargs[key] = _coerce(raw, default, f"{section}.{key}")
    return cls(**kwargs)


_KINDS = {int: "un número entero", float: "un número", str: "un texto"}


def _coerce(raw, default, name: str):
    try:
        if isinstance(default, bool):
            return raw if isinstance(raw, bool) else str(raw).lower() in ("1", "true", "yes", "on")
        if isinstance(default, tuple):
            items = raw.split(",") if isinstance(raw, str) else list(raw)
            return tuple(str(i).strip() for i in items if str(i).strip())
        return type(default)(raw)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"El ajuste {name} debe ser {_KINDS.get(type(default), 'otro valor')}, "
                          f"no {raw!r}.") from exc
