"""The gateway's token verification against tokens forged with an independent library (PyJWT),
and PyJWT verifying our tokens with the JWKS the gateway serves."""

import base64
import json
import time
import unittest
import uuid

import jwt  # Debian's python3-jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from harness import Stack

PASSWORD = "correct horse battery"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class JwtVerificationTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stack = Stack().start()
        cls.addClassCleanup(cls.stack.stop)
        email = f"{uuid.uuid4().hex[:10]}@example.com"
        r = cls.stack.http("POST", "/v1/auth/signup",
                           {"email": email, "password": PASSWORD, "display_name": "Jo"})
        assert r.status == 201, r.body
        cls.auth = r.json
        pem = (cls.stack.keys_dir / f"{cls.stack.kid}.pem").read_bytes()
        cls.private_key = serialization.load_pem_private_key(pem, password=None)
        cls.issuer = cls.stack.users_config["tokens"]["issuer"]
        cls.audience = cls.stack.users_config["tokens"]["audience"]

    def claims(self, **overrides):
        now = int(time.time())
        claims = {"iss": self.issuer, "aud": self.audience, "sub": self.auth["user"]["id"],
                  "iat": now, "exp": now + 300, "jti": uuid.uuid4().hex,
                  "sid": str(uuid.uuid4()), "roles": ["user"]}
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    def forge(self, key=None, kid=None, **overrides):
        return jwt.encode(self.claims(**overrides), key or self.private_key, algorithm="EdDSA",
                          headers={"kid": kid or self.stack.kid})

    def me(self, token):
        return self.stack.http("GET", "/v1/users/me", headers={"Authorization": f"Bearer {token}"})

    def test_pyjwt_verifies_our_token_with_our_jwks(self):
        r = self.stack.http("GET", "/.well-known/jwks.json")
        self.assertEqual(r.status, 200)
        keys = {key["kid"]: key for key in r.json["keys"]}
        token = self.auth["access_token"]
        header = jwt.get_unverified_header(token)
        self.assertEqual(header["alg"], "EdDSA")
        public_key = jwt.PyJWK(keys[header["kid"]]).key
        claims = jwt.decode(token, public_key, algorithms=["EdDSA"], audience=self.audience,
                            issuer=self.issuer)
        self.assertEqual(claims["sub"], self.auth["user"]["id"])
        self.assertEqual(claims["roles"], ["user"])
        self.assertEqual(claims["exp"] - claims["iat"], 900)
        for claim in ("jti", "sid", "kid"):
            self.assertTrue(claims.get(claim) or header.get(claim), claim)

    def test_a_correctly_forged_token_with_our_key_is_accepted(self):
        # Control case: proves the rejections below are about the one thing each one changes.
        self.assertEqual(self.me(self.forge()).status, 200)

    def assertRejected(self, token, why):
        r = self.me(token)
        self.assertEqual(r.status, 401, why)
        self.assertEqual(r.json["code"], "invalid_token", why)

    def test_expired_and_not_yet_valid(self):
        now = int(time.time())
        self.assertRejected(self.forge(exp=now - 120, iat=now - 600), "expired beyond leeway")
        self.assertEqual(self.me(self.forge(exp=now - 5, iat=now - 600)).status, 200,
                         "expired within the 30 s leeway")
        self.assertRejected(self.forge(nbf=now + 300), "nbf in the future")

    def test_wrong_issuer_and_audience(self):
        self.assertRejected(self.forge(iss="someone-else"), "issuer")
        self.assertRejected(self.forge(aud="another-api"), "audience")
        self.assertRejected(self.forge(iss=None), "missing issuer")

    def test_unknown_kid_and_foreign_key(self):
        self.assertRejected(self.forge(kid="no-such-kid"), "unknown kid")
        self.assertRejected(self.forge(key=Ed25519PrivateKey.generate()), "wrong signer")

    def test_alg_none_and_hs256_key_confusion(self):
        header = b64url(json.dumps({"alg": "none", "typ": "JWT", "kid": self.stack.kid}).encode())
        payload = b64url(json.dumps(self.claims()).encode())
        self.assertRejected(f"{header}.{payload}.", "alg none")
        public_raw = self.private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        import hmac, hashlib
        header = b64url(json.dumps({"alg": "HS256", "typ": "JWT", "kid": self.stack.kid}).encode())
        signing_input = f"{header}.{payload}".encode()
        signature = b64url(hmac.new(public_raw, signing_input, hashlib.sha256).digest())
        self.assertRejected(f"{header}.{payload}.{signature}", "HS256 with the public key")

    def test_tampered_payload(self):
        header, payload, signature = self.auth["access_token"].split(".")
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        claims["roles"] = ["user", "admin"]
        forged = b64url(json.dumps(claims).encode())
        self.assertRejected(f"{header}.{forged}.{signature}", "payload changed")


if __name__ == "__main__":
    unittest.main()
