"""rewarm's exceptions: each message names the file, column or count involved and says what to do."""


class RewarmError(Exception):
    """Base class for errors rewarm reports to the user as one line."""


class ConfigError(RewarmError):
    """rewarm.toml is missing, unreadable or invalid."""


class SnapshotRejected(RewarmError):
    """A snapshot cannot be admitted: unreadable, wrong columns, bad values, too small."""


class RegistryError(RewarmError):
    """The MLflow registry does not hold what rewarm needs (no champion to roll back to, a broken version)."""


class PromotionRefused(RewarmError):
    """An alias move was refused because the target version is not complete."""
