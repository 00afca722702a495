"""Supply-chain and code checks run by CI: `python -m security.audit`."""
