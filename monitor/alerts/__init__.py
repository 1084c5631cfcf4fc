"""Alert rules and the alert lifecycle (pending -> firing -> resolved)."""
