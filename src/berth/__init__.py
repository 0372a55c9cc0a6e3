"""berth: storage for distributed ML training on Kubernetes.

The package is a library first; ``berth.cli`` is a thin layer over it.
"""

__version__ = "0.1.0"
