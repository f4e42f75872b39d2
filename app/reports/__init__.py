"""Regulators' reports: read-only figures per period, one document shape, four renderings."""
