"""Downloads of the Explorer's events: CSV safe to open in a spreadsheet, Parquet as stored."""

from __future__ import annotations

import io

import pandas as pd

# OWASP's CSV injection rule: a spreadsheet reads a cell starting with one of these as a
# formula (`=HYPERLINK(…)`, `@SUM(…)`, DDE), so such a cell gets a leading `'`, which makes
# it text. https://owasp.org/www-community/attacks/CSV_Injection
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise_cell(value: object) -> object:
    """A text cell that would start a formula, prefixed with `'`; anything else unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def neutralise_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with every text cell neutralised. Numeric, boolean and time columns keep their
    type: a negative number is a number, not a formula."""
    text_columns = [
        column
        for column in frame.columns
        if isinstance(frame[column].dtype, pd.CategoricalDtype)
        or pd.api.types.is_object_dtype(frame[column])
        or pd.api.types.is_string_dtype(frame[column])
    ]
    return frame.assign(
        **{
            str(column): frame[column].astype(object).map(neutralise_cell)
            for column in text_columns
        }
    )


def to_csv(frame: pd.DataFrame) -> bytes:
    """RFC 4180 CSV (CRLF rows), formula cells neutralised. With CRLF as the row end, a cell
    holding a bare CR is quoted: unquoted, a spreadsheet would start a new row there, and a
    neutralised `'\r=…` would become a row starting with `=…`."""
    return neutralise_formulas(frame).to_csv(index=False, lineterminator="\r\n").encode()


def to_parquet(frame: pd.DataFrame) -> bytes:
    """The values exactly as they are: Parquet is read by programs, not spreadsheets."""
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()
