"""The audit trail: who changed what, when, in which request (`GET /audit`)."""
