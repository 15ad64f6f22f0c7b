"""Build the configured key provider from Settings: a local key file or AWS KMS."""

from __future__ import annotations

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError

from gateway.keys import KeyProvider, KeyProviderError
from gateway.keys.kms import KmsKeyProvider
from gateway.keys.local import LocalKeyProvider
from gateway.settings import Settings

KMS_PREFIX = "aws-kms:"
_KMS_CLIENT_CONFIG = Config(connect_timeout=3, read_timeout=10, retries={"max_attempts": 3, "mode": "standard"})


def open_key_provider(settings: Settings) -> KeyProvider:
    """'local' opens the key file; 'aws-kms:<key id>' opens KMS with the sealed key at the key file."""
    if settings.key_provider == "local":
        return LocalKeyProvider.open(settings.effective_key_file)
    if settings.key_provider.startswith(KMS_PREFIX):
        kms_key_id = settings.key_provider[len(KMS_PREFIX) :]
        try:
            client = boto3.session.Session().client(
                "kms",
                endpoint_url=settings.kms_endpoint_url,
                region_name=settings.kms_region,
                config=_KMS_CLIENT_CONFIG,
            )
        except BotoCoreError as error:
            raise KeyProviderError(f"AWS KMS client cannot be created: {error}") from error
        return KmsKeyProvider(kms_key_id, settings.effective_key_file, client)
    raise KeyProviderError(f"unknown key provider {settings.key_provider!r}")
