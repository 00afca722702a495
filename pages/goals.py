"""Goals & funnels: goals (custom events, and page paths with `*`/`**` wildcards typed in),
their conversion rates, a breakdown by any custom property across all events, and a funnel
builder over the same goals."""

import re

import streamlit as st

from dashboard.context import load
from dashboard.tables import filterable_table
from pipeline.stats import metrics

data = load()
st.title("Goals & funnels")
core = data.events[~data.events["name"].isin([metrics.PAGEVIEW, metrics.ENGAGEMENT])]
# Custom events only: "engagement" is the tracker's own measurement, never a goal.
names = sorted(core["name"].astype(str).unique())


def page_goals(text: str) -> list[str]:
    """The page-path goals typed in (comma, space or line separated), each starting with "/",
    once each, in order."""
    return list(dict.fromkeys(part for part in re.split(r"[\s,]+", text) if part.startswith("/")))


def goal_filters(goal: str) -> dict[str, str]:
    """What a click on a goal's row filters by: the event, or the page when the goal is one
    page without wildcards (a wildcard path is no value a filter can hold)."""
    if not goal.startswith("/"):
        return {"name": goal}
    return {} if "*" in goal else {"path": goal}


typed = st.text_input(
    "Page goals",
    key="goals_pages",
    placeholder="/pricing, /blog/**, /docs/*",
    help='A page path; "*" matches within one path segment, "**" across segments '
    "(/blog/** is every page under /blog/). Several goals: separate them with commas.",
)
goals = names + page_goals(typed)
if not goals:
    st.info(
        "No custom events in this period. Send one with "
        '`analytics("Signup", {props: {plan: "pro"}})`, or type a page goal above.'
    )
else:
    st.subheader("Goal conversions")
    conversions = metrics.goal_conversions(data.selection, goals).rename(columns={"goal": "value"})
    if data.previous_selection is not None:
        before = metrics.goal_conversions(data.previous_selection, goals)
        conversions = metrics.with_change(conversions, before.rename(columns={"goal": "value"}))
    filterable_table(conversions, "name", "goals_conversions", "Goal", to_filters=goal_filters)

st.subheader("Properties")
keys = metrics.property_keys(data.events)
if not keys:
    st.caption("No event in this period has custom properties.")
else:
    # Across every event (pageviews carry properties too), as Plausible's property breakdown.
    key = st.selectbox("Property", keys, key="goals_prop")
    filterable_table(data.table(f"props.{key}"), f"props.{key}", "goals_props")

st.subheader("Funnel")
pages = data.breakdown("path", limit=30)["value"].tolist()
steps = st.multiselect(
    "Steps, in order (pages start with /; * and ** are wildcards; type to add one)",
    list(dict.fromkeys(pages + goals)),
    default=pages[:1] + names[:1],
    accept_new_options=True,
    key="goals_funnel",
)
if len(steps) >= 2:
    # Over every event of the selected visits: a page filter keeps visits, not only its page.
    table = metrics.funnel(data.visit_events, steps)
    st.dataframe(
        table,
        hide_index=True,
        width="stretch",
        key="goals_funnel_table",
        column_config={
            "conversion_rate": st.column_config.NumberColumn(
                "Conversion from step 1", format="percent"
            ),
            "drop_off": st.column_config.NumberColumn("Drop-off from previous", format="percent"),
        },
    )
    st.bar_chart(table.set_index("step")["visits"], horizontal=True)
else:
    st.caption("Choose at least two steps.")
