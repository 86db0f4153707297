"""Bearer secrets: generated with a recognisable prefix, stored only as a SHA-256 digest.

Tokens carry 256 bits of randomness, so a fast hash is enough (no offline guessing is
feasible); passwords, which people choose, use Argon2 instead.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass


@dataclass(frozen=True)
class NewToken:
    plaintext: str
    digest: str
    prefix: str


def hash_token(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


def new_token(kind: str) -> NewToken:
    """kind is a short tag such as 'api', 'agt' (agent registration), 'ses', 'job', 'inv'."""
    plaintext = f"bst{kind}_{secrets.token_urlsafe(32)}"
    return NewToken(plaintext=plaintext, digest=hash_token(plaintext), prefix=plaintext[:12])


def digests_match(a: str, b: str) -> bool:
    return hmac.compare_digest(a, b)
