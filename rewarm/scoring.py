"""Batch scoring (`rewarm predict FILE`): a file of rows, read as a snapshot is read, scored by a registered
version through its pyfunc (as `mlflow.pyfunc.load_model` and `mlflow models serve` score it), with the holdout
metrics where the file holds the target too (next month's rows, once labelled)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from rewarm import metrics, schema
from rewarm.config import DataSection, Settings
from rewarm.csv_dialect import decimal_commas, dialect
from rewarm.errors import RewarmError, SnapshotRejected
from rewarm.reading import read_bytes, read_raw, snapshot_format


@dataclass(frozen=True)
class Scored:
    """The rows with their predictions, what scored them, and the metrics on the labelled rows."""

    frame: pd.DataFrame  # the file's rows, then the prediction columns
    model_uri: str
    version: int
    labelled: int  # rows whose target is present (0: the file has no target column)
    metrics: dict[str, float]
    note: str = ""  # why the metrics could not be computed


def score_file(settings: Settings, uri: str, version: int | None = None) -> Scored:
    """Score the rows of URI (a local path or fsspec URL, Parquet or CSV) with VERSION of the configured model
    (its champion when None)."""
    import mlflow
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    spec, name = settings.data, settings.model.name
    rows = read_raw(read_bytes(uri), uri, spec)  # CSV cells read as a snapshot's: encodings, words for missing
    model_uri = f"models:/{name}/{version}" if version is not None else f"models:/{name}@champion"
    try:
        found = (
            MlflowClient().get_model_version(name, str(version))
            if version is not None
            else MlflowClient().get_model_version_by_alias(name, "champion")
        )
        model = mlflow.pyfunc.load_model(model_uri)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST" and "not found" not in str(exc).lower():
            raise  # a tracking server that does not answer is not a missing model (rewarm.cli: exit 3)
        raise RewarmError(
            f"{model_uri}: not found in the MLflow store; `rewarm status` shows the model's champion, and the "
            "MLflow UI its versions"
        ) from exc
    pre = model.unwrap_python_model().preprocessor
    features = [*pre.numeric, *pre.categorical]
    missing = [c for c in features if c not in rows.columns]
    if missing:
        raise RewarmError(f"{uri}: missing column(s) {missing} that {model_uri} reads; the file has {list(rows)}")
    try:
        predicted = model.predict(rows[features])
    except MlflowException as exc:  # text in a number column (refused, as in a snapshot), named by the model
        raise RewarmError(f"{uri}: {exc.message}") from exc
    frame = rows.reset_index(drop=True).join(predicted, rsuffix="_predicted")
    scored = Scored(frame, model_uri, int(found.version), 0, {})
    if spec.target not in rows.columns:
        return scored
    labelled = ~schema.missing_target(rows[spec.target]).to_numpy()
    try:
        y = pre.metric_targets(rows[spec.target][labelled])
    except ValueError as exc:  # a label the version never had
        return Scored(frame, model_uri, scored.version, int(labelled.sum()), {}, f"no metrics: {exc}")
    outputs = _outputs(pre, predicted[labelled])
    return Scored(frame, model_uri, scored.version, int(labelled.sum()), metrics.score(pre.task, y, outputs))


def _outputs(pre, predicted: pd.DataFrame) -> np.ndarray:
    """The model's outputs on the metrics' scale, from its decoded predictions."""
    if pre.task == "regression":
        return predicted["prediction"].to_numpy(np.float64)
    if pre.task == "binary":
        return predicted["probability"].to_numpy(np.float64)
    return predicted[[f"probability_{c}" for c in pre.classes]].to_numpy(np.float64)


def summary(scored: Scored, uri: str, target: str) -> str:
    """The line `rewarm predict` prints."""
    line = f"scored {len(scored.frame):,} row(s) of {uri} with {scored.model_uri} (v{scored.version})"
    if scored.note:
        return f"{line}; {scored.note}"
    if scored.labelled:
        shown = ", ".join(f"{k} {v:.4f}" for k, v in scored.metrics.items())
        return f"{line}; {scored.labelled:,} row(s) hold {target!r}: {shown}"
    return line


def write(frame: pd.DataFrame, path: str, spec: DataSection | None = None) -> None:
    """FRAME to PATH, as Parquet (.parquet, .pq) or CSV (.csv, tab-separated .tsv), compressed where the name says
    so (x.csv.gz): what a snapshot of that name is read as (check_out refuses any other name), with SPEC's
    data.separator and data.decimal."""
    import fsspec

    from rewarm.packing import packed

    with fsspec.open(path, "wb") as fh:
        if snapshot_format(path) == "parquet":
            frame.to_parquet(fh, index=False)
        else:
            if spec is not None:  # the number text read with decimal points (decimal_points), written back as read
                frame = decimal_commas(frame, spec)
            fh.write(packed(frame.to_csv(index=False, **dialect(path, spec)).encode(), path))


def check_out(path: str) -> None:
    """Refuse an --out name rewarm would not read back as it writes it, before anything is scored."""
    try:
        snapshot_format(path)
    except SnapshotRejected as exc:
        raise RewarmError(
            f"--out {path}: write .parquet, .csv or .tsv, optionally compressed (.csv.gz, .csv.bz2, .csv.xz, .csv.zip)"
        ) from exc
