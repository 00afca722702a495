"""E-mail addresses as settings: alarm e-mail, report sender and recipients, login allowlists.

email-validator checks the syntax (RFC 5322 as mail systems accept it) and normalises the
domain; deliverability is not checked (no DNS from a Lambda or a CLI that may be offline).
"""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email

from pipeline.errors import PipelineError


class InvalidEmail(PipelineError):
    """Not an e-mail address; the message is one sentence."""


def check_email(text: str) -> str:
    """`text` as a normalised address (domain lower-cased); one sentence when it is not one."""
    given = str(text).strip()
    try:
        found = validate_email(given, check_deliverability=False)
    except EmailNotValidError:
        shown = given if len(given) <= 80 else given[:77] + "..."
        raise InvalidEmail(f"{shown!r} is not an e-mail address like name@example.com") from None
    return found.normalized


def same_address(a: str, b: str) -> bool:
    """Whether two addresses are the same mailbox as people mean it (case-insensitive)."""
    return a.strip().casefold() == b.strip().casefold()
