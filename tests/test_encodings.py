"""CSV snapshots in the encodings users' tools write them in (rewarm/reading.py, data.encoding)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from rewarm.config import DataSection
from rewarm.errors import SnapshotRejected
from rewarm.snapshots import inspect, keep, list_history, load

SPEC = DataSection(target="late", task="binary", numeric=("x",), categorical=("city",), min_rows=10)
CITIES = ["Montréal", "Québec", "Zürich", "São Paulo"]


def _frame(n: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    cities = rng.choice(CITIES, n)
    return pd.DataFrame({"x": rng.normal(size=n).round(3), "city": cities, "late": rng.integers(0, 2, n)})


def _write(path: Path, encoding: str) -> Path:
    path.write_bytes(_frame().to_csv(index=False).encode(encoding))
    return path


def test_a_windows_csv_is_rejected_naming_the_line_and_the_setting(tmp_path: Path) -> None:
    frame = _frame().assign(city=lambda f: np.where(f.index < 9, "Paris", f["city"]))  # the first accent: row 10
    path = tmp_path / "jan.csv"
    path.write_bytes(frame.to_csv(index=False).encode("cp1252"))  # Excel's plain "CSV" on a Western-European Windows
    first_accent = 11  # the header is line 1
    with pytest.raises(SnapshotRejected) as caught:
        inspect(str(path), SPEC, tmp_path / "history")
    message = str(caught.value)
    assert caught.value.kind == "encoding" and message.startswith(f"{path}: is not utf-8 text (byte b'")
    assert f"on line {first_accent})" in message
    assert "set data.encoding" in message and "'cp1252'" in message and "uncorrupted" not in message
    assert path.read_bytes() == frame.to_csv(index=False).encode("cp1252")  # the file is left as it came


@pytest.mark.parametrize(("written", "configured"), [("cp1252", "cp1252"), ("latin-1", "latin-1"), ("utf-8-sig", None)])
def test_data_encoding_reads_the_accents_as_written(tmp_path: Path, written: str, configured: str | None) -> None:
    spec = SPEC.model_copy(update={"encoding": configured}) if configured else SPEC
    path = _write(tmp_path / "jan.csv", written)
    landed = inspect(str(path), spec, tmp_path / "history")
    assert landed.frame["city"].tolist() == _frame()["city"].tolist()
    keep(landed)  # and every later round reads the kept copy the same way
    assert load(list_history(tmp_path / "history")[0], spec)["city"].tolist() == _frame()["city"].tolist()


@pytest.mark.parametrize("written", ["utf-16", "utf-32", "utf-8-sig"])
def test_a_byte_order_mark_says_the_encoding_whatever_the_setting(tmp_path: Path, written: str) -> None:
    path = _write(tmp_path / "jan.csv", written)  # each of these encodings writes its mark
    spec = SPEC.model_copy(update={"encoding": "cp1252"})
    assert inspect(str(path), spec, tmp_path / "history").frame["city"].tolist() == _frame()["city"].tolist()


def test_a_kept_csv_is_read_in_its_own_encoding_after_the_setting_changes(tmp_path: Path) -> None:
    windows = SPEC.model_copy(update={"encoding": "cp1252"})
    info = keep(inspect(str(_write(tmp_path / "jan.csv", "cp1252")), windows, tmp_path / "history"))
    assert info.encoding == "cp1252" and list_history(tmp_path / "history")[0].encoding == "cp1252"
    # The stream moves to UTF-8: January is still read as it was admitted, never as mojibake or a rejection.
    assert load(list_history(tmp_path / "history")[0], SPEC)["city"].tolist() == _frame()["city"].tolist()


def test_an_unknown_encoding_is_a_configuration_error() -> None:
    for name in ("klingon", "rot13", "base64"):  # unknown, or a codec that does not decode bytes into text
        with pytest.raises(ValidationError, match=f"'{name}' is not a text encoding"):
            DataSection(target="late", task="binary", numeric=("x",), encoding=name)
    assert DataSection(target="late", task="binary", numeric=("x",), encoding="utf-32").encoding == "utf-32"
