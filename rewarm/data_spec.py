"""The [data] section of rewarm.toml: what a snapshot holds, and how it is checked and split."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from rewarm.locations import OWNER_FILE, canonical

Task = Literal["binary", "multiclass", "regression"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def sections(root: type[BaseModel]) -> dict[str, type[BaseModel]]:
    """ROOT's fields that are sections of their own (a [table] of rewarm.toml), by name."""
    found = {name: field.annotation for name, field in root.model_fields.items()}
    return {name: kind for name, kind in found.items() if isinstance(kind, type) and issubclass(kind, BaseModel)}


def closest_key(error: dict, root: type[BaseModel]) -> str:
    """For pydantic's ERROR on a key ROOT's section does not have (a typo such as data.nulable), the closest key
    that section has ('data.nullable'); '' for any other error, or when no key is close."""
    if error["type"] != "extra_forbidden":
        return ""
    *parents, key = (str(p) for p in error["loc"])
    section: type[BaseModel] | None = root
    for name in parents:
        section = sections(section).get(name)
        if section is None:
            return ""
    close = difflib.get_close_matches(key, [k for k in section.model_fields if k != "source"], n=1)
    return ".".join([*parents, close[0]]) if close else ""


class DataSection(_Section):
    landing: str = Field(
        default="data/landing",
        description=(
            "Where snapshots arrive: a folder (relative to rewarm.toml) or an fsspec URL such as "
            "s3://bucket/landing; `rewarm serve` watches it."
        ),
    )
    target: str = Field(description=("The column to predict."))
    task: Task = Field(description=("binary, multiclass or regression."))
    numeric: tuple[str, ...] = Field(
        default=(),
        description=("Numeric feature columns: numbers, booleans (0/1) and timestamps (seconds since 1970 UTC)."),
    )
    categorical: tuple[str, ...] = Field(
        default=(),
        description=(
            "Categorical feature columns (text, integer codes, booleans), each embedded; a new category is "
            "appended to the vocabulary, never re-coded."
        ),
    )
    window: int = Field(
        default=0,
        ge=0,
        description=("0 keeps every admitted snapshot (cumulative); N trains on the last N snapshots only."),
    )
    replay_fraction: float = Field(
        default=1.0,
        gt=0.0,
        le=1.0,
        description=(
            "The share of each earlier snapshot's rows a round trains on: 1 all of them; 0.25 a quarter, a "
            "different quarter each round (chosen by row content and round number), so cost grows at a "
            "quarter of the rate."
        ),
    )
    holdout_fraction: float = Field(
        default=0.2,
        gt=0.0,
        lt=0.9,
        description=(
            "A fifth of each new snapshot is held out: ~5k rows for a month of flights, enough for a tight CI."
        ),
    )
    holdout_split: Literal["hash", "tail"] = Field(
        default="hash",
        description=(
            "'hash': rows chosen by a hash of their content (any row order); 'tail': the snapshot's last "
            "rows, for time-ordered snapshots, so candidates are scored on rows later than any they trained "
            "on."
        ),
    )
    split_scheme: Literal["auto", 1, 2] = Field(
        default="auto",
        description=(
            "How rows are assigned to holdout, validation and replay (rewarm/splits.py). 'auto': a new model "
            "uses the current scheme (2) and a model keeps its lineage's; 2 moves a lineage made before "
            "scheme 2 onto it from its next new snapshot (a snapshot already trained on keeps its split, so "
            "no round trains on its holdout)."
        ),
    )
    validation_fraction: float = Field(
        default=0.1,
        gt=0.0,
        lt=0.9,
        description=("Early-stopping rows, drawn from the training rows."),
    )
    validation_split: Literal["auto", "hash", "tail"] = Field(
        default="auto",
        description=(
            "Which training rows early stopping and racing watch. 'hash': validation_fraction of them by a hash "
            "of their content; 'tail': the last validation_fraction of each snapshot's training rows, so that a "
            "model is judged on rows later than the rest of its snapshot, as the holdout and the next snapshot "
            "judge it (on time-ordered data a hashed sample shares its days with the training rows, and "
            "rewards memorising them: docs/benchmarks.md). 'auto': tail when holdout_split is tail, else hash."
        ),
    )
    min_rows: int = Field(
        default=50,
        ge=10,
        description=("Fewer rows than this cannot give a holdout, a validation split and a training set."),
    )
    nullable: tuple[str, ...] = Field(
        default=(),
        description=(
            "Feature columns that may hold nulls: a missing number takes the training mean, a missing "
            "category the unknown bucket. Any other null (and every NaN or infinite number) rejects the "
            "snapshot."
        ),
    )
    encoding: str = Field(
        default="utf-8",
        description=(
            "The text encoding of CSV snapshots (Parquet has its own). A file that is not in it is rejected, "
            "naming the line; Excel's plain 'CSV' on Windows writes 'cp1252' (its 'CSV UTF-8' writes UTF-8, with "
            "a byte-order mark, which is fine)."
        ),
    )
    separator: Literal[",", ";", "|", "\t"] = Field(
        default=",",
        description=(
            "The field separator of .csv snapshots (a .tsv is always read with tabs): ',' or ';', which Excel "
            "writes where the decimal mark is a comma (most of Europe; set data.decimal too), '|' or a tab. "
            "`rewarm predict` writes a .csv the same way."
        ),
    )
    decimal: Literal[".", ","] = Field(
        default=".",
        description=(
            "The decimal mark of numbers in CSV snapshots: '.' or ',' (12,5), as Excel writes them in most of "
            "Europe, with data.separator ';'. Thousands separators are not read: a number must be written whole "
            "(1234,5, not 1.234,5)."
        ),
    )
    unlabelled: Literal["reject", "drop"] = Field(
        default="reject",
        description=(
            "Rows whose target is missing (an empty cell, NA, a null or a NaN): 'reject' the snapshot, or "
            "'drop' those rows and train and score on the labelled ones (labels that arrive later, survey "
            "non-answers). Dropped rows are counted in the log and in the round's MLflow run "
            "(unlabelled_rows); a snapshot left with no labelled row is still rejected. 'reject' by default: "
            "labels lost by a broken export should stop the stream, not thin it quietly."
        ),
    )
    extra_columns: Literal["reject", "ignore"] = Field(
        default="reject",
        description=(
            "Columns in a snapshot that the spec does not name: 'reject' the snapshot (a renamed or misplaced"
            " column shows up here) or 'ignore' them (wide tables from which the spec picks its features)."
        ),
    )
    max_duplicate_fraction: float = Field(
        default=1.0,
        ge=0.0,
        le=1.0,
        description=(
            "Real data repeats rows (two flights on one route in one hour; in low-cardinality categorical "
            "data nearly every row), so plain repeats are not limited by default (1.0). Set a lower share to "
            "reject a snapshot with more repeated rows than that. Copying accidents are caught whatever this "
            "is (rewarm/repeats.py)."
        ),
    )
    max_repeated_fraction: float = Field(
        default=0.5,
        ge=0.0,
        le=1.0,
        description=(
            "A snapshot whose rows repeat an earlier snapshot's, in the same order, above this share is "
            "rejected as landed twice over (a re-export, a cumulative dump); natural repeats never come in "
            "long ordered runs."
        ),
    )
    classes: tuple[str | int, ...] = Field(
        default=(),
        description=(
            "The labels a classification target may take, and so the output layer's width from the first model "
            "(a label the first snapshot lacks still has its output; a label outside them rejects the snapshot). "
            "Empty: learned from the data; a multiclass target's new labels are appended as they arrive, and the "
            "output layer grows (a binary target takes two). In a CSV a listed label spelled like a missing value "
            "('None', 'NA') is read as that label."
        ),
    )
    quarantine: str = Field(
        default="",
        description=(
            "Where rejected snapshots are moved, each beside a JSON file saying why; empty: a folder named "
            "'quarantine' next to data.landing."
        ),
    )
    history: str = Field(
        default="",
        description=(
            "Where this model's admitted snapshots are kept, the history every round trains on: a folder or "
            "an fsspec URL (s3://bucket/rewarm/flights) of this model's own, that every worker retraining the"
            " model can reach. Empty: the folder snapshots/<model.name> in REWARM_HOME, which then has to be "
            f"shared by them. The first model to keep a snapshot there claims it ({OWNER_FILE}); any other "
            "model is refused it."
        ),
    )

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        try:
            "".encode(value)  # looks the codec up and refuses one that is not a text encoding (rot13, base64)
        except LookupError:
            known = "such as 'utf-8', 'cp1252', 'latin-1', 'utf-16'"
            raise ValueError(f"{value!r} is not a text encoding ({known})") from None
        return value

    @model_validator(mode="after")
    def _columns_are_consistent(self) -> DataSection:
        features = [*self.numeric, *self.categorical]
        if not features:
            raise ValueError("list at least one feature in data.numeric or data.categorical")
        dupes = sorted({c for c in features if features.count(c) > 1})
        if dupes:
            raise ValueError(f"columns listed twice in data.numeric/data.categorical: {dupes}")
        if self.target in features:
            raise ValueError(f"target column {self.target!r} is also listed as a feature")
        stray = sorted(set(self.nullable) - set(features))
        if stray:
            raise ValueError(
                f"data.nullable names {stray}, which are not features (the target is never nullable: for rows "
                'without a target, set data.unlabelled = "drop")'
            )
        if self.decimal == self.separator:
            raise ValueError(
                f"data.decimal and data.separator are both {self.separator!r}: with decimal commas, set "
                "separator = ';' (as Excel writes such files)"
            )
        if self.classes and self.task == "regression":
            raise ValueError("data.classes is for classification targets; remove it for a regression task")
        if self.task == "binary" and self.classes and len(set(self.classes)) != 2:
            raise ValueError(f"a binary task takes exactly two data.classes, got {list(self.classes)}")
        return self._locations_are_apart()

    def _locations_are_apart(self) -> DataSection:
        """Compared canonically: file:///x, /x, /x/ and /y/../x are one folder."""
        landing = canonical(self.landing)
        if self.quarantine and canonical(self.quarantine) == landing:
            raise ValueError("data.quarantine must not be data.landing: rejected files would stay pending")
        if self.history and canonical(self.history) in (landing, canonical(self.quarantine_location)):
            raise ValueError(
                "data.history must be a folder of its own, not data.landing or data.quarantine: kept snapshots "
                "would be taken for landed or rejected ones"
            )
        return self

    def history_location(self, home: Path, model: str) -> str:
        """data.history, or the folder snapshots/MODEL in the rewarm home HOME."""
        return self.history or str(home / "snapshots" / model)

    @property
    def quarantine_location(self) -> str:
        """data.quarantine, or a folder named quarantine next to data.landing."""
        if self.quarantine:
            return self.quarantine
        landing = self.landing.rstrip("/")
        if "://" in landing:
            scheme, path = landing.split("://", 1)
            if "/" not in path:  # a bucket's root: a folder inside it (the landing scan does not descend)
                return f"{landing}/quarantine"
            return landing.rsplit("/", 1)[0] + "/quarantine"
        return str(Path(landing).parent / "quarantine")
