"""Texts the conversation layer shows to a person, as English msgids.

`N_` only marks a text for `pybabel extract` (keywords N_, _, t); the handler layer translates
the msgid and fills its {placeholders}. conversations/ never translates anything itself.
"""

from __future__ import annotations


def N_(s: str) -> str:
    """Mark a text for extraction and return it unchanged."""
    return s


# Header of every step message: position on the run's path and the honest total (engine.py).
STEP_POSITION = N_("Step {n}/{total}")

# Buttons.
BUTTON_CONTINUE = N_("Continue")
BUTTON_DONE = N_("Done")
BUTTON_SKIP = N_("Skip")
BUTTON_PROBLEM = N_("Problem")
BUTTON_OTHER_REASON = N_("Other reason (type it)")
BUTTON_BACK = N_("Back")

# Engine messages.
ASK_REASON = N_("What is the problem?")
ASK_REASON_TEXT = N_("Type the problem in a few words.")
USE_BUTTONS = N_("Please answer with one of the buttons.")
STALE_BUTTON = N_("This button is out of date.")
STEP_MISSING = N_("This step no longer exists: the procedure was changed. Please start it again.")
RUN_NOT_ACTIVE = N_("This procedure is already finished.")
LOOP_LIMIT = N_("This procedure has an error (it goes round in circles). Please tell the team.")
PROBLEM_NOTED = N_("Problem noted: {reason}")
COMPLETED = N_("Procedure finished.")
BLOCKED = N_("Stopped here because of a problem: {reason}")
ABANDONED = N_("Procedure abandoned. What was done so far is kept; the household's page offers "
                "to start it again.")
DIGITAL_READY = N_("Marked as able to use e-services on a phone.")
