"""GET /metrics on the webhook server: Prometheus text with updates by channel and outcome,
handler latency, errors and open runs, counted where a user would notice them."""

from __future__ import annotations

from dataclasses import replace

import aiohttp
from aiohttp.test_utils import TestServer
from prometheus_client.parser import text_string_to_metric_families

from bot.channels.zalo import ZaloChannel
from bot.channels.zalo_api import ZaloAPI
from bot.seed_demo import seed_demo
from handlers.dispatch import ROUTES
from tests.chat import Talker
from tests.test_flow_runs import start_flow


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


async def scrape(app) -> dict:
    channel = ZaloChannel(app, ZaloAPI("1:unused", "http://127.0.0.1:9"))
    server = TestServer(channel.webhook_app("/zalo", secret="metrics-secret-1"))
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as http, http.get(server.make_url("/metrics")) as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/plain")
            return samples(await response.text())
    finally:
        await server.close()
        await channel.close()


async def test_metrics_count_updates_duplicates_failures_and_open_runs(app, monkeypatch):
    await seed_demo(app)
    before = await scrape(app)
    an = Talker(app, "an", channel="console", lang="en")
    await an.say("/help", update_id="m-1")
    await an.say("/help", update_id="m-1")  # the platform delivers it again
    await start_flow(an, "HV-TL-001", "vneid")

    async def broken(ctx, args):
        raise RuntimeError("a bug")

    monkeypatch.setitem(ROUTES.commands, "/help", replace(ROUTES.commands["/help"], handler=broken))
    await an.say("/help")
    assert "something went wrong" in an.text()
    after = await scrape(app)

    def delta(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0) - before.get(key, 0)

    assert delta("gocua_updates_total", channel="console", outcome="duplicate") == 1
    assert delta("gocua_updates_total", channel="console", outcome="handler_failed") == 1
    assert delta("gocua_updates_total", channel="console", outcome="handled") >= 4
    assert delta("gocua_errors_total", kind="handler") == 1
    assert delta("gocua_update_seconds_count", channel="console") == delta(
        "gocua_updates_total", channel="console", outcome="handled") + 2
    assert after[("gocua_open_runs", (("status", "active"),))] == 1


async def test_metrics_count_invite_codes_that_granted_nothing(app):
    """A wrong invite code shows in /metrics as gocua_invite_failures_total{outcome="wrong"}."""
    await seed_demo(app)
    before = await scrape(app)
    await Talker(app, "doan-ma", lang="en").say("/join ABCD-EFGH-JKMN")
    after = await scrape(app)
    key = ("gocua_invite_failures_total", (("outcome", "wrong"),))
    assert after.get(key, 0) - before.get(key, 0) == 1
