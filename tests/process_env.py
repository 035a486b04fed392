"""The environment for a `gocua` process a test starts: this machine's, without the settings a
developer or CI may have exported (GOCUA_*, the channels' tokens), so that each test sets its own.
GOCUA_CACHE_DIR stays: the run's shared folder for the trained FAQ index (tests/conftest.py), so
that the process neither trains the index anew nor writes to the user's ~/.cache."""

from __future__ import annotations

import os

KEPT = frozenset({"GOCUA_CACHE_DIR"})


def clean_env(*prefixes: str) -> dict[str, str]:
    """os.environ without the variables starting with `prefixes` (default GOCUA_, TELEGRAM_,
    ZALO_), but for KEPT."""
    dropped = prefixes or ("GOCUA_", "TELEGRAM_", "ZALO_")
    return {k: v for k, v in os.environ.items() if k in KEPT or not k.startswith(dropped)}
