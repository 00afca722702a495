"""Local: the whole stack on one machine (the embedded emulator, demo traffic, and local
mode: `python -m pipeline.local`)."""
