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
        x_num, x_cat = self.preprocessor.features(pd.DataFrame(model_input))
        with torch.no_grad():
            out = activate(self.model(torch.from_numpy(x_num), torch.from_numpy(x_cat)), self.preprocessor.task)
        return self.preprocessor.decode(out.numpy())
