"""File transfer in sessions: resumable (tus), verified (SHA-256), limited, encrypted at rest."""

from .limits import Limits
from .model import Upload, UploadState
from .service import ByteSource, PlaintextSink, RequestChecksum, TransferService

__all__ = ["ByteSource", "Limits", "PlaintextSink", "RequestChecksum", "TransferService",
           "Upload", "UploadState"]
