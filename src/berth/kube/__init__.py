"""Everything that talks to a cluster: sandbox, apply, status, scale, gc, doctor."""
