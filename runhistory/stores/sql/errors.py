"""Driver and SQLAlchemy errors -> eventsourcing's persistence errors (PEP 249 names)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from eventsourcing.persistence import (
    DatabaseError,
    DataError,
    IntegrityError,
    InterfaceError,
    InternalError,
    NotSupportedError,
    OperationalError,
    PersistenceError,
    ProgrammingError,
)
from sqlalchemy import exc as sa_exc

__all__ = ["translate_dbapi_error", "translate_errors"]

# Most specific first: PEP 249 makes every class below DatabaseError a subclass of it.
_PEP249 = (
    ("IntegrityError", IntegrityError),
    ("DataError", DataError),
    ("OperationalError", OperationalError),
    ("ProgrammingError", ProgrammingError),
    ("InternalError", InternalError),
    ("NotSupportedError", NotSupportedError),
    ("InterfaceError", InterfaceError),
    ("DatabaseError", DatabaseError),
)


def _pep249_class(error: BaseException) -> type[PersistenceError]:
    names = {cls.__name__ for cls in type(error).__mro__}
    for name, ours in _PEP249:
        if name in names:
            return ours
    return PersistenceError


def translate_dbapi_error(error: BaseException) -> PersistenceError:
    """The persistence error for a driver (or SQLAlchemy-wrapped driver) error."""
    cause = error.orig if isinstance(error, sa_exc.DBAPIError) and error.orig else error
    message = str(cause).strip() or type(cause).__name__
    return _pep249_class(error)(message)


@contextmanager
def translate_errors(driver_error: type[Exception] = sa_exc.DBAPIError) -> Iterator[None]:
    """Re-raise SQLAlchemy's errors, and the driver's own (`driver_error`, raised by code that
    uses a DBAPI cursor directly), as eventsourcing's, the original kept as the cause."""
    try:
        yield
    except (sa_exc.DBAPIError, driver_error) as e:
        raise translate_dbapi_error(e) from e
    except sa_exc.TimeoutError as e:  # the connection pool was exhausted
        raise OperationalError(str(e)) from e
    except sa_exc.ResourceClosedError as e:
        raise InterfaceError(str(e)) from e
