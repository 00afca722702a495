"""Pipeline health: the queue, the DLQ, recent stored events, dropped hits by reason and the
monthly cost estimate."""

from datetime import UTC, datetime, timedelta

import pandas as pd
import streamlit as st

from dashboard import format as fmt
from dashboard.context import current_view
from dashboard.data import backend, drops, event_count, live_events, queue_health
from dashboard.format import md_escape
from pipeline import PipelineError
from pipeline.enrich.steps import DROP_EXPLANATIONS
from pipeline.ops import cost, reports
from pipeline.stats import metrics

st.title("Pipeline health")
view, now = current_view(), datetime.now(UTC)
try:
    queue = queue_health()
    last_hour = live_events(view.site, now - timedelta(hours=1), now)
    # 30 UTC days, today included, read from the daily rollups: O(days), not O(events).
    last_month = event_count(view.site, now.date() - timedelta(days=29), now.date())
    dropped = drops(view.site, now - timedelta(days=30), now)
except PipelineError as exc:
    st.error(md_escape(exc))
    st.stop()

cards = st.columns(5)
cards[0].metric("Queued", fmt.number(queue["queued"]))
cards[1].metric("In flight", fmt.number(queue["in_flight"]))
cards[2].metric("Dead-letter queue", fmt.number(queue["dlq"]))
cards[3].metric(
    "Oldest message",
    "n/a here" if queue["oldest_age_s"] is None else fmt.duration(queue["oldest_age_s"]),
    help="From CloudWatch on AWS; the local emulator has none.",
)
cards[4].metric(f"Stored in the last hour ({md_escape(view.site)})", fmt.number(len(last_hour)))
if queue["dlq"]:
    st.warning(
        f"{fmt.number(queue['dlq'])} message(s) failed three times and wait in the dead-letter queue."
    )

st.subheader("Dropped hits, last 30 days")
if dropped.empty:
    st.caption(f"No hit of {md_escape(view.site)} was dropped in the last 30 days.")
else:
    reasons = pd.DataFrame(
        {
            "Reason": dropped.index.astype(str),
            "Hits": dropped.to_numpy(),
            "What it means": [DROP_EXPLANATIONS.get(reason, "") for reason in dropped.index],
        }
    )
    # The counts stay numbers (they sort as numbers) and read as fmt.number writes them.
    st.dataframe(
        reasons.style.format({"Hits": fmt.number}),
        hide_index=True,
        width="stretch",
        column_config={"Hits": fmt.measure_column("hits", "Hits")},
    )

ignored = metrics.orphan_engagement(last_hour)
if ignored:
    st.caption(
        f"{fmt.number(ignored)} engagement event(s) of the last hour count for no page: their "
        "visit has no pageview of that page (the script's pageview did not arrive, or the "
        "visit began earlier). Time on page and scroll depth leave them out."
    )

st.subheader("Monthly cost estimate")
lines = cost.monthly_cost(max(last_month, 1))
st.caption(
    f"For {fmt.number(last_month)} events in the last 30 days, at list prices ({md_escape(cost.PRICES_AS_OF)})."
)
st.dataframe(
    [
        {"Service": line.service, "Usage": line.usage, "USD per month": fmt.dollars(line.dollars)}
        for line in lines
    ],
    hide_index=True,
    width="stretch",
)
# markdown-safe: a literal label and a formatted amount
st.metric("Total per month", fmt.dollars(sum(line.dollars for line in lines)))

st.subheader("Reports and notifications")
try:
    report_settings = backend().settings
    sending = reports.status(report_settings)
except PipelineError as exc:
    st.error(md_escape(exc))
    sending = []
    report_settings = None
if report_settings is not None and not report_settings.report_sender:
    st.warning(
        "No sender configured: no e-mail report or notification is sent. Deploy with "
        "`--set ReportSender=reports@example.com` (an address verified in SES)."
    )
if not sending:
    st.caption(
        "No site has report recipients or a webhook: "
        "`python -m pipeline.sites report add SITE EMAIL --weekly`."
    )
else:
    # A table's cells are plain text (never Markdown); the alerts below are escaped.
    st.dataframe(
        [
            {
                "Site": row.site,
                "Recipients": row.recipients,
                "Webhook": "yes" if row.webhook else "no",
                "Last sent": f"{row.last_sent} ({row.last_sent_at})"
                if row.last_sent
                else "nothing yet",
                "Last error": f"{row.last_error} ({row.last_error_at})"
                if row.last_error
                else "none",
            }
            for row in sending
        ],
        hide_index=True,
        width="stretch",
    )
    for row in sending:
        if row.last_error:
            st.error(md_escape(f"{row.site}: {row.last_error} ({row.last_error_at})"))
