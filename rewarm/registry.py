"""The MLflow model registry: log and register versions, move aliases in a crash-safe order, roll back."""

from __future__ import annotations

import atexit
import hashlib
import json
import logging
import shutil
import sys
import tempfile
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

import mlflow
import torch
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature, infer_signature
from mlflow.types.schema import AnyType, ColSpec, Schema

from rewarm.errors import RegistryError
from rewarm.models import serving
from rewarm.models.network import ArchConfig, TabularMLP
from rewarm.models.preprocess import Preprocessor
from rewarm.requirements import pip_requirements, serving_code

log = logging.getLogger("rewarm.registry")
CHAMPION, CHALLENGER = "champion", "challenger"
TAG = "rewarm."  # prefix of every tag rewarm writes
# Written "no" with the version; set once the round's decision is applied to the aliases (or found stale).
APPLIED_TAG, NOT_APPLIED = TAG + "applied", "no"
ROUND_KEY = "round_key"  # the version tag (without the prefix) that makes registration idempotent
SERVING_PACKAGE = "rewarm_models"  # the name models/ is shipped under inside each logged model


@dataclass
class LoadedModel:
    """A registered version rebuilt as a trainable module with its preprocessing."""

    version: int
    run_id: str | None
    module: TabularMLP
    preprocessor: Preprocessor
    arch: ArchConfig
    tags: dict[str, str]


def load_alias(client: MlflowClient, name: str, alias: str = CHAMPION) -> LoadedModel | None:
    """Rebuild the version ALIAS points at, or None when the model or alias does not exist yet."""
    try:
        version = client.get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST" or "not found" in str(exc).lower():
            return None
        raise
    return load_version(client, name, int(version.version))


def load_version(client: MlflowClient, name: str, version: int) -> LoadedModel:
    """Rebuild registered VERSION as a trainable module (weights loaded with weights_only=True)."""
    found = client.get_model_version(name, str(version))
    with tempfile.TemporaryDirectory() as tmp:  # a copy: a local store would otherwise hand back its own files
        local = Path(mlflow.artifacts.download_artifacts(f"models:/{name}/{version}", dst_path=tmp))
        module, pre, _ = serving.load_files(_find(local, serving.CONFIG_FILE), _find(local, serving.WEIGHTS_FILE))
    return LoadedModel(version, found.run_id, module, pre, module.arch, dict(found.tags))


def _find(root: Path, filename: str) -> Path:
    hits = sorted(root.rglob(filename))
    if not hits:
        raise RegistryError(f"registered model files under {root} lack {filename}; the version is incomplete")
    return hits[0]


def log_model(
    run_id: str, module: TabularMLP, pre: Preprocessor, meta: dict, name: str, tags: dict[str, object] | None = None
) -> int:
    """Log MODULE as a pyfunc model in run RUN_ID, then register it under NAME with TAGS; return the version.

    The version is created with every tag at once, 'complete' and 'applied: no' included, in one registry
    write: there is never a version without its snapshot hash, metrics and decision. Idempotent per run: a
    retry after the version was registered returns that version.
    """
    client, key = MlflowClient(), str((tags or {}).get(ROUND_KEY, ""))
    done = client.search_model_versions(f"name = '{name}' and run_id = '{run_id}'")
    if done:  # a retry of this task: a duplicate left by the first try is reconciled now
        return reconcile(client, name, key) if key else min(int(v.version) for v in done)
    if key and (found := keyed(client, name, key)):
        return int(found[0].version)
    with tempfile.TemporaryDirectory() as tmp:
        config, weights = Path(tmp, serving.CONFIG_FILE), Path(tmp, serving.WEIGHTS_FILE)
        config.write_text(json.dumps({**meta, "arch": module.arch.to_dict(), "preprocessor": pre.to_dict()}))
        torch.save({k: v.detach().cpu() for k, v in module.state_dict().items()}, weights)
        package_dir, model_code = _serving_package()
        with mlflow.start_run(run_id=run_id), warnings.catch_warnings():
            # Integer columns are what snapshots hold; and the signature is given, so no input example is needed.
            warnings.filterwarnings("ignore", message=".*(integer column|input example|type hints).*")
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=str(model_code),  # models from code: nothing is pickled
                artifacts={"config": str(config), "weights": str(weights)},
                code_paths=[str(package_dir), *serving_code(module.arch.architecture)],
                signature=signature(pre),
                pip_requirements=pip_requirements(module.arch.architecture),  # explicit: inference took 4-8 s here
            )
    try:
        version = int(mlflow.register_model(info.model_uri, name, tags=version_tags(tags or {})).version)
    except Exception:
        # A create request whose response was lost may still have made the version: find it by its key.
        if not key or not keyed(client, name, key):
            raise
        version = None
    return reconcile(client, name, key) if key else version


def round_key(model: str, sha256: str, parent: object, nonce: str = "") -> str:
    """The key a round's version is created under: the same model, snapshot content and parent make one version
    however often the request is sent; NONCE (a --force round's own) makes a new one on purpose."""
    return hashlib.sha256(f"{model}\n{sha256}\n{parent}\n{nonce}".encode()).hexdigest()[:32]


def keyed(client: MlflowClient, name: str, key: str) -> list:
    """Versions of NAME created under round KEY, oldest first."""
    found = client.search_model_versions(f"name = '{name}' and tags.`{TAG}{ROUND_KEY}` = '{key}'")
    return sorted(found, key=lambda v: int(v.version))


def reconcile(client: MlflowClient, name: str, key: str) -> int:
    """The one version of round KEY: a duplicate a retried create request made (MLflow's HTTP layer retries
    POSTs inside one call) is deleted, so exactly the first stays. The key names the round (model, content,
    parent, a --force nonce), so a version of any other round is never among them."""
    first, *extra = keyed(client, name, key)
    for duplicate in extra:
        log.warning(
            "%s v%s duplicates v%s (round key %s, a retried request): deleted",
            name,
            duplicate.version,
            first.version,
            key,
        )
        client.delete_model_version(name, duplicate.version)
    return int(first.version)


def version_tags(tags: dict[str, object]) -> dict[str, str]:
    """A new version's tags, each under the rewarm. prefix, with the completeness and applied markers."""
    out = {TAG + key: str(value) for key, value in tags.items()}
    return out | {APPLIED_TAG: NOT_APPLIED, TAG + "complete": "true"}


def mark_applied(client: MlflowClient, name: str, version: int, note: str = "") -> None:
    """The last write of a round: its decision is in the aliases (NOTE says otherwise, when it is stale)."""
    client.set_model_version_tag(name, str(version), APPLIED_TAG, note or _now())


# The logged model's entry point (MLflow's models from code): loading runs it with code/ on the path.
MODEL_CODE = f"""from mlflow.models import set_model

from {SERVING_PACKAGE}.serving import RewarmModel

set_model(RewarmModel())
"""


@cache
def _serving_package() -> tuple[Path, Path]:
    """Copy models/ to a folder named rewarm_models once per process, beside the model's entry point file.

    The logged model carries the package in its code/ folder and the entry point as its model code, so loading
    it needs no rewarm installation and unpickles nothing (MLflow's models from code).
    """
    root = Path(tempfile.mkdtemp(prefix="rewarm-serving-"))
    atexit.register(shutil.rmtree, root, True)  # every process made one and left it (dozens a day in a service)
    package = root / SERVING_PACKAGE
    shutil.copytree(Path(serving.__file__).parent, package, ignore=shutil.ignore_patterns("__pycache__"))
    sys.path.insert(0, str(root))  # MLflow runs the entry point when logging it, to check it sets a model
    code = root / "rewarm_model.py"
    code.write_text(MODEL_CODE)
    return package, code


def signature(pre: Preprocessor) -> ModelSignature:
    """Inputs: every feature column by name, any type (the model coerces numbers, reads categories as text
    and sends unseen or missing ones to the unknown bucket), so raw rows as snapshots or JSON hold them pass.
    Outputs: what decode() returns."""
    import numpy as np

    inputs = Schema([ColSpec(AnyType(), c) for c in [*pre.numeric, *pre.categorical]])
    outputs = np.full((2, pre.n_outputs), 1.0 / pre.n_outputs) if pre.task == "multiclass" else np.zeros(2)
    return ModelSignature(inputs=inputs, outputs=infer_signature(pre.decode(outputs)).inputs)


def tag_version(client: MlflowClient, name: str, version: int, tags: dict[str, object]) -> None:
    """Set version tags, each under the rewarm. prefix; the 'complete' tag goes last."""
    for key, value in tags.items():
        client.set_model_version_tag(name, str(version), TAG + key, str(value))
    client.set_model_version_tag(name, str(version), TAG + "complete", "true")


def is_complete(client: MlflowClient, name: str, version: int) -> bool:
    return client.get_model_version(name, str(version)).tags.get(TAG + "complete") == "true"


def promote(client: MlflowClient, name: str, version: int, reason: str) -> int | None:
    """Point champion at VERSION (which must be complete) and return the version it replaced.

    Order of writes: the lineage tag first, then the alias, then the challenger cleanup; a crash between
    any two leaves champion on a complete version.
    """
    if not is_complete(client, name, version):
        raise RegistryError(f"{name} v{version} is not marked complete; refusing to make it champion")
    previous = current_version(client, name, CHAMPION)
    if previous == version:  # a retry after the alias moved: the lineage tag is already right
        recorded = client.get_model_version(name, str(version)).tags.get(TAG + "previous_champion")
        previous = int(recorded) if recorded else None
    elif previous is not None:
        client.set_model_version_tag(name, str(version), TAG + "previous_champion", str(previous))
    client.set_model_version_tag(name, str(version), TAG + "promoted_at", _now())
    client.set_registered_model_alias(name, CHAMPION, str(version))
    if current_version(client, name, CHALLENGER) is not None:
        client.delete_registered_model_alias(name, CHALLENGER)
    client.set_registered_model_tag(name, TAG + "last_event", f"{_now()} champion v{version}: {reason}")
    return previous


def recover(client: MlflowClient, name: str, version: int) -> tuple[str, int | None]:
    """Apply the decision recorded on VERSION, whose round died before its aliases moved (or between two
    alias moves); return (what was done, the champion it replaced).

    The decision compared VERSION with the champion of its day (its parent_version tag). Applied only while
    the champion is still that version (or VERSION itself: the crash came after the champion moved);
    otherwise someone moved the champion since (a rollback, a later round) and the stale decision is only
    recorded as not applied.
    """
    tags = client.get_model_version(name, str(version)).tags
    parent = tags.get(TAG + "parent_version", "none")
    compared_with = None if parent == "none" else int(parent)
    champion = current_version(client, name, CHAMPION)
    reason = tags.get(TAG + "reason", "")
    if TAG + "rolled_back_at" in tags:  # someone rolled this version back: its decision is not to be redone
        mark_applied(client, name, version, f"{_now()} not applied: rolled back at {tags[TAG + 'rolled_back_at']}")
        return "stale", None
    if champion not in (compared_with, version):
        note = f"{_now()} not applied: champion is v{champion}, not v{compared_with} that this round was scored against"
        mark_applied(client, name, version, note)
        return "stale", None
    previous = None
    if tags.get(TAG + "decision") in ("first_model", "promote"):
        previous = promote(client, name, version, reason)
        done = "promoted"
    else:
        mark_challenger(client, name, version)
        done = "challenger"
    mark_applied(client, name, version)
    return done, previous


def mark_challenger(client: MlflowClient, name: str, version: int) -> None:
    """Point challenger at VERSION: the best candidate of the latest round, not promoted."""
    client.set_registered_model_alias(name, CHALLENGER, str(version))


def rollback(client: MlflowClient, name: str) -> tuple[int, int]:
    """Move champion back to the version it replaced; return (from, to)."""
    current = current_version(client, name, CHAMPION)
    if current is None:
        raise RegistryError(f"model {name!r} has no champion; run `rewarm retrain SNAPSHOT` first")
    tags = client.get_model_version(name, str(current)).tags
    previous = tags.get(TAG + "previous_champion")
    if previous is None:
        raise RegistryError(f"{name} v{current} is the first champion; there is no earlier one to roll back to")
    client.set_model_version_tag(name, str(current), TAG + "rolled_back_at", _now())
    if tags.get(APPLIED_TAG) == NOT_APPLIED:  # a round killed before its last write: rolled back, not to be redone
        mark_applied(client, name, current, f"{_now()} rolled back before its round finished")
    client.set_registered_model_alias(name, CHAMPION, previous)
    client.set_registered_model_tag(name, TAG + "last_event", f"{_now()} rollback v{current} -> v{previous}")
    return current, int(previous)


def current_version(client: MlflowClient, name: str, alias: str) -> int | None:
    """The version ALIAS points at, or None."""
    try:
        return int(client.get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
