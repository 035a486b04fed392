"""The one order procedures are listed in, everywhere a person sees a list of them: /flows, the
household's procedure picker, the /stats summary and drop-off menu, the export's summary sheet
and `gocua stats --json`.

The order volunteers meet them at the door: identity first, then what it unlocks. A flow file
not named here (a new one) comes after these, by id; tests/test_flows_shipped.py checks that
every shipped flow has its place.
"""

from __future__ import annotations

from collections.abc import Iterable

FLOW_ORDER = ("vneid", "public_service_account", "residence_confirmation", "birth_registration",
              "social_pension", "digital_signature", "smartphone_skills")
_RANK = {flow_id: i for i, flow_id in enumerate(FLOW_ORDER)}


def flow_order_key(flow_id: str) -> tuple[int, str]:
    """Sort key: the flows of FLOW_ORDER in its order, then any other by id."""
    return (_RANK.get(flow_id, len(FLOW_ORDER)), flow_id)


def in_flow_order(flow_ids: Iterable[str]) -> list[str]:
    """The ids (each once) in the one flow order."""
    return sorted(set(flow_ids), key=flow_order_key)
