"""Fixtures for the posture tests: the shipped default policy."""

from __future__ import annotations

import pytest

from gateway.policy import PosturePolicy, default_policy


@pytest.fixture
def policy() -> PosturePolicy:
    """`policies/default.toml`'s posture section."""
    return default_policy().posture
