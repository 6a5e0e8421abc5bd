"""The registered model as MLflow pyfunc: raw snapshot rows in, predictions out, preprocessing inside.

This package is copied into every logged model (as `rewarm_models`), so `mlflow models serve` needs
only torch, numpy, pandas and mlflow; the weights load with torch.load(weights_only=True).
"""

from __future__ import annotations

import json
from pathlib import Path

import mlflow.pyfunc
import pandas as pd
import torch
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
from torch import nn

from .network import ArchConfig, activate, build_module
from .preprocess import Preprocessor

CONFIG_FILE, WEIGHTS_FILE = "model.json", "state_dict.pt"


def load_files(config_path: str | Path, weights_path: str | Path) -> tuple[nn.Module, Preprocessor, dict]:
    """Rebuild a trainable module and its preprocessor from a model's two files."""
    meta = json.loads(Path(config_path).read_text())
    model = build_module(ArchConfig.from_dict(meta["arch"]))
    state = torch.load(weights_path, map_location="cpu", weights_only=True)
    for name, built in model.named_buffers():  # the bins' encoding is rebuilt from model.json: the weights agree
        if name.startswith("numeric.impl.") and name in state and not torch.equal(state[name], built):
            raise ValueError(f"{config_path}: its bins do not match the weights' {name}; the two files disagree")
    model.load_state_dict(state)
    return model, Preprocessor.from_dict(meta["preprocessor"]), meta


class RewarmModel(mlflow.pyfunc.PythonModel):
    """pyfunc wrapper: DataFrame of raw rows -> DataFrame of predictions."""

    def load_context(self, context) -> None:
        self.model, self.preprocessor, self.meta = load_files(context.artifacts["config"], context.artifacts["weights"])
        self.model.eval()

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        rows = pd.DataFrame(model_input)
        refuse_unreadable(self.preprocessor, rows)
        x_num, x_cat = self.preprocessor.features(rows)
        with torch.no_grad():
            out = activate(self.model(torch.from_numpy(x_num), torch.from_numpy(x_cat)), self.preprocessor.task)
        return self.preprocessor.decode(out.numpy())


def refuse_unreadable(preprocessor: Preprocessor, rows: pd.DataFrame) -> None:
    """Refuse ROWS whose numeric columns hold text that is not a number or an infinite number, as a snapshot with
    them is refused: a guess would score a row the model never saw. A missing value (null, NaN, or a word a CSV
    writes for one, such as NA) takes the training mean instead. An MlflowException with
    INVALID_PARAMETER_VALUE: `mlflow models serve` answers 400 with this message."""
    bad = preprocessor.unreadable_numbers(rows)
    if not bad:
        return
    what = "; ".join(
        f"column {col!r} must hold finite numbers but {n} of {len(rows)} row(s) hold other values "
        f"({', '.join(repr(v) for v in examples)})"
        for col, (n, examples) in bad.items()
    )
    raise MlflowException(
        f"{what}: send finite numbers (or ISO 8601 timestamps), and null for a missing value; nothing was predicted",
        error_code=INVALID_PARAMETER_VALUE,
    )
