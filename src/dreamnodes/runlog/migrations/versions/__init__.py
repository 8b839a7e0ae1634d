"""The revisions, oldest first: 0001 runs and attempts, 0002 units and claims, 0003 the
service's tables."""
