"""Training code: never imported by nodes."""
