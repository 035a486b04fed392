"""One thin adapter per platform: platform update → Incoming, Reply → platform calls."""
