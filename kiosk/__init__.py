"""The Raspberry Pi kiosk: player, keys, microphone and sync."""
