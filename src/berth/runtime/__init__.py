"""What runs inside a training pod: rendezvous, checkpoints, staging, metrics."""
