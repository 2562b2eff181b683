"""Field encryption: bound to table, column and row; rotatable; refusing bad keys."""

import base64
import os

import pytest

from hrdfund import crypto


def _key():
    return os.urandom(32)


def test_round_trip_and_no_plaintext_in_ciphertext():
    cipher = crypto.FieldCipher(_key())
    blob = cipher.encrypt("canary-payee-4411", "disbursements", "payee_details", "r1")
    assert b"canary-payee" not in blob
    assert cipher.decrypt(blob, "disbursements", "payee_details", "r1") == "canary-payee-4411"


@pytest.mark.parametrize(
    "where",
    [("users", "contact", "r2"), ("users", "notes", "r1"), ("applications", "contact", "r1")],
)
def test_a_ciphertext_moved_elsewhere_does_not_decrypt(where):
    """Copying one row's ciphertext into another row, column or table is detected."""
    cipher = crypto.FieldCipher(_key())
    blob = cipher.encrypt("secret", "users", "contact", "r1")
    with pytest.raises(crypto.DecryptionError):
        cipher.decrypt(blob, *where)


def test_tampered_bytes_fail():
    cipher = crypto.FieldCipher(_key())
    blob = bytearray(cipher.encrypt("secret", "t", "c", "r"))
    blob[-1] ^= 1
    with pytest.raises(crypto.DecryptionError):
        cipher.decrypt(bytes(blob), "t", "c", "r")


def test_old_keys_still_read_and_are_marked_for_rotation():
    old, new = _key(), _key()
    blob = crypto.FieldCipher(old).encrypt("secret", "t", "c", "r")
    rotated = crypto.FieldCipher(new, [old])
    assert rotated.decrypt(blob, "t", "c", "r") == "secret"
    assert rotated.needs_rotation(blob)
    assert not rotated.needs_rotation(rotated.encrypt("secret", "t", "c", "r"))
    with pytest.raises(crypto.DecryptionError):
        crypto.FieldCipher(new).decrypt(blob, "t", "c", "r")


@pytest.mark.parametrize(
    "text",
    [
        None,
        "",
        "not base64!",
        base64.b64encode(b"short").decode(),
        base64.b64encode(b"\x00" * 32).decode(),
    ],
)
def test_bad_keys_are_refused(text):
    with pytest.raises(crypto.KeyConfigError):
        crypto.parse_key(text, "HRDFUND_ENCRYPTION_KEY")


def test_generated_keys_are_accepted():
    assert len(crypto.parse_key(crypto.generate_key())) == 32
