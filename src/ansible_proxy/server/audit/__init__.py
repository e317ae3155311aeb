"""The audit trail (docs/security.md "The audit trail"): trail.py writes one entry per change."""
