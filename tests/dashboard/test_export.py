"""Explorer's downloads: CSV cells that a spreadsheet would run as formulas are neutralised
(OWASP's rule), numbers stay numbers, and Parquet keeps every value as it is."""

from __future__ import annotations

import csv
import io

import pandas as pd
import pytest

from dashboard.export import neutralise_cell, neutralise_formulas, to_csv, to_parquet

FORMULAS = [
    '=HYPERLINK("https://evil.test","click")',
    "+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(1+1)",
    "\t=1+1",
    "\r=1+1",
]
HARMLESS = ["/pricing", "Google", "", "a=b", "x-y", " =1", "ünïcode"]


def events() -> pd.DataFrame:
    texts = FORMULAS + HARMLESS
    return pd.DataFrame(
        {
            "path": texts,
            "utm_source": pd.Categorical(texts[::-1]),
            "referrer": pd.array(texts, dtype="string"),
            "lat": [-33.9 + i for i in range(len(texts))],
            "screen_width": [-1, *range(1, len(texts))],
            "ts": pd.date_range("2025-01-01", periods=len(texts), freq="h", tz="UTC"),
            "bounced": [i % 2 == 0 for i in range(len(texts))],
        }
    )


@pytest.mark.parametrize("text", FORMULAS)
def test_a_formula_cell_gets_a_leading_quote(text):
    assert neutralise_cell(text) == "'" + text


@pytest.mark.parametrize("value", [*HARMLESS, -1, -2.5, None])
def test_anything_else_is_unchanged(value):
    assert neutralise_cell(value) == value


def test_the_csv_neutralises_every_text_column_and_keeps_numbers_numeric():
    rows = list(csv.DictReader(io.StringIO(to_csv(events()).decode(), newline="")))
    frame = events()
    for column in ("path", "utm_source", "referrer"):
        for row, original in zip(rows, frame[column].astype(str), strict=True):
            expected = "'" + original if original.startswith(tuple("=+-@\t\r")) else original
            assert row[column] == expected
    # Negative numbers are numbers: written as such, read back as such.
    read = pd.read_csv(io.BytesIO(to_csv(frame)))
    assert read["lat"].tolist() == pytest.approx(frame["lat"].tolist())
    assert read["screen_width"].tolist() == frame["screen_width"].tolist()
    assert pd.api.types.is_numeric_dtype(read["lat"]) and read["lat"].min() < 0
    assert read["bounced"].tolist() == frame["bounced"].tolist()


def test_neutralising_leaves_the_frame_and_non_text_types_alone():
    frame = events()
    before = frame.copy()
    neutral = neutralise_formulas(frame)
    pd.testing.assert_frame_equal(frame, before)  # no change in place
    for column in ("lat", "screen_width", "ts", "bounced"):
        assert neutral[column].dtype == frame[column].dtype
        pd.testing.assert_series_equal(neutral[column], frame[column])


def test_parquet_keeps_every_value_as_it_is():
    frame = events()
    back = pd.read_parquet(io.BytesIO(to_parquet(frame)))
    assert back["path"].tolist() == FORMULAS + HARMLESS
    assert back["utm_source"].astype(str).tolist() == (FORMULAS + HARMLESS)[::-1]
    assert back["lat"].tolist() == frame["lat"].tolist()


def test_a_line_break_inside_a_cell_cannot_start_a_row_with_a_formula():
    frame = pd.DataFrame({"path": ["x\r=1+1", "y\n@SUM(1)", "\r\n=2+2"], "n": [1, 2, 3]})
    rows = list(csv.reader(io.StringIO(to_csv(frame).decode(), newline="")))
    assert len(rows) == 4  # the header and three rows: every break stayed inside its cell
    assert [row[0] for row in rows[1:]] == ["x\r=1+1", "y\n@SUM(1)", "'\r\n=2+2"]
