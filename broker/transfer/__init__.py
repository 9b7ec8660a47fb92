"""File transfer in sessions: resumable (tus), verified (SHA-256), limited, encrypted at rest."""

from .limits import Limits
from .model import Upload, UploadState
from .receiving import CHECKSUM_ALGORITHMS, ByteSource, RequestChecksum
from .sending import PlaintextSink
from .service import TransferService
from .threads import BATCH_BYTES

__all__ = ["BATCH_BYTES", "CHECKSUM_ALGORITHMS", "ByteSource", "Limits", "PlaintextSink",
           "RequestChecksum", "TransferService", "Upload", "UploadState"]
