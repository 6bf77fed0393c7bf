"""Keyed pseudonyms for identifiers that leave ``data/``, and ad-platform contact hashes.

Identifiers written to reports, exports or model files are HMAC-SHA-256
pseudonyms: without the key nobody can recompute them from a phone number or a
member id (a plain SHA-256 of a phone number is reversed by hashing all ~1.3e9
Chinese mobile numbers). The key is 32+ random bytes kept **outside git**:

1. ``WORKBENCH_PSEUDONYM_KEY`` -- the key as hex (at least 64 hex characters), or else
2. the key file named by ``WORKBENCH_KEY_FILE``, or else
3. ``~/.config/workbench/pseudonym.key`` (hex text, mode 0600).

``load_key(create=True)`` makes the key file when none exists (``make report``
does this). Losing the key changes every pseudonym, so back the file up; its
:func:`key_fingerprint` may be written to manifests to tell which key made an output.

:func:`ad_platform_hash` is different on purpose: ad platforms match customer
lists on the *unkeyed* SHA-256 of a normalised e-mail or phone number, so those
hashes are only for uploading to such a platform, never for pseudonymising.

>>> key = bytes(range(32))
>>> key_fingerprint(key)
'630dcd29'
>>> pseudonymise(pd.Series(["M001", None, "M001"]), key=key, length=16).tolist()
['e0fa0791258797fb', <NA>, 'e0fa0791258797fb']
"""

from __future__ import annotations

import hashlib
import os
import secrets
import stat
import tempfile
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from workbench.normalise import normalise_emails, normalise_phones

__all__ = ["DEFAULT_KEY_FILE", "KEY_ENV", "KEY_FILE_ENV", "MIN_KEY_BYTES", "ad_platform_hash", "key_fingerprint",
           "key_path", "load_key", "pseudonymise"]

#: Environment variable holding the key itself, as hex.
KEY_ENV = "WORKBENCH_PSEUDONYM_KEY"
#: Environment variable naming the key file.
KEY_FILE_ENV = "WORKBENCH_KEY_FILE"
#: Key file used when neither variable is set (``~`` is expanded when the key is loaded).
DEFAULT_KEY_FILE = "~/.config/workbench/pseudonym.key"
#: Shortest key accepted, in bytes (the SHA-256 block is 64 bytes, its output 32).
MIN_KEY_BYTES = 32
_STRING = pd.StringDtype()
_SEPARATOR = "\x1f"  # ASCII unit separator between namespace and value


def key_path() -> Path:
    """The key file in use: ``WORKBENCH_KEY_FILE``, else ``~/.config/workbench/pseudonym.key``.

    >>> from unittest import mock
    >>> with mock.patch.dict(os.environ, {"WORKBENCH_KEY_FILE": "/secrets/workbench.key"}):
    ...     str(key_path())
    '/secrets/workbench.key'
    """
    return Path(os.environ.get(KEY_FILE_ENV) or DEFAULT_KEY_FILE).expanduser()


def _parse_key(text: str, source: str) -> bytes:
    """Hex text to key bytes; the error never repeats the (secret) text."""
    cleaned = "".join(text.split())
    try:
        key = bytes.fromhex(cleaned)
    except ValueError:
        raise ValueError(f"The pseudonymisation key in {source} must be hex text (0-9, a-f) of at least "
                         f"{2 * MIN_KEY_BYTES} characters. Got {len(cleaned)} characters that are not valid hex "
                         "instead.") from None
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"The pseudonymisation key in {source} must be at least {MIN_KEY_BYTES} bytes "
                         f"({2 * MIN_KEY_BYTES} hex characters). Got {len(key)} bytes instead.")
    return key


def _create_key_file(path: Path, log: Callable[[str], None] | None) -> bytes | None:
    """Write a fresh key to ``path`` (mode 0600); None if another process created it first."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = secrets.token_bytes(MIN_KEY_BYTES)
    # written whole to a private temporary file, then linked to its name: a process that finds
    # the key file never reads a half-written key, and of two processes creating it one wins
    fd, tmp = tempfile.mkstemp(prefix=".pseudonym-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as f:
            if hasattr(os, "fchmod"):
                os.fchmod(f.fileno(), 0o600)  # whatever the umask
            f.write(key.hex() + "\n")
        try:
            os.link(tmp, path)
        except FileExistsError:
            return None
    finally:
        os.unlink(tmp)
    if log:
        log(f"workbench: created a new pseudonymisation key at {path} (fingerprint {key_fingerprint(key)}). "
            "Keep it out of git and back it up: losing it changes every pseudonym.")
    return key


def load_key(*, create: bool = False, log: Callable[[str], None] | None = print) -> bytes:
    """The pseudonymisation key: ``WORKBENCH_PSEUDONYM_KEY`` (hex), else the key file.

    The key file is ``WORKBENCH_KEY_FILE`` or ``~/.config/workbench/pseudonym.key``
    and holds the key as hex. With ``create=True`` a missing key file is made
    (32 bytes from :func:`secrets.token_bytes`, mode 0600, parent folders
    created) and one line saying where it is goes to ``log``. Keys must be at
    least 32 bytes; a malformed key raises ``ValueError`` and, with
    ``create=False``, a missing one raises ``FileNotFoundError`` saying how to
    make one. A key file open to other users is used but warned about.

    >>> from unittest import mock
    >>> with mock.patch.dict(os.environ, {"WORKBENCH_PSEUDONYM_KEY": "ab" * 32}):
    ...     load_key() == bytes.fromhex("ab" * 32)
    True
    """
    env = os.environ.get(KEY_ENV)
    if env is not None and env.strip():
        return _parse_key(env, f"the {KEY_ENV} environment variable")
    path = key_path()
    if not path.exists() and create:
        key = _create_key_file(path, log)
        if key is not None:
            return key
    if not path.exists():
        raise FileNotFoundError(
            f"No pseudonymisation key: {KEY_ENV} is not set and the key file {path} does not exist. "
            "Create one with `make report` (creates it on first run), `workbench key`, or "
            "`workbench.privacy.keys.load_key(create=True)`; or set "
            f"{KEY_ENV} to {2 * MIN_KEY_BYTES}+ hex characters (e.g. from `python -c \"import secrets; "
            "print(secrets.token_hex(32))\"`). Keep the key out of git and back it up.")
    if not path.is_file():
        raise ValueError(f"The pseudonymisation key file must be a file. Got {path}, which is not a file, instead.")
    if os.name == "posix" and path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        warnings.warn(f"The pseudonymisation key file {path} is open to other users; "
                      f"restrict it with `chmod 600 {path}`.", stacklevel=2)
    return _parse_key(path.read_text(encoding="ascii", errors="replace"), f"the key file {path}")


def key_fingerprint(key: bytes) -> str:
    """First 8 hex characters of SHA-256 of the key: names a key without revealing it.

    >>> key_fingerprint(b"\\x00" * 32)
    '66687aad'
    """
    if not isinstance(key, (bytes, bytearray)):
        raise ValueError(f"The 'key' parameter must be bytes. Got {type(key).__name__} instead.")
    return hashlib.sha256(bytes(key)).hexdigest()[:8]


def _as_text_series(values: pd.Series | Iterable[Any]) -> pd.Series:
    if isinstance(values, pd.Series):
        return values
    if isinstance(values, (str, bytes, pd.DataFrame)) or not isinstance(values, Iterable):
        raise ValueError("The 'values' parameter must be a pandas Series or an iterable of values. "
                         f"Got {type(values).__name__} instead.")
    return pd.Series(list(values), dtype=object)


def _text(value: Any) -> str:
    """A value's text: integral floats (ids turned float by NA) read as integers."""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _take(hashed: list[str], codes: np.ndarray) -> pd.api.extensions.ExtensionArray:
    """Per-unique hashes spread back over the rows; code -1 (NA) gives NA."""
    return pd.array(pa.array(hashed, pa.large_string()), dtype=_STRING).take(codes, allow_fill=True)


def pseudonymise(values: pd.Series | Iterable[Any], *, key: bytes | None = None, namespace: str = "",
                 length: int = 64) -> pd.Series:
    """HMAC-SHA-256 pseudonyms: ``hmac(key, namespace + "\\x1f" + value)`` as lower-case hex.

    The same value, key and namespace always give the same pseudonym; another
    key or namespace gives unrelated ones (use e.g. ``namespace="phone"`` so a
    phone number and a member id never share a pseudonym). Values are hashed as
    text (UTF-8; ``123.0`` reads as ``123``), NA stays NA, each distinct value
    is hashed once. ``key=None`` loads the key with :func:`load_key`.
    ``length`` keeps the first ``length`` hex characters (8-64; 16 = 64 bits).

    >>> pseudonymise(["13800138000"], key=b"k" * 32, namespace="phone", length=12).tolist()
    ['e2fa3d03a053']
    """
    values = _as_text_series(values)
    if not isinstance(length, (int, np.integer)) or isinstance(length, bool) or not 8 <= length <= 64:
        raise ValueError(f"The 'length' parameter must be an integer from 8 to 64. Got {length!r} instead.")
    if not isinstance(namespace, str) or _SEPARATOR in namespace:
        raise ValueError("The 'namespace' parameter must be a string without the \\x1f separator. "
                         f"Got {namespace!r} instead.")
    key = load_key() if key is None else key
    if not isinstance(key, (bytes, bytearray)) or len(key) < MIN_KEY_BYTES:
        raise ValueError(f"The 'key' parameter must be at least {MIN_KEY_BYTES} bytes. "
                         f"Got {type(key).__name__} of length {len(key) if hasattr(key, '__len__') else '?'} instead.")
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    # HMAC by hand (RFC 2104) so the key pads are hashed once, not once per value.
    block = bytes(key).ljust(64, b"\0") if len(key) <= 64 else hashlib.sha256(bytes(key)).digest().ljust(64, b"\0")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in block))
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in block))
    prefix = namespace + _SEPARATOR
    if isinstance(uniques.dtype, pd.StringDtype):
        texts = uniques.tolist()
    else:
        texts = [_text(v) for v in np.asarray(uniques, dtype=object)]
    inner_copy, outer_copy = inner.copy, outer.copy
    hashed = []
    for text in texts:
        i = inner_copy()
        i.update((prefix + text).encode("utf-8"))
        o = outer_copy()
        o.update(i.digest())
        hashed.append(o.hexdigest()[:length])
    return pd.Series(_take(hashed, codes), index=values.index, name=values.name)


def ad_platform_hash(values: pd.Series | Iterable[Any], *, kind: str, platform: str = "google",
                     default_region: str = "CN") -> pd.Series:
    """Unkeyed SHA-256 hex of normalised contacts, the form ad platforms take for customer-list upload.

    ``kind="email"``: :func:`~workbench.normalise.normalise_emails` (trimmed,
    lower-cased; Google's extra rule of dropping dots in gmail.com local parts
    applies to enhanced conversions, not Customer Match, and is not done).
    ``kind="phone"``: :func:`~workbench.normalise.normalise_phones` to E.164,
    then per ``platform``: ``"google"`` (Customer Match) hashes E.164 *with* the
    ``+`` (``+8613800138000``); ``"meta"`` (Custom Audiences) hashes the digits
    with the country code and *no* ``+`` (``8613800138000``). Invalid, masked
    and missing values are NA and are not hashed.

    These hashes are not pseudonyms: anyone can recompute them. Use them only in
    files meant for upload to the platform.

    >>> ad_platform_hash(pd.Series([" Test@Example.com", "bad"]), kind="email").str[:12].tolist()
    ['973dfe463ec8', <NA>]
    """
    values = _as_text_series(values)
    if kind not in ("email", "phone"):
        raise ValueError(f"The 'kind' parameter must be 'email' or 'phone'. Got {kind!r} instead.")
    if platform not in ("google", "meta"):
        raise ValueError(f"The 'platform' parameter must be 'google' or 'meta'. Got {platform!r} instead.")
    if kind == "email":
        normal = normalise_emails(values)["email"]
    else:
        normal = normalise_phones(values, default_region=default_region)["e164"]
        if platform == "meta":
            normal = normal.str.lstrip("+")
    codes, uniques = pd.factorize(normal, use_na_sentinel=True)
    hashed = [hashlib.sha256(v.encode("utf-8")).hexdigest() for v in uniques]
    return pd.Series(_take(hashed, codes), index=values.index, name=values.name)
