"""Ingest: a browser's request becomes a queue message (the contract both producers
follow, the local collector, the tracking script)."""
