"""The compliance report (G1–G21): facts read once, rows per topic, rendering as JSON, HTML and PDF."""
