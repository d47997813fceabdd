"""The one exception type whose message is meant for the user.

Interfaces (CLI, web, Slack, eval) show a `UserError`'s message as it is and exit or answer
accordingly. Anything else is a bug: it is logged with its traceback and the user sees a short
apology, never a plausible-looking message that hides it.
"""

from __future__ import annotations


class UserError(Exception):
    """Something the user can fix: a bad question or option, a missing index, a setting."""


class ConfigError(UserError):
    """A setting is missing or wrong; the message names the setting to fix."""
