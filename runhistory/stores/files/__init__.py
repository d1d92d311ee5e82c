"""A persistence module that keeps everything as plain files a person can browse.

Select it with `PERSISTENCE_MODULE=runhistory.stores.files` and `RUNHISTORY_FILES_PATH=<dir>`.
A run's history is `runs/<namespace>/<workflow id>/<run id>.jsonl`, one canonical Temporal
event JSON a line; every insert is atomic and durable, torn writes are rolled back, and
processes lock each other out. The layout and the commit protocol are in docs/files-store.md.
"""

from runhistory.stores.files.factory import Factory
from runhistory.stores.files.names import decode_name, encode_name
from runhistory.stores.files.recorders import (
    FileAggregateRecorder,
    FileApplicationRecorder,
    FileProcessRecorder,
    FileRecorder,
    FileSubscription,
    FileTrackingRecorder,
)

__all__ = [
    "Factory",
    "FileAggregateRecorder",
    "FileApplicationRecorder",
    "FileProcessRecorder",
    "FileRecorder",
    "FileSubscription",
    "FileTrackingRecorder",
    "decode_name",
    "encode_name",
]
