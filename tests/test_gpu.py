"""The one training code path on CUDA with bf16 autocast; skipped where no GPU is present (CI, laptops)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rewarm.config import TrainSection
from rewarm.models.network import ArchConfig, build_model, fit_bins
from rewarm.models.strategies import initialise, strategy
from rewarm.training import Tensors, pick_device, predict, train

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
ARCH = ArchConfig(n_numeric=3, cardinalities=(5,), embedding_dim=4, hidden=(32,), n_outputs=1)


def _data(n: int, seed: int, device: torch.device) -> Tensors:
    rng = np.random.default_rng(seed)
    x_num = rng.normal(size=(n, 3)).astype(np.float32)
    x_cat = rng.integers(0, 5, (n, 1)).astype(np.int64)
    y = (x_num[:, 0] + (x_cat[:, 0] == 3) > 0.2).astype(np.int64)
    return Tensors.build(x_num, x_cat, y, device)


def _arch(kind: str) -> ArchConfig:
    if kind == "mlp":
        return ARCH
    bins = fit_bins(_data(4096, 0, torch.device("cpu")).x_num) if kind != "mlp_periodic" else ()
    return ArchConfig(3, (5,), 4, (32, 32), 1, kind, numeric_embedding=8, k=4 if kind == "tabm" else 0, bins=bins)


@pytest.mark.parametrize("kind", ["mlp", "mlp_periodic", "mlp_plr", "tabm"])
def test_auto_picks_cuda_and_trains_under_bf16_autocast(kind: str) -> None:
    device = pick_device("auto")
    assert device.type == "cuda"
    train_set, val_set = _data(4096, 0, device), _data(1024, 1, device)
    cfg = TrainSection(max_epochs=5, patience=5, batch_size=512, seed=0)
    arch = _arch(kind)
    parent = build_model(arch, seed=1)
    model = initialise(strategy("shrink_perturb", 0.6, 0.01), arch, parent, seed=0)
    result = train(model, train_set, val_set, "binary", cfg)
    assert result.val_loss[-1] < result.val_loss[0] and all(np.isfinite(result.train_loss))
    assert all(t.device.type == "cpu" for t in result.state_dict.values())  # checkpoints always land on the CPU
    p = predict(model, val_set.x_num, val_set.x_cat, "binary")
    accuracy = float(((p >= 0.5) == val_set.y.cpu().numpy()).mean())
    assert accuracy > 0.8


def test_a_model_trained_on_gpu_registers_loads_back_and_predicts_on_cpu(tmp_path, monkeypatch) -> None:
    import mlflow
    import pandas as pd
    from mlflow import MlflowClient

    from rewarm import registry
    from rewarm.models.preprocess import Preprocessor
    from rewarm.store import experiment_id, open_store, resolve_store

    monkeypatch.setenv("REWARM_HOME", str(tmp_path / "home"))
    store = open_store(resolve_store())
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=4096), "b": rng.normal(size=4096), "c": rng.integers(0, 5, 4096)})
    frame["c"] = frame["c"].astype(str)
    frame["y"] = ((frame["a"] + (frame["c"] == "3")) > 0.2).astype(int)
    pre = Preprocessor.fit(frame, "binary", "y", ["a", "b"], ["c"])
    arch = ArchConfig(n_numeric=2, cardinalities=pre.cardinalities, embedding_dim=4, hidden=(32,), n_outputs=1)
    x_num, x_cat = pre.features(frame)
    y = pre.labels(frame["y"])
    cuda = torch.device("cuda")
    data = Tensors.build(x_num, x_cat, y, cuda)
    model = build_model(arch, seed=0)
    result = train(model, data, data, "binary", TrainSection(max_epochs=5, patience=5, batch_size=512, seed=0))
    assert result.val_loss[-1] < result.val_loss[0]

    client = MlflowClient()
    run_id = client.create_run(experiment_id(store, "gpu-test")).info.run_id
    version = registry.log_model(run_id, model, pre, {"strategy": "cold"}, "gpu-test", {"strategy": "cold"})
    loaded = registry.load_version(client, "gpu-test", version)

    assert all(p.device.type == "cpu" for p in loaded.module.parameters())
    on_gpu = predict(model, data.x_num, data.x_cat, "binary")  # bf16 autocast
    on_cpu = predict(loaded.module, torch.tensor(x_num), torch.tensor(x_cat), "binary")  # float32
    np.testing.assert_allclose(on_cpu, on_gpu, atol=0.02)
    served = mlflow.pyfunc.load_model(f"models:/gpu-test/{version}").predict(frame.drop(columns="y").head(10))
    assert len(served) == 10 and served["probability"].between(0, 1).all()
