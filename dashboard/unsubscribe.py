"""The unsubscribe link of report e-mails: `{dashboard_url}?unsubscribe=<token>`.

It is answered before any login (the token is the recipient's own secret, from the e-mail),
removes that recipient from every report and notification of the site, says so in one
sentence and shows nothing else. Any other URL returns at once, reading nothing.
"""

from __future__ import annotations

import streamlit as st

from dashboard.data import backend
from dashboard.format import md_escape
from dashboard.navigation import pages
from pipeline import PipelineError
from pipeline.ops import recipients

PARAM = "unsubscribe"
DONE = "You will no longer receive e-mail reports for {site}."
INVALID = "This unsubscribe link is not valid (already used or mistyped)."


def unsubscribe_sentence(answer: tuple[str, str] | None) -> str:
    """What the page says for `recipients.unsubscribe`'s answer (not yet escaped)."""
    return INVALID if answer is None else DONE.format(site=answer[1])


def answer_unsubscribe() -> None:
    """Answers `?unsubscribe=…` before any login, then stops the page."""
    token = st.query_params.get(PARAM)
    if token is None:
        return
    # Declared hidden, else Streamlit lists the pages/ folder in the sidebar: only the sentence.
    st.navigation(pages(operator=False), position="hidden")
    try:
        answer = recipients.unsubscribe(backend().settings, str(token))
    except PipelineError as exc:
        st.error(md_escape(exc))
        st.stop()
    sentence = md_escape(unsubscribe_sentence(answer))
    (st.success if answer else st.warning)(sentence)
    st.stop()
