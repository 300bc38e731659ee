"""Who may write: named API tokens, kept only as scrypt hashes, and a rate of writes per token.

A tokens file holds one `name:hash` line per token (blank lines and `#` comments skipped);
`deplatform token add NAME --file F` makes a token and appends its line. The single
`DEPLATFORM_API_TOKEN` is the token named `default`. Tokens are never logged nor echoed.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import os
import re
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1  # about 40 ms a check; a verified token is cached
MAX_TOKEN_LENGTH = 512  # longer is refused without hashing (hashing costs)
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")
HASH = re.compile(r"scrypt\$(\d+)\$(\d+)\$(\d+)\$([0-9a-f]{32})\$([0-9a-f]{64})")


class TokenFileError(ValueError):
    """The tokens file cannot be used (the message names the line, never its content)."""


def hash_token(token: str) -> str:
    salt = os.urandom(16)
    digest = _scrypt(token, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${salt.hex()}${digest.hex()}"


def new_token() -> str:
    return secrets.token_urlsafe(32)


def _scrypt(token: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(token.encode(), salt=salt, n=n, r=r, p=p, dklen=32, maxmem=2**27)


def matches(token: str, encoded: str) -> bool:
    found = HASH.fullmatch(encoded)
    if found is None:
        return False
    n, r, p, salt, digest = found.groups()
    computed = _scrypt(token, bytes.fromhex(salt), int(n), int(r), int(p))
    return hmac.compare_digest(computed, bytes.fromhex(digest))


@dataclass(frozen=True)
class Credential:
    name: str
    hash: str


class Tokens:
    """The tokens that may write, by name. A token once verified is remembered by a keyed
    digest (never in clear), so that it costs one scrypt check per process, not per write."""

    def __init__(self, credentials: list[Credential]) -> None:
        self.credentials = credentials
        self._key = os.urandom(32)
        self._verified: dict[bytes, str] = {}

    @classmethod
    def load(cls, single: str | None = None, file: Path | None = None) -> Tokens:
        credentials = [Credential("default", hash_token(single))] if single else []
        if file is not None:
            credentials += read_tokens_file(file)
        names = [c.name for c in credentials]
        if len(set(names)) != len(names):
            raise TokenFileError(
                "two tokens have the same name (`default` is DEPLATFORM_API_TOKEN)"
            )
        return cls(credentials)

    def __bool__(self) -> bool:
        return bool(self.credentials)

    def name_of(self, token: str) -> str | None:
        """The name of the token, or None if it is not one of them."""
        if not token or len(token) > MAX_TOKEN_LENGTH:
            return None
        key = hmac.new(self._key, token.encode(), hashlib.sha256).digest()
        if key in self._verified:
            return self._verified[key]
        for credential in self.credentials:
            if matches(token, credential.hash):
                self._verified[key] = credential.name
                return credential.name
        return None


def read_tokens_file(path: Path) -> list[Credential]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise TokenFileError(f"cannot read the tokens file {path}: {error}") from None
    credentials = []
    for number, line in enumerate(lines, start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, _, encoded = line.partition(":")
        if not NAME.fullmatch(name) or not HASH.fullmatch(encoded):
            raise TokenFileError(
                f"{path}, line {number}: expected NAME:scrypt$N$R$P$SALT$HASH "
                "(made by `deplatform token add`)"
            )
        credentials.append(Credential(name, encoded))
    return credentials


class Allowance:
    """At most `per_minute` units per name (a token bucket that refills steadily and holds at
    most a minute's worth); `None` leaves them unlimited."""

    def __init__(self, per_minute: float | None) -> None:
        self.per_minute = per_minute
        self._buckets: dict[str, tuple[float, float]] = {}  # name -> (units left, at)
        self._lock = threading.Lock()

    def take(self, name: str, units: float = 1, *, spend: bool = True) -> float:
        """0 if `units` may be spent now (and, with `spend`, spends them); else the seconds
        until they may. More than a minute's worth may be spent when the bucket is full (one
        large write): the name then waits until it is paid back."""
        if not self.per_minute:
            return 0.0
        rate = self.per_minute / 60
        with self._lock:
            now = time.monotonic()
            left, at = self._buckets.get(name, (self.per_minute, now))
            left = min(self.per_minute, left + (now - at) * rate)
            needed = min(units, self.per_minute)
            if left >= needed:
                self._buckets[name] = (left - units if spend else left, now)
                return 0.0
            self._buckets[name] = (left, now)
            return math.ceil((needed - left) / rate * 10) / 10

    def wait(self, name: str) -> float:
        """0 if a unit is left (spending none); else the seconds until one is."""
        return self.take(name, spend=False)

    def give_back(self, name: str, units: float) -> None:
        """Returns units spent on something that did not happen (a write the store refused)."""
        if not self.per_minute:
            return
        with self._lock:
            left, at = self._buckets.get(name, (self.per_minute, time.monotonic()))
            self._buckets[name] = (min(self.per_minute, left + units), at)


FAILED_CHECKS = 10.0  # wrong tokens a client may present a minute (each costs a scrypt check)
