"""Keycard zone policy: fetch the zone's policy sets, verify their signed attestations, and hand verified policy to
the policy store (`sync.ZoneSync`)."""
