"""Field encryption: bound to table, column and row; tamper-evident; rotatable; bad keys
refused."""

import base64
import os

import pytest

from hrdfund.core import crypto

WHERE = ("users", "contact", "r1")


def _key():
    return os.urandom(32)


@pytest.mark.parametrize(
    "text", ["canary-payee-4411", "", "مدافعة عن حقوق الإنسان", "x" * 5000, '{"a": [1, 2]}']
)
def test_round_trip_without_plaintext_in_the_ciphertext(text):
    """What goes in comes out whole, and the stored bytes do not show it."""
    cipher = crypto.FieldCipher(_key())
    blob = cipher.encrypt(text, *WHERE)
    assert cipher.decrypt(blob, *WHERE) == text
    if text:
        assert text.encode() not in blob


def test_the_same_value_encrypts_differently_each_time():
    """Equal secrets (two defenders in the same town) do not show as equal ciphertexts."""
    cipher = crypto.FieldCipher(_key())
    assert cipher.encrypt("Goma", *WHERE) != cipher.encrypt("Goma", *WHERE)


@pytest.mark.parametrize(
    "where",
    [
        ("users", "contact", "r2"),
        ("users", "totp_secret", "r1"),
        ("applications", "contact", "r1"),
        ("references", "contact", "r1"),
    ],
    ids=["other-row", "other-column", "other-table", "other-table-same-column"],
)
def test_a_ciphertext_moved_elsewhere_does_not_decrypt(where):
    """Copying one row's ciphertext into another row, column or table is detected."""
    cipher = crypto.FieldCipher(_key())
    blob = cipher.encrypt("secret", *WHERE)
    with pytest.raises(crypto.DecryptionError):
        cipher.decrypt(blob, *where)


@pytest.mark.parametrize(
    "position",
    [0, 1, 5, 16, 17, -1],
    ids=["version", "key-id", "nonce", "nonce-end", "sealed-data", "tag"],
)
def test_tampered_bytes_fail(position):
    """One flipped bit anywhere in the stored value is refused, never decrypted to junk."""
    cipher = crypto.FieldCipher(_key())
    blob = bytearray(cipher.encrypt("secret", *WHERE))
    blob[position] ^= 1
    with pytest.raises(crypto.DecryptionError):
        cipher.decrypt(bytes(blob), *WHERE)


@pytest.mark.parametrize("cut", [1, 16, 40])
def test_truncated_ciphertexts_fail(cut):
    cipher = crypto.FieldCipher(_key())
    blob = cipher.encrypt("secret", *WHERE)
    with pytest.raises(crypto.DecryptionError):
        cipher.decrypt(blob[:-cut], *WHERE)


def test_old_keys_still_read_and_are_marked_for_rotation():
    """After rotation old values read, and only those need re-encrypting."""
    old, new = _key(), _key()
    blob = crypto.FieldCipher(old).encrypt("secret", *WHERE)
    rotated = crypto.FieldCipher(new, [old])
    assert rotated.decrypt(blob, *WHERE) == "secret"
    assert rotated.needs_rotation(blob)
    fresh = rotated.encrypt("secret", *WHERE)
    assert not rotated.needs_rotation(fresh)
    assert crypto.FieldCipher(old).needs_rotation(fresh)


def test_a_ciphertext_under_an_unknown_key_does_not_decrypt():
    """Once the old key is dropped, or with a stolen database and no key, nothing reads."""
    blob = crypto.FieldCipher(_key()).encrypt("secret", *WHERE)
    with pytest.raises(crypto.DecryptionError):
        crypto.FieldCipher(_key()).decrypt(blob, *WHERE)


def test_key_ids_name_keys_without_revealing_them():
    key = _key()
    assert crypto.key_id(key) == crypto.key_id(bytes(key))
    assert crypto.key_id(key) != crypto.key_id(_key())
    assert crypto.key_id(key) not in key


@pytest.mark.parametrize(
    "text",
    [
        None,
        "",
        "not base64!",
        "////",
        base64.b64encode(b"short").decode(),
        base64.b64encode(os.urandom(31)).decode(),
        base64.b64encode(os.urandom(33)).decode(),
        base64.b64encode(b"\x00" * 32).decode(),
        base64.b64encode(b"abcd" * 8).decode(),
    ],
    ids=["none", "empty", "not-base64", "too-few-bytes", "short", "31", "33", "zeros", "pattern"],
)
def test_bad_keys_are_refused(text):
    """A missing, malformed, short or weak key stops the app instead of weakening it."""
    with pytest.raises(crypto.KeyConfigError, match="HRDFUND_ENCRYPTION_KEY"):
        crypto.parse_key(text, "HRDFUND_ENCRYPTION_KEY")


def test_generated_keys_are_accepted_and_distinct():
    first, second = crypto.generate_key(), crypto.generate_key()
    assert first != second
    assert crypto.parse_key(first) == base64.b64decode(first)
    assert len(crypto.parse_key(f"  {second}\n")) == 32
