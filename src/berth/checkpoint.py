"""Crash-safe, asynchronous, tiered checkpoints for training loops (the public API).

Usage::

    from berth.checkpoint import CheckpointManager
    mgr = CheckpointManager("/mnt/models/ckpt", keep_last=3, archive="s3://bucket/run")
    step, state = mgr.restore()
    mgr.save(step, state)
"""

from berth.runtime.agree import (
    Agreement,
    PollingAgreement,
    TorchDistributedAgreement,
    object_store,
    shared_directory,
)
from berth.runtime.archive import Archive, ArchiveError
from berth.runtime.manager import CheckpointManager
from berth.runtime.manifest import CorruptCheckpoint, Manifest

__all__ = [
    "Agreement",
    "Archive",
    "ArchiveError",
    "CheckpointManager",
    "CorruptCheckpoint",
    "Manifest",
    "PollingAgreement",
    "TorchDistributedAgreement",
    "object_store",
    "shared_directory",
]
