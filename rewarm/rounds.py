"""One retrain round's data: training history, validation and holdout rows, built once as tensors."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import torch
from torch import nn

from rewarm import metrics, splits
from rewarm.config import DataSection, Settings
from rewarm.errors import SnapshotRejected
from rewarm.models.network import BINNED, NUMERIC_EMBEDDING, ArchConfig, fit_bins
from rewarm.models.preprocess import Preprocessor
from rewarm.racing import RaceScore
from rewarm.snapshots import SnapshotInfo, load
from rewarm.training import Tensors, predict


@dataclass
class RoundData:
    """Everything every candidate of one round trains and is scored on; never pickled by Prefect."""

    snapshot: SnapshotInfo
    used: list[SnapshotInfo]  # snapshots the training rows come from, oldest first
    preprocessor: Preprocessor
    arch: ArchConfig
    train_frame: pd.DataFrame  # raw training rows (validation included), for MLflow's dataset record
    holdout_frame: pd.DataFrame  # raw holdout rows, scored by every model through its own preprocessing
    train: Tensors
    val: Tensors
    holdout: Tensors
    y_holdout: np.ndarray  # holdout targets as the metrics see them: class indices, or values in target units
    split_scheme: int = splits.CURRENT  # how this round's rows were split (rewarm/splits.py)
    warm_train: Tensors | None = None  # what warm-started candidates train on, when smaller than train
    race_val: Tensors | None = None  # the newest snapshot's validation rows, which candidates race on
    newest_rows: int = 0  # the last rows of train_frame, which come from the newest snapshot
    val_rows: np.ndarray | None = None  # which rows of train_frame are the validation rows

    def train_for(self, warm_started: bool) -> Tensors:
        """The training rows of a candidate: warm-started ones take the newest snapshot plus a replay sample of
        history (train.warm_replay_fraction). Every candidate early-stops on the same validation rows and races
        on the newest snapshot's share of them (race_val): the holdout the gate scores is drawn from it too."""
        return self.warm_train if warm_started and self.warm_train is not None else self.train

    def race_scorer(self, metric: str) -> RaceScore | None:
        """A model's METRIC (the gate's) on the rows candidates race on, lower is better (negated where higher is
        better), so that the race ranks candidates as the gate will: a validation loss can rank them otherwise
        (a warm-started model still calibrated to last month trails on log loss while leading on AUC). None when
        the race rows cannot give the metric (one class for roc_auc): the race then compares the loss."""
        pre, newest = self.preprocessor, np.arange(len(self.train_frame)) >= len(self.train_frame) - self.newest_rows
        rows = self.val if self.race_val is None else self.race_val
        chosen = self.val_rows if self.race_val is None else self.val_rows & newest
        y = pre.metric_targets(self.train_frame[chosen][pre.target])
        if metric == "roc_auc" and len(np.unique(y)) < 2:  # no AUC on one class: the race reads the loss
            return None

        def score(model: nn.Module) -> float:
            with torch.no_grad():
                outputs = pre.metric_outputs(predict(model, rows.x_num, rows.x_cat, pre.task))
            return metrics.METRICS[metric](y, outputs)

        return RaceScore(metric, -1.0 if metrics.HIGHER_IS_BETTER[metric] else 1.0, score)

    def y_fit(self) -> np.ndarray:
        """The training rows' targets (validation included) as the metrics see them: what a constant prediction,
        the model that learned nothing from the features, is fitted on."""
        return self.preprocessor.metric_targets(self.train_frame[self.preprocessor.target])

    @property
    def rows(self) -> dict[str, int]:
        return {"train": len(self.train), "validation": len(self.val), "holdout": len(self.holdout)}

    def unknown_categories(self) -> dict[str, int]:
        """Holdout rows per categorical column whose category the models never trained on."""
        return self.preprocessor.count_unknown(self.holdout_frame)


def window(history: list[SnapshotInfo], current: SnapshotInfo, size: int) -> list[SnapshotInfo]:
    """The snapshots to train on, oldest first, ending with CURRENT; SIZE 0 means all of them."""
    earlier = [i for i in history if i.sequence < current.sequence]
    keep = earlier if size == 0 else earlier[max(0, len(earlier) - (size - 1)) :] if size > 1 else []
    return [*keep, current]


def _replay_keep(frame: pd.DataFrame, fraction: float, round_: int, scheme: int) -> np.ndarray:
    """The rows of an earlier snapshot this round trains on (data.replay_fraction)."""
    return splits.replay_mask(frame, fraction, round_, scheme) if fraction < 1.0 else np.ones(len(frame), dtype=bool)


def split_scheme(spec: DataSection, current: SnapshotInfo, parent: Preprocessor | None) -> int:
    """The split scheme of this round: a snapshot already kept is split as its first round split it; otherwise
    data.split_scheme when set (a migration), else the lineage's (the parent's), else the current one."""
    if current.split_scheme is not None:
        return current.split_scheme
    if spec.split_scheme != "auto":
        return spec.split_scheme
    return parent.split_scheme if parent is not None else splits.CURRENT


def prepare(
    settings: Settings,
    current: SnapshotInfo,
    current_frame: pd.DataFrame,
    history: list[SnapshotInfo],
    parent: tuple[Preprocessor, ArchConfig] | None,
    device: torch.device,
) -> RoundData:
    """Split the newest snapshot, gather the history, fit or grow the preprocessing, build tensors."""
    spec = settings.data
    columns = [spec.target, *spec.numeric, *spec.categorical]
    scheme = split_scheme(spec, current, parent[0] if parent else None)
    used = window(history, current, spec.window)
    earlier = [load(i, spec)[columns] for i in used[:-1]]
    kept = [_replay_keep(f, spec.replay_fraction, current.sequence, scheme) for f in earlier]  # rows replayed, each
    frames = [f if k.all() else f[k] for f, k in zip(earlier, kept, strict=True)]
    newest = current_frame[columns].reset_index(drop=True)
    stratify = spec.target if spec.task != "regression" else None
    held = splits.holdout_mask(newest, spec.holdout_fraction, spec.holdout_split, scheme, stratify)
    train_frame = pd.concat([*frames, newest[~held]], ignore_index=True)
    holdout_frame = newest[held].reset_index(drop=True)
    pre, arch = preprocessing(settings, train_frame, parent, holdout_frame[spec.target])
    pre = replace(pre, split_scheme=scheme)
    newest_train = int((~held).sum())
    in_train = np.concatenate([*kept, np.ones(newest_train, dtype=bool)])  # each snapshot's rows, kept or not
    val = validation_rows(spec, train_frame, [*(len(f) for f in earlier), newest_train], in_train, scheme)
    older = np.arange(len(train_frame)) < len(train_frame) - newest_train  # rows from earlier snapshots
    _check_sizes(current, int((~val).sum()), int(val.sum()), len(holdout_frame), spec)
    train, val_set = _tensors(pre, train_frame[~val], device), _tensors(pre, train_frame[val], device)
    y_holdout = pre.metric_targets(holdout_frame[spec.target])
    # A multiclass AUC averages the classes present. A later round's holdout of one class gives no AUC: the gate
    # keeps the champion (rewarm.gate.decide) and the rows join the history; a first model needs a score.
    if settings.metric == "roc_auc" and len(np.unique(y_holdout)) < 2 and parent is None:
        present = np.unique(y_holdout).astype(int).tolist()
        rest = sorted(set(np.unique(pre.metric_targets(newest[spec.target])).astype(int).tolist()) - set(present))
        absent = (
            f": {[str(pre.classes[i]) for i in rest]} too few distinct rows in the snapshot to hold out" if rest else ""
        )
        raise SnapshotRejected(
            f"{current.source}: its {len(holdout_frame)} holdout rows hold one class of target {spec.target!r} "
            f"({[str(pre.classes[i]) for i in present]}), and roc_auc needs two{absent}; land a larger snapshot or "
            "set gate.metric to log_loss or accuracy",
            kind="holdout_classes",
        )
    return RoundData(
        snapshot=current,
        used=used,
        preprocessor=pre,
        arch=arch,
        train_frame=train_frame,
        holdout_frame=holdout_frame,
        train=train,
        val=val_set,
        holdout=_tensors(pre, holdout_frame, device),
        y_holdout=y_holdout,
        split_scheme=scheme,
        warm_train=_warm_rows(train, train_frame, older, ~val, settings.train.warm_replay_fraction, current, scheme),
        race_val=_subset(val_set, ~older[val]) if (~older[val]).sum() >= MIN_RACE_ROWS and older.any() else None,
        newest_rows=int((~older).sum()),
        val_rows=val,
    )


def validation_rows(
    spec: DataSection, train_frame: pd.DataFrame, sizes: list[int], in_train: np.ndarray, scheme: int
) -> np.ndarray:
    """The rows of TRAIN_FRAME that early stopping and racing watch (data.validation_split; 'auto' follows
    holdout_split). SIZES: each snapshot's training rows, oldest first, of which IN_TRAIN marks those replayed into
    TRAIN_FRAME: a snapshot's tail is taken over all of its rows, so that it stays put whatever the round replays."""
    how = spec.validation_split if spec.validation_split != "auto" else spec.holdout_split
    if how == "tail":
        return splits.tail_validation_mask(sizes, spec.validation_fraction)[in_train]
    return splits.validation_mask(train_frame, spec.validation_fraction, scheme)


MIN_RACE_ROWS = 200  # fewer newest validation rows than this: candidates race on every validation row


def _subset(data: Tensors, keep: np.ndarray) -> Tensors:
    idx = torch.as_tensor(np.flatnonzero(keep), device=data.y.device)
    return Tensors(data.x_num[idx], data.x_cat[idx], data.y[idx])


def _warm_rows(
    train: Tensors,
    frame: pd.DataFrame,
    older: np.ndarray,
    in_train: np.ndarray,
    fraction: float,
    current: SnapshotInfo,
    scheme: int,
) -> Tensors | None:
    """TRAIN's rows that warm-started candidates see: every training row of the newest snapshot and FRACTION of
    the earlier snapshots' (a different sample each round); None when that is all of them."""
    if fraction >= 1.0 or not older.any():
        return None
    keep = ~older
    keep[older] = splits.warm_replay_mask(frame[older], fraction, current.sequence, scheme)
    return _subset(train, keep[in_train])


def preprocessing(
    settings: Settings,
    train_frame: pd.DataFrame,
    parent: tuple[Preprocessor, ArchConfig] | None,
    held_labels: pd.Series | None = None,
) -> tuple[Preprocessor, ArchConfig]:
    """Fit preprocessing on the first round; afterwards grow the parent's, keeping its architecture widths. A
    multiclass label only HELD_LABELS (the holdout's targets) hold gets its output too, so it can be scored."""
    spec = settings.data
    if parent is None:
        _check_fittable(train_frame, spec)
        columns = list(spec.numeric), list(spec.categorical)
        pre = Preprocessor.fit(train_frame, spec.task, spec.target, *columns, declared=spec.classes)
        _check_classes(pre, spec.task, spec.target, held_labels)
        hidden, emb, kind = settings.model.hidden, settings.model.embedding_dim, settings.model.architecture
        options, k = dict(settings.model.options), settings.model.ensemble_size if kind == "tabm" else 0
        bins = ()
        if kind in BINNED and pre.numeric:  # fitted once, then kept like the scaler
            bins = fit_bins(torch.from_numpy(pre.features(train_frame)[0]), settings.model.numeric_bins)
        numeric = NUMERIC_EMBEDDING if kind in ("mlp_periodic", *BINNED) else 0
    else:
        pre = parent[0].evolve(train_frame)
        hidden, emb, kind, options = (
            parent[1].hidden,
            parent[1].embedding_dim,
            parent[1].architecture,
            parent[1].options,
        )
        k, bins = parent[1].k, parent[1].bins  # fixed at bootstrap, like the scaler: a fresh copy's are the parent's
        numeric = parent[1].numeric_embedding
        if list(pre.numeric) != list(spec.numeric) or list(pre.categorical) != list(spec.categorical):
            raise SnapshotRejected(
                f"the champion was trained on numeric={list(pre.numeric)} categorical={list(pre.categorical)} "
                f"but {settings.source} lists numeric={list(spec.numeric)} categorical={list(spec.categorical)}; "
                "restore those columns or register the new feature set under a new [model] name"
            )
    if held_labels is not None:
        pre = pre.with_labels(held_labels)
    arch = ArchConfig(
        len(pre.numeric), pre.cardinalities, emb, tuple(hidden), pre.n_outputs, kind, numeric, options, k, bins
    )
    return pre, arch


def _check_fittable(train_frame: pd.DataFrame, spec: DataSection) -> None:
    """A number column with no value in the first model's training rows (listed under data.nullable, and null in
    all of them) has no mean or spread to be scaled by, and the scaling is fixed with the first model."""
    empty = [c for c in spec.numeric if train_frame[c].isna().all()]
    if empty:
        raise SnapshotRejected(
            f"numeric column(s) {empty} hold no value in any of the {len(train_frame)} training rows of the first "
            "model, so their scaling, fitted once with the first model, cannot be fitted: leave them out of "
            "data.numeric, or start the model from a snapshot in which they have values",
            kind="empty_column",
        )


def new_classes(parent: Preprocessor | None, pre: Preprocessor, frame: pd.DataFrame) -> dict[str, int]:
    """Rows of FRAME (the new snapshot) per class label of PRE that PARENT's output layer lacks (appended this
    round: Preprocessor.evolve)."""
    known = len(parent.classes) if parent is not None else len(pre.classes)
    if len(pre.classes) <= known:
        return {}
    codes = pre.labels(frame[pre.target])
    return {str(c): int((codes == known + i).sum()) for i, c in enumerate(pre.classes[known:])}


def _check_classes(pre: Preprocessor, task: str, target: str, held: pd.Series | None = None) -> None:
    """The first model's training rows must hold two classes; where the holdout (HELD, its labels) took the others
    (holdout_split = "tail" on a file sorted by its label), say so."""
    if task == "regression" or len(pre.classes) == 2 or (task == "multiclass" and len(pre.classes) > 2):
        return
    took = sorted({str(v) for v in held.dropna()} - {str(c) for c in pre.classes}) if held is not None else []
    where = (
        f"; the holdout took {took}: with holdout_split = 'tail' it is the snapshot's last rows, so a file sorted by "
        "its label holds one class out whole: land it in time order, or use holdout_split = 'hash'"
    )
    needs = {"binary": "exactly 2 classes", "multiclass": "2 classes or more"}[task]
    raise SnapshotRejected(
        f"{task} target {target!r} needs {needs} in the first model's training rows, found {list(pre.classes)}"
        + (where if took and len(pre.classes) < 2 else "")
    )


def _check_sizes(info: SnapshotInfo, train: int, val: int, holdout: int, spec: DataSection) -> None:
    if min(train, val, holdout) == 0:
        shares = (("validation", spec.validation_fraction, val), ("holdout", spec.holdout_fraction, holdout))
        fix = " and ".join(f"raise data.{part}_fraction ({share})" for part, share, n in shares if not n)
        raise SnapshotRejected(
            f"{info.source}: split into train={train}, validation={val}, holdout={holdout} rows; "
            f"every part needs rows: land a larger snapshot, or {fix or 'lower the split fractions'}"
        )


def _tensors(pre: Preprocessor, frame: pd.DataFrame, device: torch.device) -> Tensors:
    x_num, x_cat = pre.features(frame)
    return Tensors.build(x_num, x_cat, pre.labels(frame[pre.target]), device)
