"""Encryption of stored secrets (TOTP seeds, target credentials, pipeline secrets).

The key is derived from SECRET_KEY with HKDF, so rotating SECRET_KEY makes stored secrets
unreadable; set BASTION_SECRET_KEY once and keep it.
"""

from __future__ import annotations

import base64
import functools

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings


class DecryptionError(Exception):
    """A stored secret could not be decrypted (wrong key or tampered value)."""


@functools.cache
def _fernet(secret_key: str) -> Fernet:
    key = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=b"bastion-secrets-v1", info=b"fernet"
    ).derive(secret_key.encode())
    return Fernet(base64.urlsafe_b64encode(key))


def encrypt(plaintext: str) -> str:
    return _fernet(settings.SECRET_KEY).encrypt(plaintext.encode()).decode()


def decrypt(ciphertext: str) -> str:
    try:
        return _fernet(settings.SECRET_KEY).decrypt(ciphertext.encode()).decode()
    except InvalidToken as exc:
        raise DecryptionError("stored secret cannot be decrypted with this SECRET_KEY") from exc
