"""pyquirk's benchmark suite: ``python -m bench`` prints the table for docs/benchmarks.md."""
