"""A bare aiogram 3 echo bot: the baseline of the throughput benchmark.

The webhook set-up aiogram offers (aiohttp server, SimpleRequestHandler with
handle_in_background=False and the secret token, API base from TELEGRAM_API_BASE; GoCua's adapter
answers the same way, with its own handler that checks the secret as bytes and answers malformed
updates 200), and nothing else: one message handler that sends the text back with bot.send_message.

    TELEGRAM_BOT_TOKEN=123456:TEST TELEGRAM_API_BASE=http://127.0.0.1:8081 \
    GOCUA_WEBHOOK_SECRET=s3cret-token python bench/echo_bot.py \
        --webhook-url http://127.0.0.1:8090/tg --host 127.0.0.1 --port 8090
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from urllib.parse import urlsplit

from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.types import CallbackQuery, Message
from aiogram.webhook.aiohttp_server import SimpleRequestHandler, setup_application
from aiohttp import web


def build_app(token: str, api_base: str, secret: str | None, webhook_url: str) -> web.Application:
    session = AiohttpSession(api=TelegramAPIServer.from_base(api_base))
    bot = Bot(token=token, session=session)
    dispatcher = Dispatcher()

    @dispatcher.message()
    async def echo(message: Message, bot: Bot) -> None:
        await bot.send_message(message.chat.id, message.text or "?")

    @dispatcher.callback_query()
    async def echo_button(query: CallbackQuery, bot: Bot) -> None:
        # The same work a button needs at the least: stop the spinner, answer in the chat.
        await bot.answer_callback_query(query.id)
        await bot.send_message(query.from_user.id, query.data or "?")

    async def on_startup(bot: Bot) -> None:
        await bot.set_webhook(webhook_url, secret_token=secret)

    dispatcher.startup.register(on_startup)

    app = web.Application()
    app.router.add_get("/healthz", _healthz)
    SimpleRequestHandler(
        dispatcher, bot, secret_token=secret, handle_in_background=False
    ).register(app, path=urlsplit(webhook_url).path or "/")
    setup_application(app, dispatcher, bot=bot)
    return app


async def _healthz(_request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


def main() -> int:
    parser = argparse.ArgumentParser(description="bare aiogram echo bot (benchmark baseline)")
    parser.add_argument("--webhook-url", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args()
    logging.basicConfig(stream=sys.stderr, level=args.log_level.upper(), format="%(message)s")
    token = os.environ.get("TELEGRAM_BOT_TOKEN")
    if not token:
        print("echo_bot: TELEGRAM_BOT_TOKEN is not set", file=sys.stderr)
        return 2
    app = build_app(
        token,
        os.environ.get("TELEGRAM_API_BASE") or "https://api.telegram.org",
        os.environ.get("GOCUA_WEBHOOK_SECRET") or None,
        args.webhook_url,
    )
    web.run_app(app, host=args.host, port=args.port, print=None, access_log=None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
