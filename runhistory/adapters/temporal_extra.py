"""The `temporal` extra: what to tell a user whose environment lacks temporalio."""

from __future__ import annotations

__all__ = ["INSTALL_HINT", "MissingTemporalExtra", "require_temporalio"]

INSTALL_HINT = "pip install 'runhistory[temporal]'"


class MissingTemporalExtra(ImportError):
    """A feature that talks to Temporal (or reads its protos) was used without temporalio."""

    def __init__(self, feature: str) -> None:
        super().__init__(f"{feature} needs the Temporal SDK: {INSTALL_HINT}")


def require_temporalio(feature: str) -> None:
    """Raise MissingTemporalExtra, naming `feature`, unless temporalio can be imported."""
    try:
        import temporalio  # noqa: F401
    except ImportError:
        raise MissingTemporalExtra(feature) from None
