"""`python -m bench`: the ClipMix benchmark (see docs/performance.md)."""
