"""The app-driving fixtures (`gateway`, `lab`) for compliance tests."""

from tests.gateway_fixtures import gateway, lab  # noqa: F401 (fixtures are registered by import)
