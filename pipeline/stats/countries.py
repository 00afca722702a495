"""Country codes as names, said alike by the dashboard, the Stats API and the e-mail reports."""

from __future__ import annotations

import pycountry


def country_name(code: str) -> str:
    """A country's short English name ("Germany", "Taiwan"); "" for a code pycountry does not
    know (as Plausible's API answers it)."""
    found = pycountry.countries.get(alpha_2=code) if len(code) == 2 else None
    return (getattr(found, "common_name", None) or found.name) if found else ""
