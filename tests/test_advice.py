"""Warnings about a valid snapshot that was probably not meant as it is (rewarm/advice.py), on real data."""

from __future__ import annotations

import pandas as pd
import pytest
from palmerpenguins import load_penguins

from rewarm import advice
from rewarm.config import DataSection


@pytest.fixture(scope="module")
def penguins() -> pd.DataFrame:
    frame = load_penguins().dropna().reset_index(drop=True)
    return frame.assign(tag=[f"P{i:04d}" for i in range(len(frame))])  # one id per bird


def _spec(*categorical: str) -> DataSection:
    return DataSection(target="species", task="multiclass", numeric=("bill_length_mm",), categorical=categorical)


def test_an_id_listed_as_a_category_is_named_with_its_counts(penguins: pd.DataFrame) -> None:
    found = advice.identifiers(penguins, _spec("island", "sex", "tag"))
    assert found == {"tag": (len(penguins), len(penguins))}
    note = advice.identifier_note("jan.csv", "tag", *found["tag"])
    assert note.startswith(f"jan.csv: categorical column 'tag' has {len(penguins)} distinct value(s)")
    assert "leave 'tag' out of data.categorical" in note


def test_real_categories_and_small_snapshots_are_not_identifiers(penguins: pd.DataFrame) -> None:
    assert advice.identifiers(penguins, _spec("island", "sex")) == {}
    assert advice.identifiers(penguins.head(advice.ID_MIN_ROWS - 1), _spec("tag")) == {}
    mostly = penguins.assign(tag=penguins["tag"].where(penguins.index % 5 != 0, "P0000"))  # 80% distinct
    assert advice.identifiers(mostly, _spec("tag")) == {}


def test_spellings_of_one_code_count_as_one_value() -> None:
    codes = [str(i) if i < 120 else f"{i - 120}.0" for i in range(240)]  # 120 codes, read as '3' and as '3.0'
    frame = pd.DataFrame({"code": pd.Series(codes, dtype=object), "species": "a", "bill_length_mm": 1.0})
    assert frame["code"].nunique() == 240
    assert advice.identifiers(frame, _spec("code")) == {}
    frame["code"] = [f"C{i}" for i in range(240)]
    assert advice.identifiers(frame, _spec("code")) == {"code": (240, 240)}


def test_a_snapshot_of_one_class_is_named_only_once_a_model_knows_the_classes(penguins: pd.DataFrame) -> None:
    adelie = penguins[penguins["species"] == "Adelie"]
    note = advice.one_class(adelie, _spec("island"), ("Adelie", "Chinstrap", "Gentoo"))
    assert note.startswith(f"every one of its {len(adelie)} row(s) has 'species' = 'Adelie': admitted")
    assert "so the champion is kept this round" in note
    assert advice.one_class(adelie, _spec("island"), ()) == ""  # a first model: the schema rejects it instead
    assert advice.one_class(penguins, _spec("island"), ("Adelie", "Chinstrap", "Gentoo")) == ""
