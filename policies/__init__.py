"""The security policy DentGate ships with, as data (G16). Loaded by `gateway.policy`."""
