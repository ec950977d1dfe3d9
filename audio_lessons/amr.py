"""AMR (feature phones): split the RFC 4867 storage format into frames, decode with libopencore.

ffmpeg's own AMR decoder drops the comfort-noise (DTX) frames feature phones send in pauses,
which shortens the recording and glues words together; libopencore (through ctypes) keeps them.
"""

from __future__ import annotations

import ctypes

import numpy as np

from audio_lessons.errors import MediaError

# AMR storage format (RFC 4867 section 5): bytes after the TOC byte, by frame type; -1 = invalid.
FORMATS = {
    "amr_nb": (b"#!AMR\n", 8000, 160, (12, 13, 15, 17, 19, 20, 26, 31, 5) + (-1,) * 6 + (0,)),
    "amr_wb": (b"#!AMR-WB\n", 16000, 320,
               (17, 23, 32, 36, 40, 46, 50, 58, 60, 5) + (-1,) * 4 + (0, 0)),
}


class BadFrame(ValueError):
    """The stream breaks at ``seconds``: what came before it is good audio."""

    def __init__(self, position: int, seconds: float) -> None:
        super().__init__(f"bad AMR frame at byte {position}")
        self.seconds = seconds


def native_rate(codec: str) -> int:
    return FORMATS[codec][1]


def decode(codec: str, data: bytes, max_seconds: float | None = None) -> np.ndarray:
    """int16 samples at the codec's native rate from storage-format ``data``.

    Frames past ``max_seconds`` are not decoded. ValueError if the header is missing, BadFrame if a
    frame is invalid or cut.
    """
    magic, native, per_frame, sizes = FORMATS[codec]
    if not data.startswith(magic):
        raise ValueError("AMR data lacks its header")
    frames, pos = [], len(magic)
    max_frames = None if max_seconds is None else int(max_seconds * native / per_frame)
    while pos < len(data) and (max_frames is None or len(frames) < max_frames):
        size = sizes[(data[pos] >> 3) & 0x0F]
        if size < 0 or pos + 1 + size > len(data):
            raise BadFrame(pos, len(frames) * per_frame / native)
        frames.append(data[pos:pos + 1 + size])
        pos += 1 + size
    return _opencore(codec, frames, per_frame)


def _opencore(codec: str, frames: list[bytes], per_frame: int) -> np.ndarray:
    nb = codec == "amr_nb"
    try:
        lib = ctypes.CDLL("libopencore-amrnb.so.0" if nb else "libopencore-amrwb.so.0")
    except OSError as exc:
        raise MediaError("Falta el decodificador AMR en el servidor (paquete libopencore-amr). "
                         "Avise al administrador.") from exc
    init, decode, close = ((lib.Decoder_Interface_init, lib.Decoder_Interface_Decode,
                            lib.Decoder_Interface_exit) if nb else
                           (lib.D_IF_init, lib.D_IF_decode, lib.D_IF_exit))
    init.restype = ctypes.c_void_p
    decode.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_int]
    close.argtypes = [ctypes.c_void_p]
    out = np.zeros(per_frame * len(frames), dtype=np.int16)
    state = init()
    try:
        base, step = out.ctypes.data, per_frame * 2
        for i, frame in enumerate(frames):
            decode(state, frame, base + i * step, 0)
    finally:
        close(state)
    return out
