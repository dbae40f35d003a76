#!/usr/bin/python3
"""Interoperability of Trellis JWTs with an independent implementation (PyJWT + cryptography).

Usage: pyjwt_interop.py PATH_TO_jwt_interop_tool

Tokens signed by Trellis must verify with PyJWT given only our JWKS, and tokens signed by PyJWT
must verify with Trellis; tampering must be caught on both sides.
"""
import base64
import json
import os
import subprocess
import sys
import tempfile
import time
import unittest

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm

ISSUER = "trellis-test"
AUDIENCE = "trellis-api"
TOOL = None  # set from the command line


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64url_encode(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TrellisSignedTokens(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        with tempfile.TemporaryDirectory() as out_dir:
            subprocess.run([TOOL, out_dir], check=True)
            with open(os.path.join(out_dir, "token.txt")) as f:
                cls.token = f.read().strip()
            with open(os.path.join(out_dir, "jwks.json")) as f:
                cls.jwks = json.load(f)

    def decode(self, token):
        kid = jwt.get_unverified_header(token)["kid"]
        jwk = next(k for k in self.jwks["keys"] if k["kid"] == kid)
        return jwt.decode(
            token,
            key=jwt.PyJWK(jwk).key,
            algorithms=["EdDSA"],
            issuer=ISSUER,
            audience=AUDIENCE,
            options={"require": ["exp", "iat", "iss", "aud", "sub", "jti"]},
        )

    def test_jwks_is_standard_okp(self):
        self.assertEqual(len(self.jwks["keys"]), 1)
        key = self.jwks["keys"][0]
        self.assertEqual(
            {k: key[k] for k in ("kty", "crv", "alg", "use", "kid")},
            {"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": "interop-1"},
        )
        self.assertEqual(len(b64url_decode(key["x"])), 32)
        self.assertNotIn("d", key)
        self.assertEqual(len(jwt.PyJWKSet.from_dict(self.jwks).keys), 1)

    def test_header(self):
        self.assertEqual(
            jwt.get_unverified_header(self.token),
            {"alg": "EdDSA", "typ": "JWT", "kid": "interop-1"},
        )

    def test_pyjwt_verifies_claims(self):
        claims = self.decode(self.token)
        self.assertEqual(claims["iss"], ISSUER)
        self.assertEqual(claims["aud"], AUDIENCE)
        self.assertEqual(claims["sub"], "user-1234")
        self.assertEqual(claims["jti"], "jti-5678")
        self.assertEqual(claims["sid"], "session-9abc")
        self.assertEqual(claims["roles"], ["user", "admin"])
        self.assertEqual(claims["exp"] - claims["iat"], 300)
        self.assertLessEqual(abs(claims["iat"] - time.time()), 60)

    def test_flipped_signature_byte_is_rejected(self):
        header, payload, signature = self.token.split(".")
        raw = bytearray(b64url_decode(signature))
        raw[10] ^= 0x01
        with self.assertRaises(jwt.InvalidSignatureError):
            self.decode(".".join([header, payload, b64url_encode(bytes(raw))]))

    def test_tampered_payload_is_rejected(self):
        header, payload, signature = self.token.split(".")
        claims = json.loads(b64url_decode(payload))
        claims["roles"].append("root")
        forged = b64url_encode(json.dumps(claims).encode())
        with self.assertRaises(jwt.InvalidSignatureError):
            self.decode(".".join([header, forged, signature]))

    def test_wrong_audience_is_rejected(self):
        with self.assertRaises(jwt.InvalidAudienceError):
            jwk = self.jwks["keys"][0]
            jwt.decode(self.token, jwt.PyJWK(jwk).key, algorithms=["EdDSA"], audience="other")


class PyJwtSignedTokens(unittest.TestCase):
    """The other direction: our verifier judges tokens PyJWT made."""

    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.private_key = Ed25519PrivateKey.generate()
        jwk = json.loads(OKPAlgorithm.to_jwk(self.private_key.public_key()))
        jwk.update({"kid": "py-1", "alg": "EdDSA", "use": "sig"})
        self.jwks_path = os.path.join(self.dir.name, "jwks.json")
        with open(self.jwks_path, "w") as f:
            json.dump({"keys": [jwk]}, f)
        self.raw_public_key = b64url_decode(jwk["x"])

    def tearDown(self):
        self.dir.cleanup()

    def payload(self, **changes):
        now = int(time.time())
        claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "user-py", "jti": "jti-py",
                  "sid": "sid-py", "roles": ["user"], "iat": now, "exp": now + 300}
        claims.update(changes)
        return claims

    def trellis_verify(self, token):
        token_path = os.path.join(self.dir.name, "token.txt")
        with open(token_path, "w") as f:
            f.write(token)
        run = subprocess.run([TOOL, "--verify", self.jwks_path, token_path],
                             capture_output=True, text=True)
        self.assertIn(run.returncode, (0, 1), run.stderr)
        return json.loads(run.stdout)

    def sign(self, payload, **kwargs):
        return jwt.encode(payload, self.private_key, algorithm="EdDSA",
                          headers={"kid": "py-1"}, **kwargs)

    def test_trellis_verifies_pyjwt_token(self):
        payload = self.payload(aud=["other-api", AUDIENCE])
        result = self.trellis_verify(self.sign(payload))
        self.assertEqual(result["error"], "none")
        claims = result["claims"]
        self.assertEqual(claims["sub"], "user-py")
        self.assertEqual(claims["jti"], "jti-py")
        self.assertEqual(claims["sid"], "sid-py")
        self.assertEqual(claims["roles"], ["user"])
        self.assertEqual(claims["aud"], AUDIENCE)
        self.assertEqual(claims["exp"], payload["exp"])

    def test_trellis_rejects_expired_token(self):
        now = int(time.time())
        token = self.sign(self.payload(iat=now - 1000, exp=now - 100))
        self.assertEqual(self.trellis_verify(token)["error"], "expired")

    def test_trellis_rejects_unknown_kid(self):
        token = jwt.encode(self.payload(), self.private_key, algorithm="EdDSA",
                           headers={"kid": "py-2"})
        self.assertEqual(self.trellis_verify(token)["error"], "unknown_key")

    def test_trellis_rejects_hs256_keyed_with_public_key(self):
        token = jwt.encode(self.payload(), self.raw_public_key, algorithm="HS256",
                           headers={"kid": "py-1"})
        self.assertEqual(self.trellis_verify(token)["error"], "unsupported_algorithm")

    def test_trellis_rejects_alg_none(self):
        token = jwt.encode(self.payload(), None, algorithm="none", headers={"kid": "py-1"})
        self.assertEqual(self.trellis_verify(token)["error"], "unsupported_algorithm")

    def test_trellis_rejects_other_signer(self):
        other = Ed25519PrivateKey.generate()
        token = jwt.encode(self.payload(), other, algorithm="EdDSA", headers={"kid": "py-1"})
        self.assertEqual(self.trellis_verify(token)["error"], "bad_signature")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: pyjwt_interop.py PATH_TO_jwt_interop_tool")
    TOOL = sys.argv.pop(1)
    unittest.main()
