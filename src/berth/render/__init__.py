"""Spec → Kubernetes objects, one module per concern."""
