"""Where rewarm keeps its state: the home folder, the MLflow store and the admitted snapshots."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

HOME_ENV = "REWARM_HOME"
HTTP_RETRIES = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "4", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1"}
DEFAULT_HOME = ".rewarm"


@dataclass(frozen=True)
class Store:
    """Paths and URIs of one rewarm home."""

    home: Path
    tracking_uri: str
    local: bool = True  # the default SQLite store under the home, not one named by MLFLOW_TRACKING_URI

    @property
    def artifacts(self) -> Path:
        return self.home / "artifacts"


def resolve_store() -> Store:
    """Return the store named by REWARM_HOME / MLFLOW_TRACKING_URI, defaulting to ./.rewarm."""
    home = Path(os.environ.get(HOME_ENV) or DEFAULT_HOME).resolve()
    uri = _users("MLFLOW_TRACKING_URI")
    if uri:
        return Store(home=home, tracking_uri=uri, local=False)
    return Store(home=home, tracking_uri=f"sqlite:///{home / 'mlflow.db'}")


# mlflow.set_tracking_uri/set_registry_uri also write MLFLOW_TRACKING_URI/MLFLOW_REGISTRY_URI into the
# environment; what rewarm put there itself must not later pass for a user's own setting.
_WRITTEN: dict[str, set[str]] = {"MLFLOW_TRACKING_URI": set(), "MLFLOW_REGISTRY_URI": set()}


def _users(variable: str) -> str | None:
    """The environment variable's value if the user set it, None if unset or set by rewarm itself."""
    value = os.environ.get(variable)
    return None if not value or value in _WRITTEN[variable] else value


def open_store(store: Store) -> Store:
    """Create the home folder and point MLflow at the store (every call: a process may switch stores)."""
    import mlflow

    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    if store.tracking_uri.startswith(("http://", "https://")):
        # MLflow's own default retries one request for about 4 minutes (7 retries, backoff factor 2); with
        # the registry tasks' own 3 retries an outage would hold a retrain for a quarter of an hour. 4 retries
        # at factor 1 wait about 15 s per request; a user's setting of either variable wins.
        for variable, value in HTTP_RETRIES.items():
            os.environ.setdefault(variable, value)
    store.home.mkdir(parents=True, exist_ok=True)
    if store.local:
        _WRITTEN["MLFLOW_TRACKING_URI"].add(store.tracking_uri)
    mlflow.set_tracking_uri(store.tracking_uri)
    registry = _users("MLFLOW_REGISTRY_URI")
    if registry is None:
        registry = store.tracking_uri
        _WRITTEN["MLFLOW_REGISTRY_URI"].add(registry)
    mlflow.set_registry_uri(registry)
    _migrate(store.tracking_uri)
    return store


@cache
def _migrate(tracking_uri: str) -> None:
    # Once per store and process: opening a SQLite store runs its schema migrations, which cost seconds.
    import mlflow

    mlflow.MlflowClient(tracking_uri).search_experiments(max_results=1)


# MLflow 3's UI shows an experiment of this kind as training runs, not as a GenAI app's traces and evaluations.
KIND, MODEL_TRAINING = "mlflow.experimentKind", "custom_model_development"


def experiment_id(store: Store, name: str) -> str:
    """Return the id of experiment NAME, creating it; unless a tracking server owns them, artifacts go under
    the home folder (MLflow's default would be ./mlruns in whatever folder the command ran from)."""
    import mlflow

    client = mlflow.MlflowClient()
    found = client.get_experiment_by_name(name)
    if found is not None:
        if KIND not in found.tags:  # made before rewarm said what kind it is
            client.set_experiment_tag(found.experiment_id, KIND, MODEL_TRAINING)
        return found.experiment_id
    tags = {KIND: MODEL_TRAINING}
    if store.tracking_uri.split(":", 1)[0] in ("http", "https", "databricks"):
        return client.create_experiment(name, tags=tags)  # a tracking server decides where its artifacts live
    return client.create_experiment(name, artifact_location=(store.artifacts / name).as_uri(), tags=tags)
