"""What must never leave a trace (issue 7): a full citizen ID number (in the database, the logs,
the exports) and the bot token or webhook secret (in the logs, the HTTP answers, the command
line's errors). Real sessions through the webhook servers and the platforms' stand-ins, with
logging configured by bot/logging.py at DEBUG and everything it writes captured."""

from __future__ import annotations

import asyncio
import io
import logging
import sys
import unicodedata
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from aiohttp import ClientSession

from bot.app import App
from bot.config import ConfigError, Settings
from bot.logging import configure_logging
from bot.seed_demo import seed_demo
from db.models import FaqMiss, Resident, StepRecord, SupportRequest
from db.repo.areas import area_by_code
from db.repo.invites import create_invite
from tests.chat import all_rows, stored_anywhere
from tests.fakes import FakeTelegramAPI, FakeUser
from tests.process_env import clean_env
from tests.test_flow_runs import ID_FLOW
from tests.test_flows_telegram_e2e import post, press
from tests.test_stats import unzipped
from tests.test_telegram import free_port, running, webhook_bot

ROOT = Path(__file__).resolve().parent.parent
NOISY = ("aiogram.event", "aiohttp.access", "alembic", "aiosqlite")


@pytest.fixture
def logs(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    """bot/logging.py's configuration at DEBUG, writing to a buffer instead of stderr (structlog
    lines and every stdlib logger's records: aiogram, aiohttp, asyncio, SQLAlchemy)."""
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    root = logging.getLogger()
    saved = root.handlers[:], root.level, {name: logging.getLogger(name).level for name in NOISY}
    configure_logging("DEBUG")
    try:
        yield stream
    finally:
        root.handlers[:], root.level = saved[0], saved[1]
        for name, level in saved[2].items():
            logging.getLogger(name).setLevel(level)
        structlog.reset_defaults()


# -- citizen ID numbers -------------------------------------------------------------------------

# Each typed somewhere a person can type; all valid (a Da Nang province code, born 1990).
MEMBER_ID = "048090001234"  # a household member's citizen ID (the field made for it)
FLOW_ID = "048 090 001 235"  # a procedure's ID input, typed in groups
YEAR_ID = "048090001236"  # typed where a year is asked
REASON_ID = "048.090.001.237"  # inside a typed Problem reason
CMND = "201234567"  # an old 9-digit ID card number, in the same reason and elsewhere
ADDRESS_ID = "0480 9000 1238"  # in a new household's address
FAQ_ID = "048090 001239"  # in a resident's question to the FAQ
VISIT_ID = "048—090—001—240"  # in a /visit question
VISIT_ADDRESS_ID = "048,090,001,241"  # in the address of a visit request
CLOSE_ID = "048_090_001_242"  # in the note closing a visit request
CMND_2 = "191234568"
# More questions to the FAQ, with the separators a hostile probe got past the masking (#13).
FAQ_MORE = ("04809 0001243", "048/090/001/244", "048 090 001 2 45", "048\u200b090\u200b001\u200b246",
            "０４８０９０００１２４７", "cmnd 173/264/859")
TYPED = (MEMBER_ID, FLOW_ID, YEAR_ID, REASON_ID, CMND, ADDRESS_ID, FAQ_ID, VISIT_ID,
         VISIT_ADDRESS_ID, CLOSE_ID, CMND_2, *FAQ_MORE)


def bare(typed: str) -> str:
    """The ASCII digits of `typed`."""
    return "".join(str(unicodedata.decimal(ch)) for ch in typed if ch.isdecimal())


def needles() -> set[str]:
    """Each ID as typed, as bare digits and without its first and last digit."""
    return {form for typed in TYPED for form in (typed, bare(typed), bare(typed)[1:-1])}


@pytest.fixture
async def telegram(settings: Settings, app: App, logs: io.StringIO) -> AsyncIterator[FakeTelegramAPI]:
    """The Telegram bot in webhook mode against the stand-in, logging at DEBUG into `logs`."""
    async with webhook_bot(settings, app) as api:
        yield api


async def say(api: FakeTelegramAPI, user: FakeUser, text: str) -> str:
    """Send `text` as `user`; the text (or caption) of the bot's newest message to them."""
    await post(api, api.message(user, text))
    shown = api.last_message(user.id)
    return shown.get("text") or shown.get("caption") or ""


async def claim(app: App, api: FakeTelegramAPI, clock: Any, user: FakeUser, role: str) -> None:
    async with app.db.transaction() as session:
        area = await area_by_code(session, "danang.hai-van")
        code = (await create_invite(session, role=role, area=area, now=clock())).code
    assert "Welcome!" in "\n".join([await say(api, user, f"/start {code}"), *api.sent_texts(user.id)[-2:]])


async def test_no_full_citizen_id_in_the_database_the_logs_or_the_exports(telegram, app, clock, logs):
    """IDs typed into every free-text place of a Telegram session (member ID, a procedure's ID
    input, a year input, a Problem reason, an address, FAQ and /visit questions, a closing note),
    with any separators between their digits, end up masked: no table, log line, XLSX or CSV
    export, nor any message sent (the volunteer's visit notice included) holds one in full."""
    api = telegram
    await seed_demo(app)
    app.core.services.flows.add_yaml(ID_FLOW, "test_id_check.yaml")
    vol, leader = FakeUser(7201, "Hà", "Vũ", language_code="en"), FakeUser(7202, "Lan", language_code="en")
    resident = FakeUser(7203, "Bảy", language_code="en")
    await claim(app, api, clock, vol, "volunteer")
    await claim(app, api, clock, leader, "leader")

    # A household member with a citizen ID, then a 9-digit number where 12 digits are asked.
    await say(api, vol, "/household HV-TL-001")
    await press(api, vol, "Add a member")
    await say(api, vol, "Alăng Thị Nga")
    await say(api, vol, "1990")
    assert "12 digits; you sent 9" in await say(api, vol, CMND_2)
    await say(api, vol, MEMBER_ID)
    assert "Alăng Thị Nga added to HV-TL-001." in api.sent_texts(vol.id)[-2]

    # A procedure's ID input (grouped digits), a 9-digit number refused there first.
    await say(api, vol, "/household HV-TL-002")
    await press(api, vol, "Start a procedure")
    await press(api, vol, "ID check")
    assert "12 digits; you sent 9" in await say(api, vol, CMND)
    assert "How many children" in await say(api, vol, FLOW_ID)
    await say(api, vol, "2")

    # An ID typed where a year is asked; a Problem reason typed with an ID and a CMND in it.
    await say(api, vol, "/household HV-TL-001")
    await press(api, vol, "Start a procedure")
    await press(api, vol, "Social pension")
    await press(api, vol, "Alăng Thị Nga")
    await press(api, vol, "Continue")
    assert "year" in await say(api, vol, YEAR_ID)
    await say(api, vol, "/household HV-TL-003")
    await press(api, vol, "Start a procedure")
    await press(api, vol, "VNeID")
    await press(api, vol, "Yes, chip card")
    await press(api, vol, "Problem")
    await press(api, vol, "Other")
    await say(api, vol, f"Thẻ {REASON_ID} in sai tên, CMND cũ {CMND} vẫn còn")

    # A new household whose address carries an ID.
    await say(api, vol, "/new")
    await press(api, vol, "Tà Lang")
    await say(api, vol, "Hồ Văn Mười")
    await say(api, vol, f"Nhà có số CCCD {ADDRESS_ID} trên cửa")
    await press(api, vol, "Skip")

    # A resident: a question to the FAQ, a /visit question and address; the volunteer closes it.
    await say(api, resident, f"so cccd cua toi la {FAQ_ID} bi sai ngay sinh")
    for typed in FAQ_MORE:
        await say(api, resident, f"căn cước {typed} của tôi bị sai")
    await say(api, resident, f"/visit sửa căn cước {VISIT_ID} giúp tôi")
    await press(api, resident, "Hải Vân")
    await press(api, resident, "Tà Lang")
    await press(api, resident, "Skip")
    await say(api, resident, f"Hỏi nhà bà Bảy, CCCD {VISIT_ADDRESS_ID}")
    [request] = await all_rows(app, SupportRequest)
    await post(api, api.callback(vol, f"req:{request.id}:take", api.last_message(vol.id)["message_id"]))
    await press(api, vol, "Close it")
    await say(api, vol, f"Đã sửa xong, số mới {CLOSE_ID}")

    # The leader's exports, as the Telegram stand-in received them.
    await say(api, leader, "/export")
    await say(api, leader, "/export csv")
    files = {call["document"]["filename"].rsplit(".", 1)[1]: call["document"]["data"]
             for call in api.calls_to("sendDocument")}
    xlsx, csv_text = unzipped(files["xlsx"]), files["csv"].decode("utf-8-sig")

    # Everything typed reached the database, masked.
    [member] = await all_rows(app, Resident)
    assert member.citizen_id_masked == "0480******34"
    records = {r.step_id: r for r in await all_rows(app, StepRecord)}
    assert records["card_number"].value == "0480******35"
    assert any("048*******37" in (r.reason or "") for r in records.values())
    assert any("048*******39" in m.question for m in await all_rows(app, FaqMiss))
    assert "048*******42" in (await all_rows(app, SupportRequest))[0].close_note
    assert "048*******37" in xlsx and "048*******37" in csv_text
    log_text = logs.getvalue()
    assert "event='update.handled'" in log_text and logging.getLogger("aiogram").isEnabledFor(logging.DEBUG)

    sent = [call.get("text") or call.get("caption") or "" for method in ("sendMessage", "editMessageText")
            for call in api.calls_to(method)]
    assert any("048*******40" in text for text in sent)  # the visit notice, as the volunteer got it
    for needle in sorted(needles()):
        assert await stored_anywhere(app, needle) == [], needle
        assert needle not in log_text, needle
        assert needle not in xlsx, needle
        assert needle not in csv_text, needle
        assert not [text for text in sent if needle in text or needle in bare(text)], needle


async def test_a_crash_on_a_typed_id_logs_it_masked(telegram, app, logs, monkeypatch):
    """A handler that fails on what was typed, or an error from a library that quotes it, logs
    its traceback and messages with the ID masked, in GoCua's lines and in the libraries' own."""
    import handlers.faq

    def crash(text: str) -> str:
        logging.getLogger("some.library").warning("could not parse %r", text)
        raise ValueError(f"cannot read {text!r}")

    monkeypatch.setattr(handlers.faq, "redact_citizen_ids", crash)
    resident = FakeUser(7204, "Tám", language_code="en")
    assert "something went wrong" in await say(api := telegram, resident, "so 048 090 001 260 va 192/837/465")
    log_text = logs.getvalue()
    assert "update.handler_failed" in log_text and "cannot read" in log_text and "could not parse" in log_text
    assert "048*******60" in log_text and "192****65" in log_text
    for needle in ("048 090 001 260", "048090001260", "192/837/465", "192837465", "9283746"):
        assert needle not in log_text, needle
    assert api.calls_to("sendMessage")


# -- the bot token and the webhook secret ---------------------------------------------------------

TG_TOKEN = "987654321:AAH-known-Telegram-token_9x"
ZALO_TOKEN = "5550001112:known-Zalo-token-Qw3rty"
SECRET = "test-secret-123"  # the `settings` fixture's GOCUA_WEBHOOK_SECRET


def assert_secret_free(texts: list[str], *secrets: str) -> None:
    """None of `texts` holds a secret, nor a token's part after its colon."""
    parts = {s for secret in secrets for s in (secret, secret.split(":", 1)[-1])}
    for text in texts:
        for part in parts:
            assert part not in text, (part, text[:300])


async def get(url: str) -> str:
    async with ClientSession() as http, http.get(url) as resp:
        return f"{resp.status} {await resp.text()}"


async def test_telegram_logs_and_answers_hold_no_token_or_secret(settings, app, logs, tmp_path, monkeypatch):
    """Start-up refused (5xx, then 401), wrong webhook secrets, a 429, Telegram down while
    sending and a database outage: no log line at DEBUG, no HTTP answer, no error holds the
    token or the webhook secret."""
    from bot.channels import telegram as tg_module
    from handlers.pipeline import DatabaseUnavailable

    monkeypatch.setattr(tg_module, "SEND_RETRY_DELAYS", (0.01, 0.01, 0.01))
    answers: list[str] = []
    async with FakeTelegramAPI(token=TG_TOKEN) as api:
        tg = settings.with_overrides(telegram_bot_token=TG_TOKEN, telegram_api_base=api.base_url)
        api.fail("getMe", status=502, times=4)
        with pytest.raises(ConfigError) as down:
            await tg_module.run_telegram(tg, stop=asyncio.Event())
        api.fail("getMe", status=401, description="Unauthorized")
        with pytest.raises(ConfigError) as refused:
            await tg_module.run_telegram(tg, stop=asyncio.Event())
        answers += [str(down.value), str(refused.value)]

        port = free_port()
        async with running(tg, app, api.wait_for("setMyCommands", count=2),
                           webhook_url=f"http://127.0.0.1:{port}/telegram/hook", host="127.0.0.1", port=port):
            user = FakeUser(7301, "Tư", language_code="en")
            for wrong in ("not-the-secret", None, SECRET.upper()):
                status, body = await api.post_webhook(api.message(user, "/help"), secret=wrong)
                assert status == 401
                answers.append(body)
            api.fail("sendMessage", status=429, retry_after=1)
            answers.append(str(await api.post_webhook(api.message(user, "/help"))))
            api.fail("sendMessage", status=502, times=4)
            status, body = await api.post_webhook(api.message(user, "/start"))
            assert status == 500
            answers.append(body)

            async def down_db(incoming: Any, **_: Any) -> Any:
                raise DatabaseUnavailable("connection refused")

            monkeypatch.setattr(app.core, "handle", down_db)
            status, body = await api.post_webhook(api.message(user, "/help"))
            assert status == 500
            answers += [body, await get(f"http://127.0.0.1:{port}/healthz"),
                        await get(f"http://127.0.0.1:{port}/metrics")]
    log_text = logs.getvalue()
    assert "telegram.send_retry" in log_text and "telegram.rate_limited" in log_text
    assert "telegram.webhook_failed" in log_text
    assert_secret_free([log_text, *answers], TG_TOKEN, SECRET)


async def test_zalo_logs_and_answers_hold_no_token_or_secret(settings, app, logs, tmp_path, monkeypatch):
    """The same for Zalo: start-up refused (5xx, then 401), wrong webhook secrets, a 429, Zalo
    down while sending and a database outage leave the token and the secret nowhere."""
    from bot.channels import zalo as zalo_module
    from bot.channels.zalo_api import RetryPolicy, ZaloAPI
    from handlers.pipeline import DatabaseUnavailable
    from tests.fakes.zalo_api import FakeZaloAPI
    from tests.test_zalo import running as zalo_running

    fast = RetryPolicy(first_delay=0.01, tries=2)
    monkeypatch.setattr(zalo_module, "ZaloAPI", lambda token, base: ZaloAPI(token, base, retry=fast))
    answers: list[str] = []
    async with FakeZaloAPI(token=ZALO_TOKEN) as api:
        zs = settings.with_overrides(zalo_bot_token=ZALO_TOKEN, zalo_api_base=api.base_url)
        api.fail("getMe", status=502, times=fast.tries)
        with pytest.raises(ConfigError) as down:
            await zalo_module.run_zalo(zs, stop=asyncio.Event())
        api.fail("getMe", status=401, description="Unauthorized")
        with pytest.raises(ConfigError) as refused:
            await zalo_module.run_zalo(zs, stop=asyncio.Event())
        answers += [str(down.value), str(refused.value)]

        port = free_port()
        async with zalo_running(zs, app, api.wait_for("setWebhook"), host="127.0.0.1", port=port,
                                webhook_url=f"http://127.0.0.1:{port}/zalo/hook"):
            for wrong in ("not-the-secret", None, SECRET.upper()):
                status, body = await api.post_webhook(api.text("z1", "/help"), secret=wrong)
                assert status == 401
                answers.append(body)
            api.fail("sendMessage", status=429, retry_after=1)
            answers.append(str(await api.post_webhook(api.text("z1", "/help"))))
            api.fail("sendMessage", status=502, times=fast.tries)
            status, body = await api.post_webhook(api.text("z1", "/start"))
            assert status == 500
            answers.append(body)

            async def down_db(incoming: Any, **_: Any) -> Any:
                raise DatabaseUnavailable("connection refused")

            monkeypatch.setattr(app.core, "handle", down_db)
            status, body = await api.post_webhook(api.text("z1", "/help"))
            assert status == 500
            answers += [body, await get(f"http://127.0.0.1:{port}/healthz"),
                        await get(f"http://127.0.0.1:{port}/metrics")]
    log_text = logs.getvalue()
    assert "zalo.webhook_bad_secret" in log_text and "zalo.webhook_failed" in log_text
    assert_secret_free([log_text, *answers], ZALO_TOKEN, SECRET)


@pytest.mark.parametrize(("channel", "token_env", "base_env", "token"), [
    ("telegram", "TELEGRAM_BOT_TOKEN", "TELEGRAM_API_BASE", TG_TOKEN),
    ("zalo", "ZALO_BOT_TOKEN", "ZALO_API_BASE", ZALO_TOKEN),
])
async def test_gocua_run_errors_are_one_line_without_the_token(tmp_path, channel, token_env, base_env, token):
    """`gocua --log-level DEBUG run telegram|zalo` with a token the API refuses, or an API that
    cannot be reached, exits 2 with one `gocua: error:` line and no token anywhere on stderr."""
    free = free_port()
    for base, expected in ((None, "rejected"), (f"http://127.0.0.1:{free}", "cannot use")):
        env = clean_env()
        env.update({token_env: token, "GOCUA_WEBHOOK_SECRET": SECRET,
                    "GOCUA_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"})
        async with FakeTelegramAPI(token="1:other") as tg_api:
            from tests.fakes.zalo_api import FakeZaloAPI

            async with FakeZaloAPI(token="1:other") as zalo_api:
                refusing = tg_api if channel == "telegram" else zalo_api
                env[base_env] = base or refusing.base_url
                proc = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "bot", "--log-level", "DEBUG", "run", channel, "--webhook-url",
                    "http://127.0.0.1:9/hook", cwd=ROOT, env=env,
                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
                out, err = await asyncio.wait_for(proc.communicate(), 60)
        lines = err.decode().strip().splitlines()
        assert proc.returncode == 2, err.decode()
        assert lines[-1].startswith("gocua: error: ") and expected in lines[-1], lines
        assert sum(line.startswith("gocua: error") for line in lines) == 1
        assert "Traceback" not in err.decode()
        assert_secret_free([out.decode(), err.decode()], token, SECRET)
