"""Machine-readable records of what a build wrote and what a publish pushed (docs/records.md)."""
