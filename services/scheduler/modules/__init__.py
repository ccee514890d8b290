"""Timed work as small engine modules: each has a name and one `tick()` that is safe on two replicas."""
