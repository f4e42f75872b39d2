"""Programme-specific rules behind the `Program` protocol (ARCHITECTURE style 8)."""
