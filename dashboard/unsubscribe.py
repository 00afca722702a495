"""The unsubscribe link of report e-mails (placeholder: being written)."""


def answer_unsubscribe() -> None:
    """Answers `?unsubscribe=…` before any login, then stops the page."""
