"""Registered models. Importing this package registers every model."""

from videotag.models import nextvlad  # noqa: F401
