"""Spec layer: YAML files → validated, normalised :class:`SourceSpec` objects.

Nothing here imports dagster, and nothing here talks to the network.
"""

from rest_assets.dialect.loader import load_spec_dirs, load_spec_file, spec_dirs_from_env, spec_from_dict
from rest_assets.dialect.model import ResourceSpec, SecretRef, SourceSpec

__all__ = [
    "ResourceSpec",
    "SecretRef",
    "SourceSpec",
    "load_spec_dirs",
    "load_spec_file",
    "spec_dirs_from_env",
    "spec_from_dict",
]
