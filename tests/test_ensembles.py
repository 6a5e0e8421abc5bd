"""[model] architecture = "mlp_plr" and "tabm": piecewise-linear bins fitted once and kept in model.json, an
ensemble's k outputs trained member by member and averaged for scoring and serving, shrink-perturb exact over every
parameter, and a tabm champion answering through `mlflow models serve`."""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import torch
from flight_snapshots import two_months, write_config
from mlflow import MlflowClient
from waiting import wait_for

from rewarm import registry
from rewarm.config import load_settings
from rewarm.flows.retrain import retrain
from rewarm.models.network import ArchConfig, activate, build_model, ensemble_logits, fit_bins
from rewarm.models.strategies import shrink_perturb
from rewarm.processes import free_port, spawn, stop_group
from rewarm.training import evaluate_loss, loss_fn, predict, train

X = torch.tensor([[0.0, 5.0, 1.0], [1.0, 5.0, 2.0], [2.0, 5.0, 3.0], [3.0, 5.0, 4.0], [4.0, 5.0, 1.0]] * 20)
BINS = fit_bins(X)
PLR = ArchConfig(3, (4, 6), 2, (8,), 1, "mlp_plr", 5, bins=BINS)
TABM = ArchConfig(3, (4, 6), 2, (8, 8), 1, "tabm", 5, k=4, bins=BINS)


def test_bins_are_quantiles_per_number_and_a_constant_number_gets_one_bin() -> None:
    assert (BINS[0][0], BINS[0][-1], len(BINS[0])) == (0.0, 4.0, 6)  # five distinct values: five quantile bins
    assert BINS[1] == (4.0, 6.0)  # one value: one bin around it
    assert len(BINS) == 3 and all(list(e) == sorted(set(e)) for e in BINS)
    many = torch.randn(5000, 1)
    assert len(fit_bins(many)[0]) == 17 and len(fit_bins(many, 48)[0]) == 49  # 16 quantile bins unless told


def test_tabm_forward_is_tabms_layers_over_k_copies_of_each_row() -> None:
    """rewarm folds the first layer's scalings into its weights instead of copying each row k times: the same
    outputs, and the same gradients on every parameter, as tabm's own layers over the copies."""
    model, rng = build_model(TABM, seed=0), torch.Generator().manual_seed(0)
    with torch.no_grad():  # scalings away from tabm's initial ones, so that folding them is exercised
        for p in model.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=rng))
    x_num, x_cat = torch.randn(7, 3, generator=rng), torch.randint(0, 4, (7, 2), generator=rng)
    folded = model(x_num, x_cat)
    numbers = model.numeric(x_num).flatten(1)
    x = torch.cat([numbers] + [e(x_cat[:, i]) for i, e in enumerate(model.embeddings)], dim=1)
    copied = model.output(model.backbone(x.unsqueeze(1).expand(-1, TABM.k, -1)))
    assert torch.allclose(folded, copied, rtol=1e-5, atol=1e-6)
    grads = [torch.autograd.grad(out.square().sum(), list(model.parameters())) for out in (folded, copied)]
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(*grads, strict=True))


@pytest.mark.parametrize("arch", [PLR, TABM], ids=["mlp_plr", "tabm"])
def test_the_bins_travel_in_the_config_and_rebuild_the_same_network(arch: ArchConfig) -> None:
    model = build_model(arch, seed=3)
    saved = json.loads(json.dumps(arch.to_dict()))  # model.json
    rebuilt = build_model(ArchConfig.from_dict(saved), seed=99)  # other weights, the same bins
    buffers = dict(model.named_buffers())
    assert buffers and all(torch.equal(b, buffers[n]) for n, b in rebuilt.named_buffers())  # before any load
    rebuilt.load_state_dict(model.state_dict())
    x_num, x_cat = torch.randn(7, 3), torch.randint(0, 4, (7, 2))
    assert torch.equal(rebuilt(x_num, x_cat), model(x_num, x_cat))
    assert ArchConfig.from_dict(saved).bins == BINS


def test_weights_whose_bins_disagree_with_model_json_are_refused(tmp_path: Path) -> None:
    from dataclasses import replace

    from rewarm.models.serving import load_files

    model = build_model(PLR, seed=0)
    torch.save(model.state_dict(), tmp_path / "state_dict.pt")
    other = replace(PLR, bins=(BINS[0], (3.0, 7.0), BINS[2]))  # the same counts, other edges
    for arch, ok in ((PLR, True), (other, False)):
        (tmp_path / "model.json").write_text(json.dumps({"arch": arch.to_dict(), "preprocessor": {}}))
        if ok:
            with pytest.raises(KeyError):  # past the weights: the (empty) preprocessor is what fails here
                load_files(tmp_path / "model.json", tmp_path / "state_dict.pt")
        else:
            with pytest.raises(ValueError, match="bins do not match"):
                load_files(tmp_path / "model.json", tmp_path / "state_dict.pt")


def test_tabm_gives_k_predictions_per_row_and_they_are_averaged() -> None:
    model = build_model(TABM, seed=0)
    out = model(torch.randn(6, 3), torch.randint(0, 4, (6, 2)))
    assert out.shape == (6, 4, 1)
    assert not torch.allclose(out[:, 0], out[:, 1])  # the members differ from the start (TabM's scalings)
    assert torch.allclose(activate(out, "binary"), torch.sigmoid(out[..., 0]).mean(1))
    # The loss early stopping watches is the averaged prediction's log loss, not the members' mean loss.
    y = torch.tensor([0, 1, 1, 0, 1, 0])
    p = torch.sigmoid(out[..., 0]).mean(1)
    expected = -(y * p.log() + (1 - y) * (1 - p).log()).mean()
    assert torch.allclose(loss_fn("binary")(ensemble_logits(out, "binary"), y), expected, atol=1e-5)
    members = torch.stack([loss_fn("binary")(out[:, i], y) for i in range(4)]).mean()
    assert torch.allclose(loss_fn("binary")(out, y), members)  # training: every member on every row
    three = torch.randn(6, 4, 3)
    assert torch.allclose(activate(three, "multiclass"), torch.softmax(three, 2).mean(1))
    assert torch.allclose(activate(ensemble_logits(three, "multiclass"), "multiclass"), activate(three, "multiclass"))
    labels = torch.tensor([0, 2, 1, 1, 0, 2])
    members = torch.stack([loss_fn("multiclass")(three[:, i], labels) for i in range(4)]).mean()
    assert torch.allclose(loss_fn("multiclass")(three, labels), members)
    values, target = torch.randn(6, 4, 1), torch.randn(6)
    assert torch.allclose(activate(values, "regression"), values[..., 0].mean(1))
    members = torch.stack([loss_fn("regression")(values[:, i], target) for i in range(4)]).mean()
    assert torch.allclose(loss_fn("regression")(values, target), members)
    assert torch.allclose(ensemble_logits(values, "regression")[:, 0], values[..., 0].mean(1))


@pytest.mark.parametrize("arch", [PLR, TABM], ids=["mlp_plr", "tabm"])
def test_shrink_perturb_blends_every_parameter_and_keeps_the_bins(arch: ArchConfig) -> None:
    from dataclasses import replace

    grown = replace(arch, cardinalities=(7, 6))  # a category column's vocabulary grew
    old, fresh = build_model(arch, 1), build_model(grown, 2)
    before = {k: v.detach().clone() for k, v in fresh.named_parameters()}
    blended = shrink_perturb(old, fresh, 0.8, 0.01)
    for name, p in blended.named_parameters():
        o = dict(old.named_parameters())[name]
        assert torch.allclose(p[: o.shape[0]], 0.8 * o + 0.01 * before[name][: o.shape[0]]), name
    assert torch.equal(blended.embeddings[0].weight[4:], before["embeddings.0.weight"][4:])  # new rows stay fresh
    for name, buffer in blended.named_buffers():  # the encoding's bins: the fresh copy's, which are the parent's
        assert torch.equal(buffer, dict(old.named_buffers())[name]), name


def test_a_tabm_learns_a_task_and_is_reproducible() -> None:
    from rewarm.config import TrainSection
    from rewarm.training import Tensors

    g = torch.Generator().manual_seed(0)
    x_num, x_cat = torch.randn(600, 3, generator=g), torch.randint(0, 4, (600, 2), generator=g)
    y = ((x_num[:, 0] > 0) ^ (x_cat[:, 0] == 2)).long()
    data = Tensors(x_num, x_cat, y)
    arch = ArchConfig(3, (4, 6), 2, (16, 16), 1, "tabm", 4, k=4, bins=fit_bins(x_num))
    cfg = TrainSection(max_epochs=25, patience=25, batch_size=64)
    runs = []
    for _ in range(2):
        model = build_model(arch, seed=5)
        start = evaluate_loss(model, data, "binary")
        result = train(model, data, data, "binary", cfg)
        runs.append(predict(model, x_num, x_cat, "binary"))
    assert result.val_loss[-1] < 0.8 * start
    assert np.array_equal(runs[0], runs[1])  # seeded on the CPU


def test_an_architecture_setting_that_does_not_fit_is_refused(tmp_path: Path) -> None:
    from rewarm.errors import ConfigError

    config = write_config(tmp_path, name="tabm-config")
    config.write_text(config.read_text().replace("embedding_dim = 4\n", "embedding_dim = 4\nensemble_size = 0\n"))
    with pytest.raises(ConfigError, match="ensemble_size"):
        load_settings(config)


def _with_architecture(config: Path, lines: str) -> Path:
    config.write_text(config.read_text().replace("embedding_dim = 4\n", f"embedding_dim = 4\n{lines}\n"))
    return config


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_server")
def test_a_tabm_champion_retrains_keeps_its_bins_and_answers_through_mlflow_models_serve(
    tmp_path: Path, home: Path, flights: pd.DataFrame
) -> None:
    lines = 'architecture = "tabm"\nensemble_size = 3\nnumeric_bins = 5'
    config = _with_architecture(write_config(tmp_path, name="tabm-test"), lines)
    paths = two_months(tmp_path / "landing", flights)

    first = retrain(str(paths[0]), config=str(config))
    second = retrain(str(paths[1]), config=str(config), strategies=["shrink_perturb"])

    client = MlflowClient()
    one, two = (registry.load_version(client, "tabm-test", v) for v in (first.version, second.version))
    assert two.arch.architecture == "tabm" and two.arch.k == 3 and len(two.arch.bins) == two.arch.n_numeric
    assert two.arch.bins == one.arch.bins  # fitted on the first model's rows, then kept
    assert max(len(edges) for edges in one.arch.bins) == 6  # numeric_bins = 5: at most 5 bins a number
    run = client.get_run(client.get_model_version("tabm-test", str(second.version)).run_id)
    assert run.data.params["architecture"] == "tabm" and run.data.params["ensemble_size"] == "3"
    assert int(run.data.params["parameters"]) == sum(p.numel() for p in two.module.parameters())
    uri = f"models:/tabm-test/{second.version}"
    needs = Path(mlflow.pyfunc.get_model_dependencies(uri)).read_text()
    assert "tabm==0.0.3" in needs and "rtdl_num_embeddings==0.0.12" in needs
    rows = pd.read_parquet(paths[1]).drop(columns="late").head(20)
    expected = mlflow.pyfunc.load_model(uri).predict(rows)["probability"].to_numpy()

    port = free_port()
    command = [str(Path(sys.executable).with_name("mlflow")), "models", "serve", "-m", uri]
    command += ["--env-manager", "local", "--host", "127.0.0.1", "--port", str(port)]
    env = os.environ | {  # the scoring server is started as `uvicorn`, found on PATH: this environment's
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "MLFLOW_TRACKING_URI": mlflow.get_tracking_uri(),
        "MLFLOW_REGISTRY_URI": mlflow.get_registry_uri(),
    }
    server = spawn(command, tmp_path / "serve.log", env)
    try:
        body = json.dumps({"dataframe_split": json.loads(rows.to_json(orient="split", index=False))}).encode()

        def answer() -> dict | None:
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/invocations", body, {"Content-Type": "application/json"}
            )
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    return json.loads(response.read())
            except OSError:
                assert server.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
                return None

        got = wait_for(answer, "mlflow models serve to answer", timeout=180)
        bad = rows.head(3).astype({"temp": object})
        bad.loc[bad.index[1], "temp"] = "warm"  # text in a numeric column: refused, as a snapshot with it is
        refused = _post(port, {"dataframe_split": json.loads(bad.to_json(orient="split", index=False))})
    finally:
        stop_group(server, grace=5, reap=30)
    served = np.array([r["probability"] for r in got["predictions"]])
    assert served == pytest.approx(expected, abs=1e-6)
    status, said = refused
    assert status == 400 and said["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "column 'temp' must hold finite numbers but 1 of 3 row(s) hold other values ('warm')" in said["message"]
    assert "nothing was predicted" in said["message"]


def _post(port: int, payload: dict) -> tuple[int, dict]:
    """POST PAYLOAD to a scoring server's /invocations; return the status and the JSON answer, an error's too."""
    body = json.dumps(payload).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", body, {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())
