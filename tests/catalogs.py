"""The message catalogs as the tests read them: a locale's .po file, and the texts the code holds
now (extracted afresh with the keywords of `make locales`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from babel.messages.pofile import read_po

from handlers.i18n import LOCALES_DIR

ROOT = Path(__file__).resolve().parent.parent


def catalog(locale: str):
    with (LOCALES_DIR / locale / "LC_MESSAGES" / "messages.po").open("rb") as fh:
        return read_po(fh, locale=locale)


def extracted(tmp_path: Path):
    out = tmp_path / "fresh.pot"
    subprocess.run(
        [sys.executable, "-m", "babel.messages.frontend", "extract", "-F", "babel.cfg",
         "--no-location", "-k", "N_", "-k", "_", "-k", "t", "-k", "plural:1,2", "-o", str(out),
         "bot", "handlers", "conversations", "db", "reports"],
        cwd=ROOT, check=True, capture_output=True,
    )
    with out.open("rb") as fh:
        return read_po(fh)
