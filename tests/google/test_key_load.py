"""A service-account key is loaded without cryptography's primality tests (providers.google.auth._rsa_signer):
the credentials are google-auth's own, and a damaged key still fails as it did."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from preflight.errors import InputError
from preflight.memo import RunMemo
from preflight_providers.google.auth import ServiceAccountSigner, key_credentials, load_key_file
from tests.google.fake import FakeGoogle, rsa_key

ADMIN = "admin@tailspin.example"


def _der_int(value: int) -> bytes:
    raw = value.to_bytes(value.bit_length() // 8 + 1, "big")
    return b"\x02" + _der_len(len(raw)) + raw


def _der_len(size: int) -> bytes:
    if size < 0x80:
        return bytes([size])
    raw = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def _pkcs1(n: int, e: int, d: int, p: int, q: int, dmp1: int, dmq1: int, iqmp: int) -> str:
    """An RSA private key as PEM, with whatever numbers it is given (cryptography refuses to write bad ones)."""
    body = b"".join(_der_int(x) for x in (0, n, e, d, p, q, dmp1, dmq1, iqmp))
    der = b"\x30" + _der_len(len(body)) + body
    lines = [base64.b64encode(der)[i:i + 64].decode() for i in range(0, len(base64.b64encode(der)), 64)]
    return "-----BEGIN RSA PRIVATE KEY-----\n" + "\n".join(lines) + "\n-----END RSA PRIVATE KEY-----\n"


def _numbers() -> dict[str, int]:
    k = rsa_key().private_numbers()
    return {"n": k.public_numbers.n, "e": k.public_numbers.e, "d": k.d, "p": k.p, "q": k.q, "dmp1": k.dmp1,
            "dmq1": k.dmq1, "iqmp": k.iqmp}


def _key_file(tmp_path: Path, pem: str) -> Path:
    path = tmp_path / "key.json"
    path.write_text(json.dumps({"type": "service_account", "client_email": "sa@acme.iam.gserviceaccount.com",
                                "client_id": "1", "private_key": pem, "private_key_id": "kid1",
                                "token_uri": "https://oauth2.googleapis.com/token"}))
    return path


def test_the_credentials_are_google_auths_own(tmp_path: Path) -> None:
    from google.oauth2 import service_account

    info = load_key_file(FakeGoogle([], tmp_path).key_file(tmp_path)).info
    ours = key_credentials(info, RunMemo())
    theirs = service_account.Credentials.from_service_account_info(info)
    for name in ("service_account_email", "signer_email", "project_id", "universe_domain", "_token_uri",
                 "_trust_boundary", "_subject", "_scopes", "_always_use_jwt_access"):
        assert getattr(ours, name) == getattr(theirs, name), name
    assert ours.signer.key_id == theirs.signer.key_id == info["private_key_id"]
    assert ours.signer.sign(b"assertion") == theirs.signer.sign(b"assertion")  # PKCS#1 v1.5: deterministic


@pytest.mark.parametrize("damage", ["n", "e", "d", "p", "q", "dmp1", "dmq1", "iqmp"])
def test_a_key_with_damaged_numbers_fails_as_before(tmp_path: Path, damage: str) -> None:
    from google.oauth2 import service_account

    numbers = _numbers()
    numbers[damage] += 2  # odd stays odd: what a flipped bit in the file does to one number
    path = _key_file(tmp_path, _pkcs1(**numbers))
    with pytest.raises(ValueError):  # what google-auth's own loading (which validates the key) says of it
        service_account.Credentials.from_service_account_info(load_key_file(path).info)
    with pytest.raises(InputError) as info:
        ServiceAccountSigner(load_key_file(path), ADMIN)
    assert str(info.value) == f"{path}: the private key does not load (ValueError)"


def test_the_undamaged_numbers_load(tmp_path: Path) -> None:
    """The PEM writer above is sound: the damage, not the encoding, is what the test before refuses."""
    path = _key_file(tmp_path, _pkcs1(**_numbers()))
    ServiceAccountSigner(load_key_file(path), ADMIN)


def test_a_key_that_is_no_rsa_key_fails_as_before(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec
    from google.oauth2 import service_account

    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    info = load_key_file(_key_file(tmp_path, pem)).info
    theirs = service_account.Credentials.from_service_account_info(info)
    ours = key_credentials(info, RunMemo())
    with pytest.raises(Exception) as before:
        theirs.signer.sign(b"assertion")
    with pytest.raises(type(before.value)):
        ours.signer.sign(b"assertion")
