"""The Spanish admin panel (Flask) and the sync API for kiosks."""
