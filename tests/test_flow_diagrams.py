"""Each shipped flow has a current Mermaid diagram beside it (conversations/flows/<id>.mmd)."""

from __future__ import annotations

from pathlib import Path

import pytest

from conversations.diagram import flow_to_mermaid
from conversations.flow_model import load_flow_file

FLOWS = sorted((Path(__file__).resolve().parent.parent / "conversations" / "flows").glob("*.yaml"))


@pytest.mark.parametrize("path", FLOWS, ids=[p.stem for p in FLOWS])
def test_diagram_matches_flow(path: Path):
    """The committed diagram is what the flow file draws now (regenerate after editing)."""
    diagram = path.with_suffix(".mmd")
    assert diagram.exists(), f"run: python -m conversations.diagram {path} > {diagram}"
    assert diagram.read_text(encoding="utf-8").strip() == flow_to_mermaid(load_flow_file(path)).strip()
