"""Fetching and unpacking the reproduction's external data.

``download.fetch`` gives verified, resumable, atomic downloads (mirror first, then the real
URLs); ``archives.safe_extract`` unpacks without writing outside the target; ``registry``
records every real source with its checksum.
"""
from .archives import (ArchiveError, ArchiveLimitError, CorruptArchiveError, ExtractLimits,
                       UnsafeArchiveError, safe_extract)
from .download import DownloadError, fetch, sha256_file, verify
from .registry import REGISTRY, Source, resolve

__all__ = ["ArchiveError", "ArchiveLimitError", "CorruptArchiveError", "DownloadError",
           "ExtractLimits", "REGISTRY", "Source", "UnsafeArchiveError", "fetch", "resolve",
           "safe_extract", "sha256_file", "verify"]
