"""`python -m pipeline.local`: local collection in one command (see pipeline.local.mode)."""

from pipeline.local.mode import main

main()
