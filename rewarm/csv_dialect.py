"""How a CSV is written: its field separator and its decimal mark (data.separator, data.decimal), and what to
say when a file is written with other ones than rewarm reads it with."""

from __future__ import annotations

import pandas as pd

from rewarm.config import DataSection
from rewarm.errors import SnapshotRejected
from rewarm.packing import separator


def csv_separator(uri: str, spec: DataSection | None) -> str:
    """A CSV's field separator: a tab for a .tsv (packing.separator), else data.separator (a comma without SPEC)."""
    by_name = separator(uri)
    return by_name if by_name == "\t" or spec is None else spec.separator


def dialect(uri: str, spec: DataSection | None) -> dict[str, str]:
    """pandas' read_csv/to_csv options for the CSV at URI: its separator (csv_separator) and data.decimal ('.'
    without SPEC)."""
    return {"sep": csv_separator(uri, spec), "decimal": spec.decimal if spec is not None else "."}


# A number written with a decimal comma and nothing else (12,5 or -0,5e3): the cells data.decimal = "," reads
# with a point; anything else (1.234,5) is left as written, for the schema to refuse with number_hint's advice.
DECIMAL_COMMA = r"^(\s*[+-]?\d*),(\d+(?:[eE][+-]?\d+)?\s*)$"
DECIMAL_POINT = r"^(\s*[+-]?\d*)\.(\d+(?:[eE][+-]?\d+)?\s*)$"
DIGITS_AND_POINTS = r"\s*[+-]?\d*\.[\d.]*(?:[eE][+-]?\d+)?\s*"  # 1.234 or 41.0: a thousands separator, or a point


def decimal_points(raw: pd.DataFrame, spec: DataSection, uri: str) -> pd.DataFrame:
    """With data.decimal = ",", RAW's numeric columns read as text (the features, and a number target the parser
    left as text because a cell in it is not a number) with decimal points, as the schema reads numbers. A number
    written with a point is refused, naming the column: with decimal commas '1.234' is 1234 to whoever wrote it,
    and would silently read as 1.234. RAW as it is where data.decimal is '.'."""
    if spec.decimal == ".":
        return raw
    for column in _number_text(raw, spec):
        points = raw[column][raw[column].str.fullmatch(DIGITS_AND_POINTS, na=False)]
        if len(points):
            shown = ", ".join(repr(v) for v in points.unique()[:5])
            raise SnapshotRejected(
                f"{uri}: column {column!r} has {len(points)} number(s) written with a point ({shown}) where "
                "data.decimal = ',': a point may be a thousands separator (1.234 for 1234), so write every number "
                "with a decimal comma and no thousands separator (1234,5), or set data.decimal = '.' if the file "
                "writes decimal points",
                kind="dtype",
            )
        raw[column] = raw[column].str.replace(DECIMAL_COMMA, r"\1.\2", regex=True)
    return raw


def decimal_commas(rows: pd.DataFrame, spec: DataSection) -> pd.DataFrame:
    """ROWS read with data.decimal = "," (decimal_points), with their number text written as it was read."""
    if spec.decimal == ".":
        return rows
    return rows.assign(
        **{c: rows[c].str.replace(DECIMAL_POINT, r"\1,\2", regex=True) for c in _number_text(rows, spec)}
    )


def _number_text(raw: pd.DataFrame, spec: DataSection) -> list[str]:
    numbers = [*spec.numeric, *([spec.target] if spec.task == "regression" else [])]
    return [c for c in numbers if c in raw.columns and (raw[c].dtype == object or pd.api.types.is_string_dtype(raw[c]))]


SEPARATORS = ((",", "comma"), (";", "semicolon"), ("\t", "tab"), ("|", "pipe"))


def separator_hint(header: str, expected: str | None = None, configured: str = ",") -> str:
    """What to do about a CSV whose HEADER line is written with another separator than EXPECTED, the one it was
    read with (csv_separator): it reads as one column named after the whole line, or, with decimal commas in its
    rows, not at all. EXPECTED None: only that one column's name is known, and one holding the CONFIGURED separator
    (data.separator) was read with tabs (a .tsv)."""
    expected = expected or ("\t" if configured in header else configured)
    found = next(((sep, name) for sep, name in SEPARATORS if sep != expected and sep in header), None)
    if expected in header or found is None:
        return ""
    (sep, name), names = found, dict(SEPARATORS)
    by_name = expected == "\t" and configured != "\t"  # read with tabs because it is named .tsv
    fixes = [f"set data.separator = {sep!r} in rewarm.toml"] if sep not in (configured, "\t") else []
    fixes += ["name it .csv"] if by_name else ["name it .tsv (.tsv.gz compressed)"] if sep == "\t" else []
    how = "a .tsv is read with tabs" if by_name else f"rewarm reads {names[expected]}-separated CSV (data.separator)"
    return (
        f"; the header has no {names[expected]}, so the file looks {name}-separated: {how}, so "
        f"{' and '.join(fixes)}, or save it as Parquet"
    )


# How a number column's unreadable text is commonly written, and what to write instead (number_hint).
WRITTEN = (
    (
        r"[+-]?\d{1,3}(,\d{3})+(\.\d+)?|[+-]?\d+,\d+|[+-]?\d{1,3}(\.\d{3})+,\d+"
        r"|[+-]?\d{1,3}([ \u00a0\u202f]\d{3})+([.,]\d+)?",
        "with separators ('1,234', '12,5', '1.234,5', '1 234'): write a decimal point and no thousands separator "
        "(1234, 12.5), or, for a file written with decimal commas (12,5) and ';' between fields, set "
        "data.decimal = ',' and data.separator = ';'",
    ),
    (r"[+-]?\d+(\.\d+)?\s*%", "as percentages: write the number alone (12.5, or 0.125)"),
    (r"[+-]?[$€£¥]\s*[\d.,]+|[\d.,]+\s*[$€£¥]", "with a currency sign: write the number alone (1234.5)"),
)


# Thousands separators where data.decimal = ",": a point, a space, or the no-break spaces French Excel writes.
THOUSANDS_WITH_COMMAS = r"[+-]?\d{1,3}([. \u00a0\u202f]\d{3})+(,\d+)?"


def number_hint(values: list[str], decimal: str = ".") -> str:
    """What the text in a number column looks like, where it is a common way of writing numbers or dates that
    rewarm does not read (with DECIMAL, data.decimal): '' when it is none of them."""
    import re

    shown = [v.strip() for v in values[:20] if v.strip()]
    if not shown:
        return ""
    if decimal == "," and all(re.fullmatch(THOUSANDS_WITH_COMMAS, v) for v in shown):
        return "; they look like numbers written with thousands separators: write them whole, as 1234,5"
    for pattern, fix in WRITTEN:
        if all(re.fullmatch(pattern, v) for v in shown):
            return f"; they look like numbers written {fix}"
    dated = all(re.search(r"\d", v) and re.search(r"[/:-]|[A-Za-z]{3}", v) for v in shown)
    if dated and pd.to_datetime(pd.Series(shown), errors="coerce", format="mixed").notna().all():
        return (
            "; they look like dates or times not written in ISO 8601: write them as 2013-03-15 or "
            "2013-03-15T08:00:00 (read as seconds since 1970)"
        )
    return ""
