"""What the core counts for Prometheus: updates per channel and outcome, handler latency,
errors by kind, open runs. The webhook servers expose it at GET /metrics (bot/metrics.py)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)
UPDATES = Counter("gocua_updates_total", "Updates received, by channel and outcome",
                  ["channel", "outcome"], registry=REGISTRY)
LATENCY = Histogram("gocua_update_seconds", "Time to handle one update in the core (one transaction)",
                    ["channel"], registry=REGISTRY,
                    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0))
ERRORS = Counter("gocua_errors_total", "Errors, by kind (handler, database, send)", ["kind"],
                 registry=REGISTRY)
# Read from the database at scrape time; with several workers the last one scraped is the truth.
OPEN_RUNS = Gauge("gocua_open_runs", "Procedure runs in progress or blocked, by status", ["status"],
                  registry=REGISTRY, multiprocess_mode="mostrecent")

# Invite codes that granted nothing: wrong (unknown, used, expired), held_off (the sender tried
# too many), ceiling (too many wrong codes from everyone this minute).
INVITE_FAILURES = Counter("gocua_invite_failures_total", "Invite codes that granted nothing, by outcome",
                          ["outcome"], registry=REGISTRY)
_INVITE_OUTCOMES = {"unknown": "wrong", "used": "wrong", "expired": "wrong", "held_off": "held_off",
                    "busy": "ceiling"}

def observe_update(channel: str, outcome: str, seconds: float) -> None:
    """`outcome`: handled, duplicate, flood_limited (not handled: the chat was over the flood
    limit, handlers/flood.py), handler_failed or database_unavailable."""
    UPDATES.labels(channel=channel, outcome=outcome).inc()
    LATENCY.labels(channel=channel).observe(seconds)
    if outcome == "handler_failed":
        ERRORS.labels(kind="handler").inc()
    elif outcome == "database_unavailable":
        ERRORS.labels(kind="database").inc()


def count_invite_failure(result: str) -> None:
    """Counts a claim result (db/repo/invites.py ClaimResult) that granted nothing."""
    outcome = _INVITE_OUTCOMES.get(str(result))
    if outcome is not None:
        INVITE_FAILURES.labels(outcome=outcome).inc()
