"""Declarative workflow nodes for the Luma Dream Machine API."""
