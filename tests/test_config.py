"""Typed configuration from rewarm.toml (rewarm/config.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rewarm.config import TASK_METRICS, load_settings
from rewarm.errors import ConfigError, RewarmError

ISSUE_TOML = """\
[model]
name = "flight-delay"

[data]
landing = "data/landing"
target = "late"
task = "binary"
numeric = ["distance", "sched_dep_hour", "temp"]
categorical = ["carrier", "origin", "dest"]
window = 3

[train]
strategies = ["shrink_perturb", "cold"]
shrink = 0.6
perturb = 0.01
max_epochs = 12

[gate]
metric = "roc_auc"
min_delta = 0.002
"""

MINIMAL_TOML = """\
[model]
name = "m"

[data]
target = "y"
task = "{task}"
numeric = ["a"]
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rewarm.toml"
    path.write_text(text)
    return path


def test_load_settings_reads_the_issue_keys(tmp_path: Path) -> None:
    path = _write(tmp_path, ISSUE_TOML)
    s = load_settings(path)
    assert s.source == str(path)
    assert s.model.name == "flight-delay"
    assert s.data.landing == str(tmp_path / "data/landing") and s.data.target == "late" and s.data.task == "binary"
    assert s.data.numeric == ("distance", "sched_dep_hour", "temp")
    assert s.data.categorical == ("carrier", "origin", "dest")
    assert s.data.window == 3
    assert s.train.strategies == ("shrink_perturb", "cold")
    assert (s.train.shrink, s.train.perturb, s.train.max_epochs) == (0.6, 0.01, 12)
    assert s.gate.metric == "roc_auc" and s.metric == "roc_auc"
    assert s.gate.min_delta == 0.002


def test_load_settings_finds_rewarm_toml_in_the_working_directory(tmp_path: Path, monkeypatch) -> None:
    _write(tmp_path, ISSUE_TOML)
    monkeypatch.chdir(tmp_path)
    assert load_settings().model.name == "flight-delay"


def test_the_repository_demo_config_is_valid() -> None:
    repo_toml = Path(__file__).resolve().parents[1] / "rewarm.toml"
    s = load_settings(repo_toml)
    assert s.data.task == "binary" and s.metric == "roc_auc"


def test_defaults_are_applied(tmp_path: Path) -> None:
    s = load_settings(_write(tmp_path, MINIMAL_TOML.format(task="binary")))
    assert s.model.hidden == (32, 32) and s.model.embedding_dim == 8
    assert (s.model.architecture, s.model.ensemble_size, s.model.numeric_bins) == ("tabm", 4, 16)
    # the MLPs' widths stay 128/64; widths given are kept whatever the architecture
    mlp = MINIMAL_TOML.format(task="binary").replace("[model]\n", '[model]\narchitecture = "mlp"\n')
    assert load_settings(_write(tmp_path, mlp)).model.hidden == (128, 64)
    given = MINIMAL_TOML.format(task="binary").replace("[model]\n", "[model]\nhidden = [32]\n")
    assert load_settings(_write(tmp_path, given)).model.hidden == (32,)
    # a landing left out is the default, relative to the config file's folder like a given one
    assert s.data.landing == str(tmp_path / "data/landing") and s.data.categorical == () and s.data.window == 0
    assert (s.data.holdout_fraction, s.data.validation_fraction, s.data.min_rows) == (0.2, 0.1, 50)
    assert s.train.strategies == ("shrink_perturb", "cold")
    assert (s.train.shrink, s.train.perturb) == (0.8, 0.01)
    assert (s.train.max_epochs, s.train.patience, s.train.batch_size) == (30, 3, 1024)
    assert (s.train.lr, s.train.weight_decay, s.train.warmup_fraction) == (3e-3, 1e-4, 0.05)
    assert (s.train.seed, s.train.device) == (0, "auto")
    assert s.gate.metric is None
    assert (s.gate.min_delta, s.gate.bootstrap, s.gate.confidence, s.gate.require_significant) == (
        0.0,
        1000,
        0.95,
        False,
    )


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_default_metric_follows_the_task(tmp_path: Path, task: str) -> None:
    s = load_settings(_write(tmp_path, MINIMAL_TOML.format(task=task)))
    assert s.metric == TASK_METRICS[task][0]
    assert s.metric == {"binary": "roc_auc", "multiclass": "log_loss", "regression": "rmse"}[task]


def test_missing_file_names_the_path_and_the_config_option(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert str(tmp_path / "rewarm.toml") in message
    assert "--config" in message
    assert isinstance(info.value, RewarmError)


def test_missing_explicit_file_names_that_path(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "custom.toml"
    with pytest.raises(ConfigError, match="no configuration file at") as info:
        load_settings(missing)
    assert str(missing) in str(info.value)


def test_invalid_toml_is_reported_with_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "[model\nname = 'x'\n")
    with pytest.raises(ConfigError, match="cannot read TOML") as info:
        load_settings(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    ("extra", "key", "hint"),
    [
        ("[data]\ncolour = 'red'\n", "data.colour", ""),
        ("[data]\nnulable = ['a']\n", "data.nulable", " (did you mean data.nullable?)"),
        ("[train]\nlearning_rate = 0.1\n", "train.learning_rate", ""),
        ("[train]\ncold_evry = 3\n", "train.cold_evry", " (did you mean train.cold_every?)"),
        ("[gates]\nmetric = 'rmse'\n", "gates", " (did you mean gate?)"),
    ],
)
def test_unknown_key_is_rejected_by_name(tmp_path: Path, extra: str, key: str, hint: str) -> None:
    base = MINIMAL_TOML.format(task="binary")
    text = base.replace("[data]\n", extra) if extra.startswith("[data]") else base + extra
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    message = str(info.value)
    assert f"{key}: Extra inputs are not permitted{hint}" in message and message.count("did you mean") == bool(hint)
    assert message.startswith(str(path))


def test_bad_task_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"data\.task: .*'binary', 'multiclass' or 'regression'"):
        load_settings(_write(tmp_path, MINIMAL_TOML.format(task="ranking")))


def test_roc_auc_for_regression_is_rejected(tmp_path: Path) -> None:
    text = MINIMAL_TOML.format(task="regression") + '\n[gate]\nmetric = "roc_auc"\n'
    with pytest.raises(ConfigError, match=r"gate\.metric 'roc_auc' does not fit task 'regression'") as info:
        load_settings(_write(tmp_path, text))
    assert "rmse" in str(info.value) and "mae" in str(info.value)


def test_a_fitting_metric_is_accepted(tmp_path: Path) -> None:
    text = MINIMAL_TOML.format(task="regression") + '\n[gate]\nmetric = "mae"\n'
    assert load_settings(_write(tmp_path, text)).metric == "mae"


def test_target_listed_as_feature_is_rejected(tmp_path: Path) -> None:
    text = MINIMAL_TOML.format(task="binary").replace('numeric = ["a"]', 'numeric = ["a", "y"]')
    with pytest.raises(ConfigError, match=r"data: .*target column 'y' is also listed as a feature"):
        load_settings(_write(tmp_path, text))


def test_duplicate_and_absent_features_are_rejected(tmp_path: Path) -> None:
    dup = MINIMAL_TOML.format(task="binary") + 'categorical = ["a"]\n'
    with pytest.raises(ConfigError, match=r"columns listed twice .*\['a'\]"):
        load_settings(_write(tmp_path, dup))
    none = MINIMAL_TOML.format(task="binary").replace('numeric = ["a"]\n', "")
    with pytest.raises(ConfigError, match="list at least one feature"):
        load_settings(_write(tmp_path, none))


@pytest.mark.parametrize(
    ("section", "line", "key"),
    [
        ("train", "shrink = 1.5", "train.shrink"),
        ("train", 'strategies = ["cold", "cold"]', "train.strategies"),
        ("train", 'strategies = ["dash"]', "train.strategies.0"),
        ("gate", "bootstrap = 10", "gate.bootstrap"),
        ("model", "name = 'bad name!'", "model.name"),
    ],
)
def test_out_of_range_values_name_their_key(tmp_path: Path, section: str, line: str, key: str) -> None:
    text = MINIMAL_TOML.format(task="binary")
    if section == "model":
        text = text.replace('name = "m"', line)
    else:
        text += f"\n[{section}]\n{line}\n"
    with pytest.raises(ConfigError, match=rf"{key.replace('.', '[.]')}: "):
        load_settings(_write(tmp_path, text))


def test_overrides_are_validated_like_the_file(tmp_path) -> None:
    path = tmp_path / "rewarm.toml"
    path.write_text('[model]\nname = "m"\n[data]\ntarget = "y"\ntask = "binary"\nnumeric = ["x"]\n')
    settings = load_settings(path)
    changed = settings.with_overrides(["warm", "cold"], 3)
    assert changed.train.strategies == ("warm", "cold") and changed.data.window == 3
    assert settings.train.strategies == ("shrink_perturb", "cold")  # the original is untouched
    with pytest.raises(ConfigError, match="train.strategies"):
        settings.with_overrides(["lukewarm"])
    with pytest.raises(ConfigError, match="data.window"):
        settings.with_overrides(window=-1)


@pytest.mark.parametrize("hidden", ["[]", "[-4]", "[16, 0]"])
def test_hidden_widths_must_be_positive(tmp_path, hidden: str) -> None:
    path = tmp_path / "rewarm.toml"
    path.write_text(f'[model]\nname = "m"\nhidden = {hidden}\n[data]\ntarget = "y"\ntask = "binary"\nnumeric = ["x"]\n')
    with pytest.raises(ConfigError, match=r"model\.hidden"):
        load_settings(path)


@pytest.mark.parametrize(
    ("lines", "fragment"),
    [
        ('nullable = ["target_col"]', "data.nullable names ['target_col'], which are not features"),
        ('classes = ["a", "b", "c"]', "a binary task takes exactly two data.classes"),
        ('quarantine = "landing"\nlanding = "landing"', "data.quarantine must not be data.landing"),
        ('extra_columns = "keep"', "data.extra_columns"),
        ("max_duplicate_fraction = 1.5", "data.max_duplicate_fraction"),
        ('history = "landing"\nlanding = "landing"', "data.history must be a folder of its own"),
        ('history = "data/quarantine"', "data.history must be a folder of its own"),
        ("replay_fraction = 0", "data.replay_fraction"),
        ("replay_fraction = 1.5", "data.replay_fraction"),
    ],
)
def test_schema_keys_are_checked(tmp_path: Path, lines: str, fragment: str) -> None:
    text = MINIMAL_TOML.format(task="binary").replace("[data]\n", f"[data]\n{lines}\n")
    with pytest.raises(ConfigError) as info:
        load_settings(_write(tmp_path, text))
    assert fragment in str(info.value)


def test_the_quarantine_is_anchored_next_to_the_landing_folder(tmp_path: Path) -> None:
    default = load_settings(_write(tmp_path, MINIMAL_TOML.format(task="binary"))).data
    assert default.quarantine_location == str(tmp_path / "data" / "quarantine")
    text = MINIMAL_TOML.format(task="binary").replace("[data]\n", '[data]\nquarantine = "held"\n')
    assert load_settings(_write(tmp_path, text)).data.quarantine_location == str(tmp_path / "held")


def test_the_history_defaults_to_the_home_and_is_anchored_like_the_landing(tmp_path: Path) -> None:
    default = load_settings(_write(tmp_path, MINIMAL_TOML.format(task="binary"))).data
    assert default.history_location(tmp_path / "home", "m") == str(tmp_path / "home" / "snapshots" / "m")
    text = MINIMAL_TOML.format(task="binary").replace("[data]\n", '[data]\nhistory = "kept"\n')
    assert load_settings(_write(tmp_path, text)).data.history_location(tmp_path / "home", "m") == str(tmp_path / "kept")
    shared = MINIMAL_TOML.format(task="binary").replace("[data]\n", '[data]\nhistory = "s3://bucket/rewarm/m"\n')
    assert load_settings(_write(tmp_path, shared)).data.history_location(tmp_path, "m") == "s3://bucket/rewarm/m"


def test_every_key_is_described_and_the_generated_page_is_current() -> None:
    """Field descriptions are the one source: docs/configuration.md and the deployment's parameter form."""
    from rewarm.config import Settings
    from rewarm.config_docs import render

    for section, info in Settings.model_fields.items():
        if section == "source":
            continue
        for key, field in info.annotation.model_fields.items():
            assert field.description, f"[{section}] {key} has no description"
    page = Path(__file__).parent.parent / "docs" / "configuration.md"
    assert page.read_text() == render(), "docs/configuration.md is stale: run python -m rewarm.config_docs"


def test_the_deployments_parameter_form_carries_the_descriptions() -> None:
    from prefect.utilities.callables import parameter_schema

    from rewarm.flows.retrain import retrain

    schema = parameter_schema(retrain).model_dump()
    data = schema["definitions"]["DataSection"]["properties"]
    assert "Fewer rows than this" in data["min_rows"]["description"]
    assert "rows repeat an earlier snapshot" in data["max_repeated_fraction"]["description"]


@pytest.mark.parametrize(
    ("section", "line", "key"),
    [("[model]", "numeric_bins = 1", "numeric_bins"), ("[data]", 'validation_split = "last"', "validation_split")],
)
def test_a_value_the_round_cannot_use_is_rejected_at_load(tmp_path: Path, section: str, line: str, key: str) -> None:
    text = MINIMAL_TOML.format(task="binary").replace(f"{section}\n", f"{section}\n{line}\n")
    with pytest.raises(ConfigError, match=key):
        load_settings(_write(tmp_path, text))
