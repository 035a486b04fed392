"""Texts that residents and staff both see, marked for a second, resident version.

Residents (often elderly) are addressed politely, "ông/bà" and "bà con", and are asked rather
than told; volunteers and leaders are "bạn". Each text below is used somewhere with `ctx.t`
under the same English msgid; listing it here makes `make locales` extract a second catalog
entry with the message context "resident", and a resident's translator (handlers/i18n.py)
shows that one when it is translated. Texts only residents see (the FAQ's framing, the
resident greeting) are written politely in their plain entry and are not listed here.

To give another shared text a resident version: add it here, `make locales`, write the
Vietnamese `msgstr` of its `msgctxt "resident"` entry (the English one stays empty unless the
English should differ too). tests/test_texts.py checks that every text here is used in the code.
"""

from __future__ import annotations

from handlers.i18n import RESIDENT


def pgettext(context: str, msgid: str) -> str:
    """Marks `msgid` for extraction in `context` (Babel's default keyword)."""
    assert context == RESIDENT
    return msgid


def npgettext(context: str, singular: str, plural: str) -> tuple[str, str]:
    """Marks a counted text for extraction in `context`."""
    assert context == RESIDENT
    return singular, plural


TEXTS = (
    # everyday replies where options are offered (handlers/dispatch.py)
    pgettext("resident", "You're welcome! To go on, choose one of the options below."),
    pgettext("resident", "All right. To go on, choose one of the options below."),
    # /start, /help, /lang, /cancel
    pgettext("resident", "Hello {name}!"),
    pgettext("resident", "Hello!"),
    pgettext("resident", "You are using GoCua as a {role}. Commands:"),
    pgettext("resident", "the commands you can use"),
    pgettext("resident", "Choose your language:"),
    pgettext("resident", "Cancelled. Nothing was saved. Type /help to see what you can do."),
    pgettext("resident", "There is nothing to cancel."),
    # a typed answer that picks no option (handlers/choices.py)
    pgettext("resident", "There is nothing to choose here. Type /help to see what you can do."),
    pgettext("resident", "There is no option {number}; choose 1–{count}."),
    pgettext("resident", "There is no option {number}; the only option is 1."),
    pgettext("resident", "Several options fit “{text}”. Which one?"),
    pgettext("resident", "Choose one:"),
    pgettext("resident", "“{text}” is not one of the options. Answer with a number from the list "
                         "(or type a /command: /help lists them)."),
    pgettext("resident", "“{text}” is not one of the options. Press one of the buttons "
                         "(or type a /command: /help lists them)."),
    # /join (a resident becomes staff with an invite code)
    pgettext("resident", "Send me the invite code you were given (or /cancel)."),
    pgettext("resident", "This invite code is not valid: it may be mistyped, already used or "
                         "expired. Check it and send /join CODE again, or ask whoever gave it to "
                         "you for a new one."),
    pgettext("resident", "Too many wrong invite codes were tried. For safety, please wait: you can "
                         "send /join CODE again after {time} (Vietnam time)."),
    # routing
    pgettext("resident", "This button is out of date. Type /help to see what you can do now."),
    pgettext("resident", "Type /help to see what I can do."),
    pgettext("resident", "I can only read text messages. Type /help to see what I can do."),
    pgettext("resident", "I don't know the command {command}. Type /help to see the commands."),
    pgettext("resident", "Did you mean {command}?"),
    pgettext("resident", "The question above still waits for your answer (or /cancel to stop)."),
    pgettext("resident", "The command {command} is not available to you. Type /help to see yours."),
    pgettext("resident", "This household is not in your area, so you cannot open it."),
    # /visit
    pgettext("resident", "What do you need help with? Write it in a few words (or /cancel)."),
    pgettext("resident", "Which ward or commune do you live in?"),
    pgettext("resident", "Which village or residential group?"),
    pgettext("resident", "Your phone number, so the volunteer can call you? (optional)"),
    pgettext("resident", "Your address or a landmark near your house? (optional)"),
    pgettext("resident", "Your request #{id} is saved. No volunteer is registered for your area "
                         "yet; a leader will see it."),
    # /link
    pgettext("resident", "Your link code is {code}. On your other app (Telegram or Zalo), send "
                         "/link {code} within {minutes} minutes: both accounts then act as one, "
                         "with the same households and roles."),
    pgettext("resident", "Too many wrong codes. Try again in an hour."),
    pgettext("resident", "This link code is wrong or has expired. Send /link on your other app for "
                         "a new one."),
    pgettext("resident", "Linked. This account is now {name}, the same as on your other app."),
    # answers that fail validation in /visit
    pgettext("resident", "A Vietnamese mobile number has 10 digits; you sent {count}."),
    pgettext("resident", "The answer is empty. Please type it."),
    pgettext("resident", "That is too long: at most {max} characters; you sent {count}."),
    pgettext("resident", "The text has invisible control characters. Please type it again."),
)

COUNTED_TEXTS = (
    npgettext("resident",
              "Your request #{id} was sent to {n} volunteer. I will tell you when they take it.",
              "Your request #{id} was sent to {n} volunteers. I will tell you who takes it."),
)
