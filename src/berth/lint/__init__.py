"""Schema validation and storage-aware rules for any Kubernetes manifests."""
