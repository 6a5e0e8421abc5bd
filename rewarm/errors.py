"""rewarm's exceptions: each message names the file, column or count involved and says what to do."""

from __future__ import annotations


class RewarmError(Exception):
    """Base class for errors rewarm reports to the user as one line."""


class ConfigError(RewarmError):
    """rewarm.toml is missing, unreadable or invalid."""


class SnapshotRejected(RewarmError):
    """A snapshot cannot be admitted: unreadable, wrong columns, bad values, too small.

    PROBLEMS holds each reason found (rewarm.schema.Problem) when the schema check raised it.
    """

    def __init__(self, message: str, problems: tuple = (), kind: str = "") -> None:
        super().__init__(message)
        self.problems = tuple(problems)
        self._kind = kind

    @classmethod
    def of(cls, uri: str, problems: list) -> SnapshotRejected:
        """One line for the user: the file, then every problem found, most fundamental first."""
        text = "; ".join(p.message for p in problems[:3])
        more = f" (and {len(problems) - 3} more problem(s))" if len(problems) > 3 else ""
        return cls(f"{uri}: {text}{more}", problems)

    @property
    def kind(self) -> str:
        return self._kind or (self.problems[0].kind if self.problems else "unreadable")


class RegistryError(RewarmError):
    """The MLflow registry does not hold what rewarm needs (no champion to roll back to, a broken version)."""


class PromotionRefused(RewarmError):
    """An alias move was refused because the target version is not complete."""
