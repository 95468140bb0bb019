"""Registered models. Importing this package registers every model."""

from videotag.models import multimodal, nextvlad  # noqa: F401
