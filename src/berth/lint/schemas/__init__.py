"""CRDs bundled for offline validation (compact, faithful subsets of the upstream CRDs)."""
