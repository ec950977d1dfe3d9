"""``python -m kiosk``: the same as ``pallay kiosk`` (for a systemd unit or a test subprocess)."""

from audio_lessons.cli import main

main(["kiosk", *__import__("sys").argv[1:]], prog_name="pallay")
