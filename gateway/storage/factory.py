"""Pick the object store named by the settings' storage URL (file:// or s3://)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar
from urllib.parse import unquote, urlsplit

from gateway.settings import Settings
from gateway.storage import ObjectStore
from gateway.storage.local import LocalObjectStore
from gateway.storage.s3 import S3ObjectStore
from gateway.storage.staging import StagingArea
from gateway.storage.staging_local import LocalStagingArea
from gateway.storage.staging_s3 import S3StagingArea

T = TypeVar("T")


def _open(settings: Settings, local: Callable[[Path], T], s3: Callable[..., T]) -> T:
    """Build the local or S3 flavour named by the settings' storage URL; ValueError for anything else."""
    url = settings.effective_storage_url
    parts = urlsplit(url)
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise ValueError(f"storage URL {url!r} names a remote host; use file:///absolute/path")
        return local(Path(unquote(parts.path)))
    if parts.scheme == "s3":
        if not parts.netloc:
            raise ValueError(f"storage URL {url!r} names no bucket; use s3://bucket/prefix")
        return s3(
            bucket=parts.netloc,
            prefix=unquote(parts.path).strip("/"),
            endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region,
            sse=settings.s3_sse,
            sse_kms_key_id=settings.s3_sse_kms_key_id,
            part_size=settings.s3_part_size,
        )
    raise ValueError(f"storage URL {url!r} has unknown scheme {parts.scheme!r}; use file:// or s3://")


def open_object_store(settings: Settings) -> ObjectStore:
    """file:///path -> LocalObjectStore, s3://bucket/prefix -> S3ObjectStore; ValueError otherwise."""
    return _open(settings, LocalObjectStore, S3ObjectStore)


def open_staging_area(settings: Settings) -> StagingArea:
    """The resumable-upload staging beside the object store (same root, or same bucket and prefix)."""
    return _open(settings, LocalStagingArea, S3StagingArea)
