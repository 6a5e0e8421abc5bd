"""CSV written the way a spreadsheet writes it in most of Europe: ';' between fields and decimal commas
(`data.separator`, `data.decimal`; rewarm/reading.py). A kept snapshot is read back as it was admitted, whatever
the settings say later (rewarm/snapshots.py), and `rewarm predict --out x.csv` writes the same way."""

from __future__ import annotations

import io
import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from flight_snapshots import land, small_month, write_config
from pydantic import ValidationError

from rewarm.cli import main
from rewarm.config import DataSection
from rewarm.errors import SnapshotRejected
from rewarm.snapshots import inspect, keep, list_history, load

SPEC = DataSection(target="y", task="regression", numeric=("x", "z"), categorical=("c",), min_rows=10)
EUROPE = SPEC.model_copy(update={"separator": ";", "decimal": ","})


def _frame(n: int = 40, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {"x": rng.normal(size=n).round(3), "z": rng.integers(-5, 5, n), "c": rng.choice(["a,b", "c"], n)}
    )
    frame["y"] = (frame["x"] * 3 + rng.normal(size=n)).round(2)
    return frame


def _european(frame: pd.DataFrame) -> bytes:
    """As Excel saves 'CSV' with a German or French locale (pandas writes the same with these two options)."""
    return frame.to_csv(index=False, sep=";", decimal=",").encode()


def _commas(column: pd.Series) -> pd.Series:
    """COLUMN as text with decimal commas, as _european writes numbers (to put other text beside them)."""
    return column.astype(str).str.replace(".", ",", regex=False)


def test_a_semicolon_csv_with_decimal_commas_reads_as_the_plain_csv(tmp_path: Path) -> None:
    frame = _frame()
    text = _european(frame)
    assert b"," in text.split(b"\n")[1] and b"." not in text  # decimal commas; 'a,b' is a category with a comma
    plain = land(tmp_path / "plain.csv", frame.to_csv(index=False).encode())
    europe = land(tmp_path / "europe.csv", text)

    expected = inspect(str(plain), SPEC, tmp_path / "h1").frame
    landed = inspect(str(europe), EUROPE, tmp_path / "h2")
    pd.testing.assert_frame_equal(landed.frame, expected)
    assert landed.frame["x"].abs().sum() > 0 and set(landed.frame["c"]) == {"a,b", "c"}


def test_a_kept_snapshot_is_read_as_it_was_admitted_when_the_settings_change(tmp_path: Path) -> None:
    frame = _frame()
    info = keep(inspect(str(land(tmp_path / "europe.csv", _european(frame))), EUROPE, tmp_path / "history"))
    assert (info.separator, info.decimal, info.encoding) == (";", ",", "utf-8")
    [kept] = list_history(tmp_path / "history")
    # the stream is re-saved with commas from now on: the kept file still reads with its own separator
    pd.testing.assert_frame_equal(load(kept, SPEC), load(kept, EUROPE))
    assert load(kept, SPEC)["x"].tolist() == frame["x"].tolist()


def test_a_csv_kept_before_separators_were_recorded_reads_with_commas(tmp_path: Path) -> None:
    info = keep(inspect(str(land(tmp_path / "old.csv", _frame().to_csv(index=False).encode())), SPEC, tmp_path / "h"))
    record = Path(f"{info.stored}.json")
    older = {k: v for k, v in json.loads(record.read_text()).items() if k not in ("separator", "decimal")}
    record.write_text(json.dumps(older))
    [kept] = list_history(tmp_path / "h")
    assert kept.separator is None
    assert load(kept, EUROPE)["x"].tolist() == _frame()["x"].tolist()  # not re-read with ';'


def test_a_number_with_a_thousands_separator_is_still_refused_with_the_column_named(tmp_path: Path) -> None:
    frame = _frame().assign(x=lambda f: _commas(f["x"]))
    frame.loc[[2, 5], "x"] = "1.234,5"
    path = land(tmp_path / "thousands.csv", _european(frame))
    with pytest.raises(SnapshotRejected, match=r"column 'x' must hold numbers but 2 row\(s\) hold other values") as exc:
        inspect(str(path), EUROPE, tmp_path / "h")
    assert "1.234,5" in str(exc.value) and "thousands separators: write them whole, as 1234,5" in str(exc.value)


def test_a_number_written_with_a_point_is_refused_where_decimals_are_commas(tmp_path: Path) -> None:
    """'1.234' in a decimal-comma file is 1234 to whoever wrote it: it must not read silently as 1.234."""
    frame = _frame().astype({"z": str})
    frame.loc[[1, 7, 9], "z"] = ["1.234", "41.0", "1.234"]
    path = land(tmp_path / "points.csv", _european(frame))
    with pytest.raises(
        SnapshotRejected, match=r"column 'z' has 3 number\(s\) written with a point \('1.234', '41.0'\)"
    ):
        inspect(str(path), EUROPE, tmp_path / "h")


def test_a_number_target_with_a_word_in_it_names_the_word_not_the_commas(tmp_path: Path) -> None:
    frame = _frame().assign(y=lambda f: _commas(f["y"]))
    frame.loc[4, "y"] = "unknown"
    path = land(tmp_path / "word.csv", _european(frame))
    with pytest.raises(SnapshotRejected, match=r"column 'y' must hold numbers but 1 row\(s\) hold other values") as exc:
        inspect(str(path), EUROPE, tmp_path / "h")
    assert "'unknown'" in str(exc.value)


def test_a_semicolon_csv_read_with_commas_says_which_setting_to_change(tmp_path: Path) -> None:
    path = land(tmp_path / "europe.csv", _european(_frame()))
    with pytest.raises(SnapshotRejected) as exc:
        inspect(str(path), SPEC, tmp_path / "h")
    message = str(exc.value)
    assert "the file looks semicolon-separated: rewarm reads comma-separated CSV (data.separator)" in message
    assert "set data.separator = ';' in rewarm.toml" in message
    # and the other way round: a comma file where data.separator says ';'
    plain = land(tmp_path / "plain.csv", _frame().to_csv(index=False).encode())
    with pytest.raises(SnapshotRejected, match="looks comma-separated: rewarm reads semicolon-separated CSV"):
        inspect(str(plain), EUROPE, tmp_path / "h2")
    tabs = SPEC.model_copy(update={"separator": "\t"})  # a stream of tab-separated .csv files, and one with commas
    with pytest.raises(SnapshotRejected) as exc:
        inspect(str(plain), tabs, tmp_path / "h3")
    assert "rewarm reads tab-separated CSV (data.separator), so set data.separator = ','" in str(exc.value)
    assert "name it" not in str(exc.value)


def test_decimal_and_separator_cannot_both_be_commas() -> None:
    with pytest.raises(ValidationError, match="data.decimal and data.separator are both ','"):
        SPEC.model_validate({**SPEC.model_dump(), "decimal": ","})
    with pytest.raises(ValidationError, match="separator"):
        SPEC.model_validate({**SPEC.model_dump(), "separator": ":"})


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_server")
def test_retrain_and_predict_on_semicolon_csv_months(
    tmp_path: Path, home: Path, flights: pd.DataFrame, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, name="csv-locale")
    config.write_text(config.read_text().replace("[data]\n", '[data]\nseparator = ";"\ndecimal = ","\n', 1))
    landing = tmp_path / "landing"
    landing.mkdir()
    for month in (1, 2):
        path = land(landing / f"m{month}.csv", _european(small_month(flights, month, rows=600)))
        assert main(["retrain", str(path), "--config", str(config)]) == 0

    march = small_month(flights, 3, rows=200)
    source = land(tmp_path / "march.csv", _european(march))
    assert main(["predict", str(source), "--out", str(tmp_path / "scored.csv"), "--config", str(config)]) == 0
    text = (tmp_path / "scored.csv").read_text()
    assert text.split("\n", 1)[0].count(";") >= 5 and "," not in text.split("\n", 1)[0]
    scored = pd.read_csv(tmp_path / "scored.csv", sep=";", decimal=",", keep_default_na=False)
    assert len(scored) == 200 and np.allclose(scored["temp"], march["temp"])
    # the numbers were read as the champion reads the same rows from Python: decimal commas are not lost
    expected = mlflow.pyfunc.load_model("models:/csv-locale@champion").predict(march)["probability"].to_numpy()
    np.testing.assert_allclose(scored["probability"].to_numpy(), expected, rtol=1e-6)
    assert scored["probability"].nunique() > 1
    # Parquet holds the numbers as they are read, and standard output stays comma-separated with decimal points
    assert main(["predict", str(source), "--out", str(tmp_path / "scored.parquet"), "--config", str(config)]) == 0
    assert pd.read_parquet(tmp_path / "scored.parquet")["temp"].astype(float).tolist() == march["temp"].tolist()
    capsys.readouterr()
    assert main(["predict", str(source), "--config", str(config)]) == 0
    piped = pd.read_csv(io.StringIO(capsys.readouterr().out))
    np.testing.assert_allclose(piped["temp"], march["temp"])
    np.testing.assert_allclose(piped["probability"], expected, rtol=1e-6)
