"""Docker runtime: runs releases as containers on the local Docker engine."""
