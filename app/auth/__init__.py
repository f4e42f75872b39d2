"""Users, password hashing (Argon2), JWT, roles and data scopes."""
