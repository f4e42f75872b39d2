"""Domain-free helpers: money, allocation, calendar, clock, pagination, idempotency."""
