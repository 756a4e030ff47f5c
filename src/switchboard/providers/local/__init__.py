"""Offline local provider (placeholder during development)."""
