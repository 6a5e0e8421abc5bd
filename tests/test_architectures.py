"""[model] architecture: the plain MLP and the MLP with periodic numeric embeddings (rtdl_num_embeddings), each
rebuilt from its config plus a state_dict, shrink-perturbed over every parameter, and served through pyfunc."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import torch
from flight_snapshots import two_months, write_config
from mlflow import MlflowClient

from rewarm import registry
from rewarm.config import load_settings
from rewarm.flows.retrain import retrain
from rewarm.models.network import ArchConfig, TabularMLP, build_model
from rewarm.models.strategies import shrink_perturb

PERIODIC = ArchConfig(3, (4, 6), 2, (8,), 1, "mlp_periodic", 5)


def test_periodic_embeddings_feed_the_mlp_and_rebuild_from_the_config() -> None:
    model = build_model(PERIODIC, seed=3)
    names = dict(model.named_parameters())
    assert names["numeric.periodic.weight"].shape == (3, 16)  # 16 frequencies per number
    assert names["numeric.linear.weight"].shape == (3, 32, 5)  # sin and cos of each -> a width-5 embedding
    assert model.mlp[0].in_features == 3 * 5 + 2 * 2
    x_num, x_cat = torch.randn(7, 3), torch.randint(0, 4, (7, 2))
    rebuilt = TabularMLP(ArchConfig.from_dict(PERIODIC.to_dict()))
    rebuilt.load_state_dict(model.state_dict())
    assert torch.equal(rebuilt(x_num, x_cat), model(x_num, x_cat))
    assert torch.equal(build_model(PERIODIC, 3)(x_num, x_cat), model(x_num, x_cat))  # seeded


def test_a_model_logged_before_architectures_existed_is_an_mlp() -> None:
    old = {k: v for k, v in PERIODIC.to_dict().items() if k not in ("architecture", "numeric_embedding")}
    assert ArchConfig.from_dict(old).architecture == "mlp"
    assert not any(n.startswith("numeric.") for n, _ in TabularMLP(ArchConfig.from_dict(old)).named_parameters())


def test_shrink_perturb_blends_every_parameter_of_the_periodic_network() -> None:
    grown = ArchConfig(3, (7, 6), 2, (8,), 1, "mlp_periodic", 5)  # a category column's vocabulary grew
    old, fresh = build_model(PERIODIC, 1), build_model(grown, 2)
    before = {k: v.detach().clone() for k, v in fresh.named_parameters()}
    blended = shrink_perturb(old, fresh, 0.8, 0.01)
    for name, p in blended.named_parameters():
        o = dict(old.named_parameters())[name]
        rows = o.shape[0]
        assert torch.allclose(p[:rows], 0.8 * o + 0.01 * before[name][:rows]), name
    assert torch.equal(blended.embeddings[0].weight[4:], before["embeddings.0.weight"][4:])  # new rows stay fresh


def test_an_unknown_architecture_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown architecture 'tree'"):
        TabularMLP(ArchConfig(3, (4,), 2, (8,), 1, "tree"))
    no_numbers = ArchConfig(0, (4,), 2, (8,), 1, "mlp_periodic", 5)
    assert build_model(no_numbers, 0).numeric is None  # nothing to embed


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_server")
def test_a_periodic_model_bootstraps_retrains_with_shrink_perturb_and_serves(
    tmp_path: Path, home: Path, flights: pd.DataFrame
) -> None:
    config = write_config(tmp_path, name="periodic-test")
    config.write_text(
        config.read_text().replace("embedding_dim = 4\n", 'embedding_dim = 4\narchitecture = "mlp_periodic"\n')
    )
    paths = two_months(tmp_path / "landing", flights)

    first = retrain(str(paths[0]), config=str(config))
    second = retrain(str(paths[1]), config=str(config), strategies=["shrink_perturb"])

    assert first.decision == "first_model" and second.version == 2
    champion = registry.load_alias(MlflowClient(), "periodic-test")
    assert champion.module.arch.architecture == "mlp_periodic"
    assert any(n.startswith("numeric.periodic") for n, _ in champion.module.named_parameters())
    uri = f"models:/periodic-test/{second.version}"
    needs = Path(mlflow.pyfunc.get_model_dependencies(uri)).read_text()
    assert "rtdl_num_embeddings==0.0.12" in needs
    rows = pd.read_parquet(paths[1]).drop(columns="late")
    predicted = mlflow.pyfunc.load_model(uri).predict(rows)
    assert len(predicted) == len(rows) and predicted["probability"].between(0, 1).all()


# --- your own network: architecture = "package.module:factory" -------------------------------------------------

FACTORY = '''
import torch
from torch import nn


class Small(nn.Module):
    """One embedding per category column (its rows grow with the vocabulary), then one hidden layer."""

    def __init__(self, n_numeric, cardinalities, n_outputs, width, dim):
        super().__init__()
        self.embeddings = nn.ModuleList(nn.Embedding(c, dim) for c in cardinalities)
        self.body = nn.Sequential(nn.Linear(n_numeric + dim * len(cardinalities), width), nn.ReLU())
        self.head = nn.Linear(width, n_outputs)

    def forward(self, x_num, x_cat):
        parts = [x_num] + [e(x_cat[:, i]) for i, e in enumerate(self.embeddings)]
        return self.head(self.body(torch.cat(parts, dim=1)))


def small(n_numeric, cardinalities, n_outputs, width=8, dim=3):
    return Small(n_numeric, cardinalities, n_outputs, width, dim)
'''


@pytest.fixture
def factory_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A package of the user's own, importable in this process only."""
    root = tmp_path / "userlib"
    (root / "mynets").mkdir(parents=True)
    (root / "mynets" / "__init__.py").write_text("")
    (root / "mynets" / "tiny.py").write_text(FACTORY)
    monkeypatch.syspath_prepend(str(root))
    return root


def test_a_factory_that_cannot_be_imported_is_named_with_the_fix(tmp_path: Path) -> None:
    from rewarm.errors import ConfigError

    for spec, said in [("nope.nets:small", "cannot import it"), ("mlp2", "unknown architecture 'mlp2'")]:
        config = write_config(tmp_path, name="byo")
        config.write_text(
            config.read_text().replace("embedding_dim = 4\n", f'embedding_dim = 4\narchitecture = "{spec}"\n')
        )
        with pytest.raises(ConfigError, match=said):
            load_settings(config)


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_server")
def test_your_own_network_bootstraps_retrains_with_shrink_perturb_and_loads_without_its_package(
    tmp_path: Path, home: Path, flights: pd.DataFrame, factory_package: Path
) -> None:
    config = write_config(tmp_path, name="byo-test")
    text = config.read_text().replace("embedding_dim = 4\n", 'embedding_dim = 4\narchitecture = "mynets.tiny:small"\n')
    config.write_text(text + "\n[model.options]\nwidth = 12\n")
    paths = two_months(tmp_path / "landing", flights)

    retrain(str(paths[0]), config=str(config))
    second = retrain(str(paths[1]), config=str(config), strategies=["shrink_perturb"])

    champion = registry.load_version(MlflowClient(), "byo-test", second.version)
    assert type(champion.module).__name__ == "Small" and champion.module.body[0].out_features == 12
    assert champion.arch.architecture == "mynets.tiny:small" and champion.arch.options == {"width": 12}
    # The factory's code travels with the logged model: a process that cannot import mynets still loads it.
    rows = tmp_path / "rows.parquet"
    pd.read_parquet(paths[1]).drop(columns="late").head(50).to_parquet(rows)
    script = (
        "import sys, mlflow, pandas as pd\n"
        "assert not any('userlib' in p for p in sys.path)\n"
        f"m = mlflow.pyfunc.load_model({f'models:/byo-test/{second.version}'!r})\n"
        f"print(len(m.predict(pd.read_parquet({str(rows)!r}))))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {
        "MLFLOW_TRACKING_URI": mlflow.get_tracking_uri()
    }
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert done.returncode == 0 and done.stdout.strip().endswith("50"), done.stderr[-3000:]
