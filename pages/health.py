"""Pipeline health: the queue, the DLQ, recent stored events, dropped hits by reason and the
monthly cost estimate."""

from datetime import UTC, datetime, timedelta

import streamlit as st

from dashboard.context import current_view
from dashboard.data import drops, event_count, live_events, queue_health
from dashboard.format import md_escape
from pipeline import PipelineError
from pipeline.enrich.steps import DROP_EXPLANATIONS
from pipeline.ops import cost

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
cards[0].metric("Queued", f"{queue['queued']:,}")
cards[1].metric("In flight", f"{queue['in_flight']:,}")
cards[2].metric("Dead-letter queue", f"{queue['dlq']:,}")
cards[3].metric(
    "Oldest message",
    "n/a here" if queue["oldest_age_s"] is None else f"{queue['oldest_age_s']:,} s",
    help="From CloudWatch on AWS; the local emulator has none.",
)
cards[4].metric(f"Stored in the last hour ({md_escape(view.site)})", f"{len(last_hour):,}")
if queue["dlq"]:
    st.warning(f"{queue['dlq']:,} message(s) failed three times and wait in the dead-letter queue.")

st.subheader("Dropped hits, last 30 days")
if dropped.empty:
    st.caption(f"No hit of {md_escape(view.site)} was dropped in the last 30 days.")
else:
    st.dataframe(
        [
            {
                "Reason": reason,
                "Hits": int(count),
                "What it means": DROP_EXPLANATIONS.get(reason, ""),
            }
            for reason, count in dropped.items()
        ],
        hide_index=True,
        width="stretch",
    )

st.subheader("Monthly cost estimate")
lines = cost.monthly_cost(max(last_month, 1))
st.caption(
    f"For {last_month:,} events in the last 30 days, at list prices ({md_escape(cost.PRICES_AS_OF)})."
)
st.dataframe(
    [
        {"Service": line.service, "Usage": line.usage, "USD per month": round(line.dollars, 2)}
        for line in lines
    ],
    hide_index=True,
    width="stretch",
)
st.metric("Total per month", f"${sum(line.dollars for line in lines):,.2f}")
