"""Goals & funnels: custom events, their properties, conversion rates and a funnel builder."""

import pandas as pd
import streamlit as st

from dashboard.context import load
from dashboard.tables import filterable_table
from pipeline.stats import metrics

data = load()
st.title("Goals & funnels")
custom = data.events[data.events["name"] != metrics.PAGEVIEW]
names = sorted(custom["name"].astype(str).unique())
if not names:
    st.info(
        'No custom events in this period. Send one with `analytics("Signup", {props: {plan: "pro"}})`.'
    )
else:
    st.subheader("Goal conversions")
    filterable_table(
        metrics.goal_conversions(data.events, names).rename(columns={"goal": "value"}),
        "name",
        "goals_conversions",
        "Goal",
    )
    st.subheader("Properties")
    goal = st.selectbox("Event", names, key="goals_event")
    props = pd.json_normalize(custom.loc[custom["name"] == goal, "props"].tolist())
    if props.empty:
        st.caption("This event has no properties.")
    else:
        prop = st.selectbox("Property", list(props.columns), key="goals_prop")
        counts = props[prop].dropna().value_counts().rename_axis(prop).reset_index(name="events")
        st.dataframe(counts, hide_index=True, width="stretch", key="goals_props_table")

st.subheader("Funnel")
pages = data.breakdown("path", limit=30)["value"].tolist()
steps = st.multiselect(
    "Steps, in order (pages start with /)",
    pages + names,
    default=pages[:1] + names[:1],
    key="goals_funnel",
)
if len(steps) >= 2:
    table = metrics.funnel(data.events, steps)
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
