"""Preprocessing that travels with the weights: numeric scaling, category vocabularies, label mapping.

Vocabularies, and a multiclass target's classes, only ever grow by appending, so an index a parent model learned
keeps its meaning.
Self-contained (numpy and pandas only): this package is copied into every logged model.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from .labels import as_text, new_labels, sorted_order, texts

UNKNOWN = 0  # embedding row for categories the vocabulary has not seen (and for missing values)
NAN_PATTERN = r"[+-]?nan"  # text that reads as a NaN (a float column written as CSV), not as a word
NULL_TEXT = ["", "NA", "N/A", "n/a", "NULL", "null", "None", "<NA>", "#N/A"]  # "no value" in a CSV's number cell


@dataclass(frozen=True)
class Preprocessor:
    """Fitted state; to_dict()/from_dict() round-trip through JSON."""

    task: str
    target: str
    numeric: dict[str, tuple[float, float]]  # column -> (mean, std)
    categorical: dict[str, tuple[str, ...]]  # column -> vocabulary; index i+1 in the embedding
    classes: tuple = ()  # label values for classification, in output order
    target_scale: tuple[float, float] = (0.0, 1.0)  # regression target (mean, std)
    # How the round that made this model split rows (rewarm/splits.py); 1 for models made before it was recorded.
    split_scheme: int = 1

    # ---- fitting -------------------------------------------------------------------------------
    @classmethod
    def fit(
        cls,
        df: pd.DataFrame,
        task: str,
        target: str,
        numeric: list[str],
        categorical: list[str],
        declared: tuple = (),
    ):
        """Fit scaling, vocabularies and label mapping on training rows. DECLARED (data.classes): a multiclass
        target's labels known up front, the ones DF lacks appended after its own, so the output layer has a place
        for each from the start."""
        stats = {c: _mean_std(df[c]) for c in numeric}
        vocab = {c: tuple(sorted(_categories(df[c]))) for c in categorical}
        classes: tuple = ()
        scale = (0.0, 1.0)
        if task == "regression":
            scale = _mean_std(df[target])
        else:
            classes = new_labels((), df[target])  # one per text: 1 and 1.0 are one label, as the checks read them
            classes = tuple(sorted(classes)) if len({type(c) for c in classes}) == 1 else classes
            if task == "multiclass":
                classes += new_labels(classes, pd.Series(list(declared), dtype=object), keep_order=True)
        return cls(task, target, stats, vocab, classes, scale)

    def evolve(self, df: pd.DataFrame) -> Preprocessor:
        """Return a copy whose vocabularies gain the new categories of DF, and a multiclass target its new labels,
        appended at the end."""
        vocab = {}
        for col, known in self.categorical.items():
            seen = set(known)
            vocab[col] = known + tuple(sorted(v for v in _categories(df[col]) if v not in seen))
        grown = replace(self, categorical=vocab)
        return grown.with_labels(df[self.target]) if self.target in df else grown

    def scored_as(self, round_pre: Preprocessor) -> Preprocessor:
        """This model's preprocessing with the classes of ROUND_PRE (its own, with any appended since), so that its
        outputs are scored against the round's labels."""
        return replace(self, classes=round_pre.classes) if self.task == "multiclass" else self

    def with_labels(self, values: pd.Series) -> Preprocessor:
        """A multiclass target's classes with the new labels of VALUES appended (sorted); any other task unchanged."""
        if self.task != "multiclass":
            return self
        return replace(self, classes=self.classes + new_labels(self.classes, values))

    # ---- applying ------------------------------------------------------------------------------
    def features(self, df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Return (x_num float32 (N, n_numeric), x_cat int64 (N, n_categorical)) for raw rows."""
        n = len(df)
        x_num = np.empty((n, len(self.numeric)), dtype=np.float32)
        for j, (col, (mean, std)) in enumerate(self.numeric.items()):
            x_num[:, j] = (numbers(df[col]) - mean) / std
        # Training rows never hold missing numbers (snapshots are validated); at serving time a missing number
        # takes the training mean (0 after scaling) rather than poisoning the output (text that is not a number
        # is refused before this: unreadable_numbers).
        np.nan_to_num(x_num, copy=False, nan=0.0)
        x_cat = np.empty((n, len(self.categorical)), dtype=np.int64)
        for j, (col, vocab) in enumerate(self.categorical.items()):
            codes = pd.Categorical(as_text(df[col]), categories=list(vocab)).codes
            x_cat[:, j] = codes.astype(np.int64) + 1  # -1 (unknown or missing) -> UNKNOWN bucket 0
        return x_num, x_cat

    def unreadable_numbers(self, df: pd.DataFrame) -> dict[str, tuple[int, list[str]]]:
        """Per numeric column of DF holding values a snapshot may not hold there, text that is not a number or an
        infinite number (a word a CSV writes for a missing value, NULL_TEXT, is missing, as in a snapshot):
        (rows, up to 3 distinct such values, as text cut to 40 characters)."""
        out = {}
        for col in self.numeric:
            values = df[col]
            parsed = numbers(values)
            bad = not_numbers(values, parsed)
            if bad.any():  # the words for a missing value are missing, not text (only where text was found)
                bad[bad] = ~values[bad].astype("string").str.strip().isin(NULL_TEXT).to_numpy(bool, na_value=False)
            bad |= np.isinf(parsed)
            if bad.any():
                shown = dict.fromkeys(str(v)[:40] for v in values[bad])  # any value, a list or a dict too
                out[col] = (int(bad.sum()), list(shown)[:3])
        return out

    def count_unknown(self, df: pd.DataFrame) -> dict[str, int]:
        """Count, per categorical column, the rows that fall into the unknown bucket."""
        _, x_cat = self.features(df)
        return {col: int((x_cat[:, j] == UNKNOWN).sum()) for j, col in enumerate(self.categorical)}

    def unseen(self, df: pd.DataFrame) -> dict[str, tuple[int, int]]:
        """Per categorical column: (rows, distinct values) of DF with a category this vocabulary lacks; such
        rows go to the unknown bucket (missing values are not counted)."""
        out = {}
        for col, vocab in self.categorical.items():
            text = as_text(df[col])
            new = text.notna() & ~text.isin(set(vocab))
            out[col] = (int(new.sum()), int(text[new].nunique()))
        return out

    def labels(self, y: pd.Series) -> np.ndarray:
        """Encode target values: class indices (int64) or a standardised float32 regression target."""
        if self.task == "regression":
            mean, std = self.target_scale
            return ((y.to_numpy(np.float64) - mean) / std).astype(np.float32)
        # Compared as text, as the snapshot checks compare them: 1, 1.0 and "1" are one label. -1: not a class.
        codes = pd.Index(texts(self.classes)).get_indexer(as_text(y).to_numpy(object))
        codes = codes.astype(np.int64)
        if (codes < 0).any():
            unseen = sorted({str(v) for v in y[codes < 0].unique()})
            raise ValueError(f"target values this model has no output for: {unseen}")
        return codes

    def metric_targets(self, y: pd.Series) -> np.ndarray:
        """Targets as metrics compare them: class indices, or regression values in the target's own units."""
        return y.to_numpy(np.float64) if self.task == "regression" else self.labels(y)

    def metric_outputs(self, outputs: np.ndarray) -> np.ndarray:
        """Model outputs on the same scale as metric_targets (regression outputs are un-standardised). A model made
        before classes were appended (scored with the round's classes: scored_as) gives them probability 0."""
        if self.task != "regression":
            missing = len(self.classes) - outputs.shape[1] if self.task == "multiclass" else 0
            return np.pad(outputs, ((0, 0), (0, missing))) if missing > 0 else outputs
        mean, std = self.target_scale
        return outputs * std + mean

    def decode(self, outputs: np.ndarray) -> pd.DataFrame:
        """Turn model outputs into a prediction frame: labels and probabilities, or regression values."""
        if self.task == "regression":
            return pd.DataFrame({"prediction": self.metric_outputs(outputs.reshape(-1))})
        if self.task == "binary":
            p = outputs.reshape(-1)
            return pd.DataFrame(
                {
                    "prediction": np.asarray(self.classes, dtype=object)[(p >= 0.5).astype(int)],
                    "probability": p,
                }
            )
        # Probability columns in sorted label order, as scikit-learn's predict_proba gives them, whatever order the
        # classes were appended in (the outputs keep theirs).
        order = sorted_order(self.classes)
        frame = pd.DataFrame(outputs[:, order], columns=[f"probability_{self.classes[i]}" for i in order])
        frame.insert(0, "prediction", np.asarray(self.classes, dtype=object)[outputs.argmax(axis=1)])
        return frame

    # ---- serialising ---------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "task": self.task,
            "target": self.target,
            "numeric": {c: list(v) for c, v in self.numeric.items()},
            "categorical": {c: list(v) for c, v in self.categorical.items()},
            "classes": list(self.classes),
            "target_scale": list(self.target_scale),
            "split_scheme": self.split_scheme,
        }

    @classmethod
    def from_dict(cls, raw: dict) -> Preprocessor:
        return cls(
            task=raw["task"],
            target=raw["target"],
            numeric={c: (float(m), float(s)) for c, (m, s) in raw["numeric"].items()},
            categorical={c: tuple(v) for c, v in raw["categorical"].items()},
            classes=tuple(raw["classes"]),
            target_scale=tuple(raw["target_scale"]),
            split_scheme=int(raw.get("split_scheme", 1)),
        )

    @property
    def cardinalities(self) -> tuple[int, ...]:
        return tuple(len(v) + 1 for v in self.categorical.values())

    @property
    def n_outputs(self) -> int:
        return len(self.classes) if self.task == "multiclass" else 1


def numbers(values: pd.Series) -> np.ndarray:
    """A numeric feature as float64: numbers as they are, booleans as 0/1, timestamps (or text that reads as one,
    such as ISO 8601 in a CSV or JSON request) as seconds since 1970 UTC; anything else NaN."""
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        return _seconds(values)
    if pd.api.types.is_bool_dtype(values.dtype) or pd.api.types.is_numeric_dtype(values.dtype):
        return values.to_numpy(np.float64, na_value=np.nan)
    out = pd.to_numeric(values.astype(object), errors="coerce").to_numpy(np.float64, copy=True)
    words = np.isnan(out) & values.notna().to_numpy()
    if words.any():  # not numbers: perhaps dates (a NaN or a word stays NaN)
        text = values[words].astype(str)
        out[words] = _seconds(pd.to_datetime(text, errors="coerce", utc=True, format="ISO8601"))
    return out


def not_numbers(values: pd.Series, parsed: np.ndarray | None = None) -> np.ndarray:
    """True where a present value is not a number by numbers()'s reading (text such as 'n/a' or '12,5'); the text
    'nan' is a NaN, not text, and a missing value is not counted. PARSED: numbers(values), when already read."""
    if pd.api.types.is_bool_dtype(values.dtype) or pd.api.types.is_numeric_dtype(values.dtype):
        return np.zeros(len(values), dtype=bool)
    unread = values.notna().to_numpy() & np.isnan(numbers(values) if parsed is None else parsed)
    if unread.any():
        text = values[unread].astype("string").str.strip()
        unread[unread] = ~text.str.fullmatch(NAN_PATTERN, case=False).to_numpy(bool, na_value=False)
    return unread


def _seconds(stamps: pd.Series) -> np.ndarray:
    stamps = pd.Series(pd.to_datetime(stamps, utc=True))  # naive stamps are taken as UTC
    since = (stamps - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)  # whatever the unit (ns, us, s)
    return since.to_numpy(np.float64, na_value=np.nan)


def _mean_std(values: pd.Series) -> tuple[float, float]:
    x = numbers(values)
    std = float(np.nanstd(x))
    return float(np.nanmean(x)), std if std > 1e-12 else 1.0  # a constant column scales by 1, not 0


def _categories(values: pd.Series) -> list[str]:
    return [str(v) for v in pd.unique(as_text(values).dropna())]
