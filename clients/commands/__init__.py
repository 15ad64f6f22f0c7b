"""The `dentgate` command groups, each a thin layer over `clients.api` and the gateway services."""
