"""The kiosk: a Raspberry Pi box with a speaker, big buttons and a microphone in a community hall.

One controller thread owns the box (``kiosk.controller``); inputs and audio callbacks only put
items on its one queue (``kiosk.inbox``). Each session runs on the shared session driver
(``audio_lessons.driver``) through ``kiosk.media.KioskMedia``.
"""
