"""/link: one GoCua user on Telegram and Zalo, so a volunteer's households and runs follow them.

`/link` on one app gives a one-time code; `/link CODE` sent from the other app joins that
account to the first (roles, households, runs, requests: everything moves). Wrong codes are
audited and limited to a few an hour.
"""

from __future__ import annotations

from db.models import User
from db.repo.links import VALIDITY, LinkResult, create_link_code, use_link_code
from db.repo.users import role_grants
from handlers.basic import greeting
from handlers.context import Context
from handlers.i18n import N_
from handlers.router import EVERYONE, Router
from handlers.types import Reply

router = Router("link")


@router.command("/link", roles=EVERYONE, help=N_("use GoCua on Telegram and Zalo as one person: /link"),
                order=40)
async def link(ctx: Context, args: str) -> list[Reply]:
    if args.strip():
        return await _use(ctx, args)
    code = await create_link_code(ctx.session, ctx.user.id, ctx.now)
    return [Reply(ctx.t(
        "Your link code is {code}. On your other app (Telegram or Zalo), send /link {code} within "
        "{minutes} minutes: both accounts then act as one, with the same households and roles.",
        code=code.code, minutes=int(VALIDITY.total_seconds() // 60),
    ))]


async def _use(ctx: Context, raw_code: str) -> list[Reply]:
    dropped = ctx.user
    result, keep = await use_link_code(ctx.session, raw_code, dropped, ctx.now, ctx.incoming.channel)
    if result is LinkResult.TOO_MANY:
        return [Reply(ctx.t("Too many wrong codes. Try again in an hour."))]
    if result is LinkResult.UNKNOWN:
        return [Reply(ctx.t("This link code is wrong or has expired. Send /link on your other app "
                            "for a new one."))]
    if result is LinkResult.SAME_USER:
        return [Reply(ctx.t("This account is already linked."))]
    assert keep is not None
    # This chat now belongs to the user behind the code; the account's old user is gone.
    ctx.session.expunge(dropped)
    user = await ctx.session.get(User, keep)
    assert user is not None
    ctx.user = user
    ctx.conversation.user_id = keep
    ctx.grants = await role_grants(ctx.session, keep)
    ctx.relocalise()
    return [Reply(ctx.t("Linked. This account is now {name}, the same as on your other app.",
                        name=user.display_name)), await greeting(ctx)]
