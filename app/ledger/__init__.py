"""The double-entry ledger: the only writer of money movements (SPEC §5)."""
