"""What the first model fixes, and what grows after it. A multiclass target whose stream brings a class the first
snapshot lacked (dplyr's storms: 'other low' first appears in the 1980s): the classes grow by appending, like a
vocabulary, and so does the output layer (models/preprocess.py, models/strategies.py, rewarm/rounds.py, the
round's MLflow run). A number's scaling is fitted once, so a column with no value at the first model is refused."""

from __future__ import annotations

import io
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from flight_snapshots import TINY_TOML, land, latest_retrain_run, logged_by
from mlflow import MlflowClient

from rewarm import registry
from rewarm.config import parse_settings
from rewarm.errors import SnapshotRejected
from rewarm.flows.retrain import retrain
from rewarm.models.network import ArchConfig, build_model
from rewarm.models.preprocess import Preprocessor
from rewarm.models.strategies import _appended, shrink_perturb
from rewarm.rounds import new_classes, preprocessing


def _frame(labels: list[str]) -> pd.DataFrame:
    n = len(labels)
    return pd.DataFrame({"x": np.linspace(0.0, 1.0, n), "c": ["a", "b"] * (n // 2) + ["a"] * (n % 2), "t": labels})


def test_classes_grow_by_appending_and_keep_their_indices() -> None:
    first = Preprocessor.fit(_frame(["b", "a", "b", "a"]), "multiclass", "t", ["x"], ["c"])
    assert first.classes == ("a", "b")
    grown = first.evolve(_frame(["a", "z", "d", "z"]))
    assert grown.classes == ("a", "b", "d", "z") and grown.n_outputs == 4  # new ones sorted, after the old
    np.testing.assert_array_equal(grown.labels(pd.Series(["b", "z", "a", "d"])), [1, 3, 0, 2])
    assert grown.evolve(_frame(["d", "a"])).classes == grown.classes  # nothing new: unchanged
    # The champion (FIRST) is scored against the round's classes: the appended ones get probability 0.
    padded = first.scored_as(grown).metric_outputs(np.full((2, 2), 0.5))
    np.testing.assert_array_equal(padded, [[0.5, 0.5, 0.0, 0.0]] * 2)
    # Labels compare as text, as the snapshot checks do: a code read as 2.0 is the class 2.
    codes = Preprocessor.fit(pd.DataFrame({"x": [1.0, 2.0], "t": [1, 2]}), "multiclass", "t", ["x"], [])
    np.testing.assert_array_equal(codes.evolve(pd.DataFrame({"x": [1.0], "t": [3.0]})).labels(pd.Series([2.0])), [1])
    grown_codes = codes.evolve(pd.DataFrame({"x": [1.0, 2.0], "t": [3.0, 2.0]})).classes
    assert grown_codes == (1, 2, 3) and isinstance(grown_codes[2], int)  # decoded as 3, as the others
    # A binary target never grows: a third value is rejected by the snapshot checks.
    binary = Preprocessor.fit(_frame(["n", "y"]), "binary", "t", ["x"], ["c"])
    assert binary.evolve(_frame(["n", "maybe"])).classes == ("n", "y")


def test_declared_classes_size_the_output_layer_from_the_first_snapshot() -> None:
    """data.classes lists a label the first snapshot lacks: the first model already has its output (before, the
    layer was sized for the labels present, and the declared one was rejected when it came)."""
    toml = (
        TINY_TOML.format(name="declared", landing="/tmp/x")
        .replace(
            'target = "late"\ntask = "binary"',
            'target = "origin"\ntask = "multiclass"\nclasses = ["LGA", "JFK", "EWR"]',
        )
        .replace('"carrier", "origin", "dest"', '"carrier", "dest"')
    )
    settings = parse_settings(tomllib.loads(toml))
    frame = pd.DataFrame(
        {
            "distance": [100.0, 200.0, 300.0, 400.0],
            "sched_dep_hour": [5, 6, 7, 8],
            "temp": [1.0, 2.0, 3.0, 4.0],
            "visib": [10.0] * 4,
            "carrier": ["AA", "UA"] * 2,
            "dest": ["BOS", "MIA"] * 2,
            "origin": ["JFK", "EWR"] * 2,
        }
    )
    pre, arch = preprocessing(settings, frame, None)
    assert pre.classes == ("EWR", "JFK", "LGA") and arch.n_outputs == 3  # present sorted, then the declared rest
    undeclared = settings.model_copy(update={"data": settings.data.model_copy(update={"classes": ()})})
    # A label only the holdout holds (a time-ordered holdout's last rows) still gets an output, to be scored.
    pre, arch = preprocessing(undeclared, frame, None, pd.Series(["JFK", "LGA", "LGA"]))
    assert pre.classes == ("EWR", "JFK", "LGA") and arch.n_outputs == 3
    grown, arch = preprocessing(undeclared, frame, (pre, arch), pd.Series(["BOS"]))
    assert grown.classes == ("EWR", "JFK", "LGA", "BOS") and arch.n_outputs == 4
    assert new_classes(pre, grown, frame.assign(origin=["BOS", "JFK", "BOS", "EWR"])) == {"BOS": 2}


def test_a_number_column_with_no_value_at_the_first_model_is_refused_by_name() -> None:
    """storms' storm diameters are recorded from 2004 on: null in every row of the first decades."""
    toml = TINY_TOML.format(name="empty", landing="/tmp/x").replace('"visib"]', '"visib"]\nnullable = ["visib"]')
    settings = parse_settings(tomllib.loads(toml))
    frame = pd.DataFrame(
        {
            "distance": [100.0, 200.0, 300.0, 400.0],
            "sched_dep_hour": [5, 6, 7, 8],
            "temp": [1.0, 2.0, 3.0, 4.0],
            "visib": [None] * 4,
            "carrier": ["AA", "UA"] * 2,
            "origin": ["JFK", "EWR"] * 2,
            "dest": ["BOS", "MIA"] * 2,
            "late": [0, 1, 0, 1],
        }
    )
    with pytest.raises(SnapshotRejected, match=r"numeric column\(s\) \['visib'\] hold no value in any of the 4 "):
        preprocessing(settings, frame, None)
    pre, _ = preprocessing(settings, frame.assign(visib=[None, 3.0, None, None]), None)
    assert pre.numeric["visib"] == (3.0, 1.0)  # one value is enough: its mean, and a spread of 1


@pytest.mark.parametrize("architecture", ["mlp", "tabm"])
def test_shrink_perturb_blends_the_old_outputs_and_keeps_fresh_ones_for_new_classes(architecture: str) -> None:
    k = 4 if architecture == "tabm" else 0
    bins = ((-2.0, -1.0, 0.0, 1.0, 2.0),) if architecture == "tabm" else ()
    numeric = 8 if architecture == "tabm" else 0
    old_arch = ArchConfig(1, (3,), 4, (16,), 2, architecture, numeric, {}, k, bins)
    new_arch = ArchConfig(1, (4,), 4, (16,), 3, architecture, numeric, {}, k, bins)  # a category and a class more
    old, fresh = build_model(old_arch, seed=1), build_model(new_arch, seed=2)
    reference = {n: p.detach().clone() for n, p in fresh.named_parameters()}
    parent = dict(old.named_parameters())
    grown = shrink_perturb(old, fresh, 0.8, 0.01)
    changed = 0
    for name, p in grown.named_parameters():
        o = parent[name]
        kept = tuple(slice(0, n) for n in o.shape)
        torch.testing.assert_close(p[kept], 0.8 * o + 0.01 * reference[name][kept])
        if o.shape != p.shape:  # the new entries are the fresh copy's, untouched
            changed += 1
            new = torch.ones_like(p, dtype=torch.bool)
            new[kept] = False
            torch.testing.assert_close(p[new], reference[name][new])
    assert changed >= 3  # the embedding, the output weight and its bias
    out = grown(torch.zeros(2, 1), torch.tensor([[3], [1]]))
    assert out.shape[-1] == 3


def test_only_appended_entries_grow() -> None:
    """Rows (an embedding's, a layer's outputs) grow along the first dimension, classes along the last; a one-hot
    input layer of a factory's own, whose new category would sit between other columns, cannot be blended."""
    size = torch.Size
    assert _appended(size([5, 8]), size([7, 8]), None)  # a vocabulary grew
    assert _appended(size([4, 16, 2]), size([4, 16, 3]), (2, 3))  # an ensemble's output layer gained a class
    assert not _appended(size([4, 16, 2]), size([4, 16, 3]), None)
    assert not _appended(size([16, 10]), size([16, 11]), (2, 3))  # a one-hot input widened
    assert not _appended(size([5, 8]), size([6, 9]), (8, 9)) and not _appended(size([5]), size([4]), None)


def _penguins() -> tuple[pd.DataFrame, pd.DataFrame]:
    """palmerpenguins by island: Biscoe and Torgersen hold Adelie and Gentoo penguins; Dream holds Adelie and
    Chinstrap, a species the first snapshot never saw."""
    from palmerpenguins import load_penguins

    frame = load_penguins().dropna().reset_index(drop=True)
    frame = frame.astype({"island": "string", "sex": "string", "species": "string"})
    first = frame[frame["island"] != "Dream"].reset_index(drop=True)
    second = frame[frame["island"] == "Dream"].reset_index(drop=True)
    assert set(first["species"]) == {"Adelie", "Gentoo"} and set(second["species"]) == {"Adelie", "Chinstrap"}
    return first, second


PENGUINS = """
[data]
landing = "{landing}"
target = "species"
task = "multiclass"
numeric = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g", "year"]
categorical = ["sex"]
extra_columns = "ignore"
min_rows = 20
"""


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_server")
def test_a_species_the_first_snapshot_lacked_grows_the_model_through_the_flow(tmp_path: Path, home: Path) -> None:
    landing = tmp_path / "landing"
    landing.mkdir()
    tiny = TINY_TOML.format(name="penguins-grow", landing=landing)
    config = tmp_path / "rewarm.toml"
    train = tiny[tiny.index("[train]") :].replace("max_epochs = 6", "max_epochs = 40")  # 300 rows: a model that learns
    config.write_text(tiny[: tiny.index("[data]")] + PENGUINS.format(landing=landing) + train)
    paths = []
    for number, frame in enumerate(_penguins(), start=1):
        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False)
        paths.append(land(landing / f"penguins-{number}.parquet", buffer.getvalue()))

    assert retrain(str(paths[0]), config=str(config)).version == 1
    client = MlflowClient()
    assert registry.load_alias(client, "penguins-grow").preprocessor.classes == ("Adelie", "Gentoo")
    with logged_by("prefect.task_runs") as logged:
        second = retrain(str(paths[1]), config=str(config))
    assert second.version == 2 and second.decision == "promote"  # the champion cannot predict Chinstrap
    champion = registry.load_alias(client, "penguins-grow")
    assert champion.version == 2 and champion.preprocessor.classes == ("Adelie", "Gentoo", "Chinstrap")
    assert champion.arch.n_outputs == 3
    run = latest_retrain_run(client, "penguins-grow")
    assert run.data.metrics["new_classes"] == 1 and run.data.metrics["new_class_rows"] == 68
    assert any(
        "target 'species' gains 1 class(es) the champion never saw ('Chinstrap': 68 row(s))" in m for m in logged
    )

    import mlflow

    dream = _penguins()[1]
    served = mlflow.pyfunc.load_model("models:/penguins-grow@champion").predict(dream)
    # columns in sorted label order, as scikit-learn gives them, though Chinstrap's output came last
    assert list(served.columns) == ["prediction", "probability_Adelie", "probability_Chinstrap", "probability_Gentoo"]
    chinstrap = (dream["species"] == "Chinstrap").to_numpy()
    assert served["probability_Chinstrap"][chinstrap].mean() > served["probability_Chinstrap"][~chinstrap].mean() + 0.2
    assert (served["prediction"][chinstrap] == "Chinstrap").mean() > 0.5
