"""Pipelines shipped with the bundled tasks (`kind: python`)."""
