"""Stand-ins for the platforms' APIs (real HTTP servers on 127.0.0.1), for tests and bench/."""

from tests.fakes.telegram_api import FakeTelegramAPI, FakeUser

__all__ = ["FakeTelegramAPI", "FakeUser"]
