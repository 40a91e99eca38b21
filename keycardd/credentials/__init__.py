"""Credentials: signing in to a Keycard zone, the user's tokens in the system keyring, and the broker that mints
short-lived, resource-scoped tokens by RFC 8693 token exchange for secure sessions (`keycardctl run`)."""
