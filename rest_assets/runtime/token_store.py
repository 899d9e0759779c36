"""Opt-in persistence of a rotated OAuth2 refresh token between runs.

`auth.refresh_token_store: <path>` in a spec: the file, when present, is read
before the configured refresh token, and rewritten atomically whenever the
token endpoint rotates the refresh token. The file holds a live credential,
so it is created mode 0600 and refused inside the project tree or the
working directory (where it could be committed or baked into an image).
Nothing is ever written unless a spec asks for it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from rest_assets.errors import LoadError
from rest_assets.runtime.redaction import register_secret

PROJECT_ROOT = Path(__file__).resolve().parents[2]


class RefreshTokenStore:
    """One refresh-token file (see the module docstring)."""

    def __init__(self, source: str, path: Path) -> None:
        self.source, self.path = source, path

    @classmethod
    def open(cls, source: str, configured: str) -> RefreshTokenStore:
        """The store at `configured` (`~` expanded); raises LoadError for a path inside the project or cwd."""
        path = Path(os.path.expanduser(configured)).resolve()
        for tree, what in ((PROJECT_ROOT, "the project tree"), (Path.cwd().resolve(), "the working directory")):
            if path == tree or tree in path.parents:
                raise LoadError(
                    f"source '{source}': auth.refresh_token_store {path} is inside {what} ({tree}), where a live "
                    f"refresh token could be committed or copied into an image: choose a path outside it, "
                    f"e.g. under ~/.config/rest_assets/"
                )
        return cls(source, path)

    def read(self) -> str | None:
        """The stored refresh token, or None when the file does not exist or is empty."""
        try:
            value = self.path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise LoadError(f"source '{self.source}': cannot read auth.refresh_token_store {self.path}: {exc.strerror}") from None
        register_secret(value)
        return value or None

    def write(self, refresh_token: str) -> None:
        """Replace the stored token atomically (a temporary 0600 file in the same folder, then rename)."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd, temporary = tempfile.mkstemp(prefix=".refresh-", dir=self.path.parent)  # mkstemp creates it 0600
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    handle.write(refresh_token)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(temporary, self.path)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise LoadError(
                f"source '{self.source}': cannot write the rotated refresh token to "
                f"auth.refresh_token_store {self.path}: {exc.strerror}; the token in use is lost "
                f"after this run"
            ) from None
