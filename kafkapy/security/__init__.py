"""Security: who a connection is, and what it may do (the authorizer, sans-IO)."""
