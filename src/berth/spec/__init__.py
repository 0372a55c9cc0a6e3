"""The user's spec (``berth.yaml``): model, loading, errors with line numbers."""
