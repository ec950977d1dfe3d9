"""The core of pallay: store, catalogue, media, menu engine, speech, prompts, statistics, settings.

Nothing here imports the front ends (ivr, kiosk, admin), Flask, Asterisk, sounddevice or gpiozero.
"""
