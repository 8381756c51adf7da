"""Photos and files: a content-addressed store, and the checks and copies Pillow makes of each image.

**The store.** Every file is kept under the SHA-256 of its bytes, so the name *is* the integrity
check: the case's audit chain records the hash, the case bundle carries the file under it, and the
bundle's verifier recomputes it. ``[media] store`` names the folder (relative: under ``instance/``).
With several machines serving GridLoop, point it at one shared mount (NFS, CephFS, a SAN volume)
that every web worker and scheduler reaches at the same path: writes are atomic renames of files
named by their content, so two machines storing the same photo at once write the same bytes and
nothing needs locking. Another backend (an object store) is one class with ``put``, ``get`` and
``exists`` (``Store``).

**The images.** An upload is accepted only if Pillow opens and verifies it as JPEG, PNG or WebP —
whatever its name or the type the browser claims — within the size and pixel limits of
``[media]``. The original is stored untouched (EXIF and GPS kept as evidence); pages only ever
show a display copy and a thumbnail, re-encoded as JPEG with no metadata at all.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from PIL import Image, ImageOps, UnidentifiedImageError

#: Formats accepted, by Pillow's name, with the content type each is served as and its file extension.
FORMATS = {"JPEG": ("image/jpeg", "jpg"), "PNG": ("image/png", "png"), "WEBP": ("image/webp", "webp")}
#: The extension of each content type (bundles name files ``files/<sha256>.<ext>``).
EXTENSIONS = {mime: ext for mime, ext in FORMATS.values()}
#: The defaults of ``[media]`` (config.toml documents each).
DEFAULTS: dict[str, Any] = {"store": "media", "max_file_mb": 10.0, "max_files": 8, "max_request_mb": 64.0,
                            "max_pixels": 50_000_000, "display_px": 1600, "thumb_px": 320}


class Store(Protocol):
    """Where files live, by the SHA-256 of their content."""

    def put(self, data: bytes) -> str:
        """Store ``data``; return its SHA-256 (storing the same bytes again changes nothing)."""
        ...

    def get(self, sha256: str) -> bytes:
        """Return the bytes stored under ``sha256`` (FileNotFoundError if none)."""
        ...

    def exists(self, sha256: str) -> bool:
        """Return whether something is stored under ``sha256``."""
        ...


def sha256_of(data: bytes) -> str:
    """Return the hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def _checked(sha256: str) -> str:
    """Refuse anything but a hex SHA-256 as a file name (no path can be smuggled in)."""
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise ValueError(f"not a SHA-256: {sha256!r}")
    return sha256


@dataclass(frozen=True)
class FileStore:
    """A folder of files named by hash, two levels deep (ab/cd/abcd…) so no folder grows huge."""

    root: Path

    def path(self, sha256: str) -> Path:
        """Return where the file of ``sha256`` lives."""
        sha256 = _checked(sha256)
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def put(self, data: bytes) -> str:
        """Write ``data`` atomically (a temporary file renamed into place) unless already there."""
        digest = sha256_of(data)
        target = self.path(digest)
        if target.exists():
            return digest
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return digest

    def get(self, sha256: str) -> bytes:
        """Read the file of ``sha256``."""
        return self.path(sha256).read_bytes()

    def exists(self, sha256: str) -> bool:
        """Tell whether the file of ``sha256`` is stored."""
        return self.path(sha256).is_file()


def settings(config: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Return ``[media]`` with its defaults filled in."""
    return {**DEFAULTS, **config.get("media", {})}


def store_for(config: Mapping[str, Mapping[str, Any]], instance_path: str | Path) -> FileStore:
    """Return the configured store: ``[media] store``, relative to the instance folder unless absolute."""
    root = Path(settings(config)["store"])
    return FileStore(root if root.is_absolute() else Path(instance_path) / root)


@dataclass(frozen=True)
class Upload:
    """One uploaded file as an adapter read it: its bytes and the name the phone gave it."""

    data: bytes
    name: str


def read_uploads(files: Iterable[Any], limit_bytes: int) -> list[Upload]:
    """Read uploaded files (werkzeug FileStorage), each at most one byte past ``limit_bytes`` (checked later)."""
    return [Upload(f.stream.read(limit_bytes + 1), f.filename or "") for f in files]


def request_uploads(field: str = "photos") -> list[Upload]:
    """Read the files of the current request's form ``field`` (each up to one byte past the per-file limit)."""
    from flask import current_app, request
    limit = int(settings(current_app.config["GRIDLOOP"])["max_file_mb"] * 1024 * 1024)
    return read_uploads(request.files.getlist(field), limit)


class BadImage(ValueError):
    """An upload that is not an accepted image; ``template`` and ``params`` say why (translated later)."""

    def __init__(self, template: str, **params: Any) -> None:
        super().__init__(template % params if params else template)
        self.template, self.params = template, params


@dataclass(frozen=True)
class Photo:
    """An accepted image: the original's bytes and facts, and the two copies pages show."""

    original: bytes
    content_type: str
    width: int
    height: int
    display: bytes
    thumb: bytes

    @property
    def sha256(self) -> str:
        """Return the original's SHA-256."""
        return sha256_of(self.original)


def N_(message: str) -> str:
    """Mark a message for translation (the caller translates it)."""
    return message


def process(data: bytes, name: str, limits: Mapping[str, Any]) -> Photo:
    """Check an upload by its content and make its display copy and thumbnail; raise BadImage if refused."""
    if not data:
        raise BadImage(N_("%(name)s is empty."), name=name)
    if len(data) > limits["max_file_mb"] * 1024 * 1024:
        raise BadImage(N_("%(name)s is larger than %(mb)s MB; take a smaller photo."), name=name,
                       mb=f"{limits['max_file_mb']:g}")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            probe = Image.open(io.BytesIO(data))
            kind = probe.format
            if kind not in FORMATS:
                raise BadImage(N_("%(name)s is not a JPEG, PNG or WebP photo; send a photo in one of these formats."),
                               name=name)
            if probe.width * probe.height > limits["max_pixels"]:
                raise BadImage(N_("%(name)s has too many pixels; send a smaller photo."), name=name)
            probe.verify()
            image = Image.open(io.BytesIO(data))
            image.load()
        except BadImage:
            raise
        except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning, OSError,
                SyntaxError, ValueError) as exc:
            kind_message = (N_("%(name)s has too many pixels; send a smaller photo.")
                            if isinstance(exc, (Image.DecompressionBombError, Image.DecompressionBombWarning))
                            else N_("%(name)s is not a JPEG, PNG or WebP photo, or it is damaged; send a photo "
                                    "in one of these formats."))
            raise BadImage(kind_message, name=name) from None
    upright = ImageOps.exif_transpose(image)
    width, height = upright.size
    return Photo(original=data, content_type=FORMATS[kind][0], width=width, height=height,
                  display=_copy(upright, limits["display_px"]), thumb=_copy(upright, limits["thumb_px"]))


def _copy(image: Image.Image, longest: int) -> bytes:
    """Return a JPEG of ``image`` at most ``longest`` pixels on its longer side, with no metadata."""
    rgb = image
    if image.mode in ("RGBA", "LA", "P"):
        rgba = image.convert("RGBA")
        rgb = Image.new("RGB", rgba.size, (255, 255, 255))
        rgb.paste(rgba, mask=rgba.getchannel("A"))
    elif image.mode != "RGB":
        rgb = image.convert("RGB")
    # A fresh image carries no info dict: nothing of the original's EXIF, GPS, XMP or comments.
    fresh = Image.new("RGB", rgb.size)
    fresh.paste(rgb)
    fresh.thumbnail((longest, longest))
    out = io.BytesIO()
    fresh.save(out, format="JPEG", quality=85, optimize=True)
    return out.getvalue()


def current_store() -> FileStore:
    """Return the store of the running app (a request, a CLI command or a job inside an app context)."""
    from flask import current_app
    return store_for(current_app.config["GRIDLOOP"], current_app.instance_path)


__all__ = ["EXTENSIONS", "FORMATS", "BadImage", "FileStore", "Photo", "Store", "Upload", "current_store", "process",
           "read_uploads", "request_uploads", "settings", "sha256_of", "store_for"]
