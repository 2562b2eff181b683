"""Field encryption: AES-256-GCM with table, column and row bound as associated data.

A ciphertext is ``version (1 byte) | key id (4 bytes) | nonce (12 bytes) | sealed data``.
The key id is derived from the key itself, so rotating keys needs no table of ids: the
current key encrypts, the current and old keys decrypt, and ``flask hrdfund rotate-keys``
re-encrypts old ciphertexts under the current key.
"""

import base64
import binascii
import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

VERSION = b"\x01"
KEY_BYTES = 32


class KeyConfigError(ValueError):
    """A key is missing or not the base64 of 32 bytes."""


class DecryptionError(ValueError):
    """A ciphertext does not decrypt: wrong key, wrong row or column, or tampering."""


def parse_key(text, name="key"):
    """Decode a base64 key of 32 bytes, or raise :class:`KeyConfigError`."""
    if not text:
        raise KeyConfigError(f"{name} is not set")
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise KeyConfigError(f"{name} is not valid base64") from exc
    if len(raw) != KEY_BYTES:
        raise KeyConfigError(f"{name} must be the base64 of {KEY_BYTES} random bytes")
    if len(set(raw)) < 8:
        raise KeyConfigError(f"{name} is too weak")
    return raw


def generate_key():
    """A new random key, base64-encoded."""
    return base64.b64encode(os.urandom(KEY_BYTES)).decode()


def key_id(key):
    """Four bytes naming a key without revealing it."""
    return hashlib.sha256(b"hrdfund-field-key:" + key).digest()[:4]


def field_aad(table, column, row):
    return f"{table}\x1f{column}\x1f{row}".encode()


class FieldCipher:
    """Encrypts and decrypts field values under the current key and any old keys."""

    def __init__(self, current_key, old_keys=(), index_key=None):
        self.current_id = key_id(current_key)
        self._current = AESGCM(current_key)
        self._keys = {key_id(k): AESGCM(k) for k in (*old_keys, current_key)}
        # Blind indexes use a key derived from ``index_key`` (the application passes the
        # audit key), never the encryption key itself, so that rotating the encryption key
        # leaves them as they were: the index of a recovery code cannot be recomputed.
        self._index_key = hmac.new(
            index_key or current_key, b"hrdfund-blind-index", hashlib.sha256
        ).digest()
        # The duplicate check across member funds matches under a key of its own, derived
        # from the same secret with its own label: a fund's blind index and the network's
        # never coincide, so no index a fund keeps can be compared with the network's.
        self._network_key = HKDF(
            algorithm=hashes.SHA256(),
            length=KEY_BYTES,
            salt=None,
            info=b"hrdfund-network-duplicate-check",
        ).derive(index_key or current_key)

    def blind_index(self, text):
        """A keyed hash of ``text`` (32 hex characters): equal texts match, and without the
        key nothing can be learned or guessed from it."""
        return hmac.new(self._index_key, text.encode(), hashlib.sha256).hexdigest()[:32]

    def network_index(self, text):
        """The network's keyed hash of ``text`` (64 hex characters), under the key the
        duplicate check across member funds uses and nothing else."""
        return hmac.new(self._network_key, text.encode(), hashlib.sha256).hexdigest()

    def encrypt(self, text, table, column, row):
        """Encrypt ``text`` for one table, column and row."""
        return self.encrypt_bytes(text.encode(), field_aad(table, column, row))

    def decrypt(self, blob, table, column, row):
        """Decrypt a value written by :meth:`encrypt` for the same table, column and row."""
        return self.decrypt_bytes(blob, field_aad(table, column, row)).decode()

    def encrypt_bytes(self, data, aad):
        """Encrypt bytes bound to the associated data ``aad`` (bytes)."""
        nonce = os.urandom(12)
        return VERSION + self.current_id + nonce + self._current.encrypt(nonce, data, aad)

    def decrypt_bytes(self, blob, aad):
        """Decrypt bytes written by :meth:`encrypt_bytes` with the same associated data."""
        blob = bytes(blob)
        if blob[:1] != VERSION or len(blob) < 17 + 16:
            raise DecryptionError("not an hrdfund ciphertext")
        aead = self._keys.get(blob[1:5])
        if aead is None:
            raise DecryptionError("ciphertext under an unknown key")
        try:
            return aead.decrypt(blob[5:17], blob[17:], aad)
        except InvalidTag as exc:
            raise DecryptionError("ciphertext does not verify") from exc

    def reencrypt_bytes(self, blob, aad):
        """``blob`` decrypted and encrypted again under the current key."""
        return self.encrypt_bytes(self.decrypt_bytes(blob, aad), aad)

    def needs_rotation(self, blob):
        """True when ``blob`` was written under a key other than the current one."""
        return bytes(blob)[1:5] != self.current_id
