"""The whole token life cycle through the real gateway and users service, over HTTP."""

import unittest
import uuid

from harness import Stack

PASSWORD = "correct horse battery"


class AuthFlowTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stack = Stack().start()
        cls.addClassCleanup(cls.stack.stop)

    def signup(self, email=None, display_name="Ann"):
        email = email or f"{uuid.uuid4().hex[:10]}@example.com"
        r = self.stack.http("POST", "/v1/auth/signup",
                            {"email": email, "password": PASSWORD, "display_name": display_name})
        self.assertEqual(r.status, 201, r.body)
        return email, r.json

    def bearer(self, token):
        return {"Authorization": f"Bearer {token}"}

    def test_full_flow(self):
        email, signed_up = self.signup(display_name="Ann")
        self.assertEqual(set(signed_up), {"user", "access_token", "refresh_token", "token_type",
                                          "expires_in"})
        self.assertEqual(signed_up["token_type"], "Bearer")
        self.assertEqual(signed_up["expires_in"], 900)
        self.assertEqual(set(signed_up["user"]), {"id", "email", "display_name", "roles",
                                                  "created_at"})
        self.assertNotIn("password", signed_up["user"])
        self.assertNotIn("password_hash", signed_up["user"])

        # login: 200, same shape, a different session
        r = self.stack.http("POST", "/v1/auth/login", {"email": email.upper(), "password": PASSWORD})
        self.assertEqual(r.status, 200, r.body)
        login = r.json
        self.assertEqual(login["user"]["id"], signed_up["user"]["id"])

        # me
        r = self.stack.http("GET", "/v1/users/me", headers=self.bearer(login["access_token"]))
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.json["email"], email)
        self.assertEqual(r.json["roles"], ["user"])

        # update
        r = self.stack.http("PATCH", "/v1/users/me", {"display_name": "Ann B."},
                            headers=self.bearer(login["access_token"]))
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.json["display_name"], "Ann B.")
        r = self.stack.http("GET", "/v1/users/me", headers=self.bearer(login["access_token"]))
        self.assertEqual(r.json["display_name"], "Ann B.")

        # refresh rotation
        r = self.stack.http("POST", "/v1/auth/refresh", {"refresh_token": login["refresh_token"]})
        self.assertEqual(r.status, 200, r.body)
        rotated = r.json
        self.assertNotEqual(rotated["refresh_token"], login["refresh_token"])
        r = self.stack.http("GET", "/v1/users/me", headers=self.bearer(rotated["access_token"]))
        self.assertEqual(r.status, 200)

        # reuse detection: the old refresh token again → 401, and the family is gone
        r = self.stack.http("POST", "/v1/auth/refresh", {"refresh_token": login["refresh_token"]})
        self.assertEqual(r.status, 401, r.body)
        self.assertEqual(r.json["code"], "unauthenticated")
        r = self.stack.http("POST", "/v1/auth/refresh", {"refresh_token": rotated["refresh_token"]})
        self.assertEqual(r.status, 401)
        # access tokens of the revoked session stop at the gateway at once
        r = self.stack.http("GET", "/v1/users/me", headers=self.bearer(rotated["access_token"]))
        self.assertEqual(r.status, 401)
        self.assertEqual(r.json["code"], "token_revoked")

        # the signup session is independent and still works; log it out
        token = signed_up["access_token"]
        r = self.stack.http("GET", "/v1/users/me", headers=self.bearer(token))
        self.assertEqual(r.status, 200)
        r = self.stack.http("POST", "/v1/auth/logout", headers=self.bearer(token))
        self.assertEqual(r.status, 204, r.body)
        self.assertEqual(r.body, b"")
        # old tokens refused
        r = self.stack.http("GET", "/v1/users/me", headers=self.bearer(token))
        self.assertEqual(r.status, 401)
        self.assertEqual(r.json["code"], "token_revoked")
        self.assertIn("invalid_token", r.headers.get("www-authenticate", ""))
        r = self.stack.http("POST", "/v1/auth/refresh", {"refresh_token": signed_up["refresh_token"]})
        self.assertEqual(r.status, 401)

    def test_wrong_email_and_wrong_password_give_the_same_401(self):
        email, _ = self.signup()
        wrong_password = self.stack.http("POST", "/v1/auth/login",
                                         {"email": email, "password": "not the password"})
        wrong_email = self.stack.http("POST", "/v1/auth/login",
                                      {"email": "nobody-" + email, "password": PASSWORD})
        self.assertEqual(wrong_password.status, 401)
        self.assertEqual(wrong_email.status, 401)
        self.assertEqual(wrong_password.json["code"], wrong_email.json["code"])
        self.assertEqual(wrong_password.json["message"], wrong_email.json["message"])

    def test_duplicate_email_is_409_regardless_of_case(self):
        email, _ = self.signup()
        r = self.stack.http("POST", "/v1/auth/signup",
                            {"email": email.upper(), "password": PASSWORD, "display_name": "B"})
        self.assertEqual(r.status, 409)
        self.assertEqual(r.json["code"], "already_exists")

    def test_invalid_signup_is_400_naming_the_field(self):
        r = self.stack.http("POST", "/v1/auth/signup",
                            {"email": "not-an-email", "password": PASSWORD, "display_name": "A"})
        self.assertEqual(r.status, 400)
        self.assertEqual(r.json["code"], "invalid_argument")
        self.assertIn("email", r.json["message"])
        r = self.stack.http("POST", "/v1/auth/signup",
                            {"email": "a@example.com", "password": "short", "display_name": "A"})
        self.assertEqual(r.status, 400)
        self.assertIn("password", r.json["message"])

    def test_admin_only_route(self):
        email, user = self.signup()
        target = user["user"]["id"]
        r = self.stack.http("GET", f"/v1/users/{target}", headers=self.bearer(user["access_token"]))
        self.assertEqual(r.status, 403)
        self.assertEqual(r.json["code"], "permission_denied")
        self.assertEqual(self.stack.grant_role(email, "admin"), 0)
        self.assertEqual(self.stack.grant_role("nobody@example.com", "admin"), 2)
        # roles are in the token: they take effect with the next token
        r = self.stack.http("POST", "/v1/auth/refresh", {"refresh_token": user["refresh_token"]})
        self.assertEqual(r.status, 200)
        admin_token = r.json["access_token"]
        self.assertIn("admin", r.json["user"]["roles"])
        r = self.stack.http("GET", f"/v1/users/{target}", headers=self.bearer(admin_token))
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.json["id"], target)
        r = self.stack.http("GET", f"/v1/users/{uuid.uuid4()}", headers=self.bearer(admin_token))
        self.assertEqual(r.status, 404)
        self.assertEqual(r.json["code"], "not_found")
        r = self.stack.http("GET", "/v1/users/not-a-uuid", headers=self.bearer(admin_token))
        self.assertEqual(r.status, 400)

    def test_requests_without_a_token_are_401(self):
        for method, path in (("GET", "/v1/users/me"), ("PATCH", "/v1/users/me"),
                             ("POST", "/v1/auth/logout"), ("GET", f"/v1/users/{uuid.uuid4()}")):
            r = self.stack.http(method, path)
            self.assertEqual(r.status, 401, (method, path))
            self.assertEqual(r.json["code"], "unauthenticated")
            self.assertTrue(r.headers["www-authenticate"].startswith("Bearer"))
        r = self.stack.http("GET", "/v1/users/me", headers={"Authorization": "Basic abc"})
        self.assertEqual(r.status, 401)
        r = self.stack.http("GET", "/v1/users/me", headers={"Authorization": "Bearer x.y.z"})
        self.assertEqual(r.status, 401)
        self.assertEqual(r.json["code"], "invalid_token")

    def test_keep_alive_serves_many_requests_on_one_connection(self):
        _, user = self.signup()
        with self.stack.keepalive_session() as session:
            for _ in range(20):
                r = session.request("GET", "/v1/users/me", headers=self.bearer(user["access_token"]))
                self.assertEqual(r.status, 200)
            self.assertEqual(session.connections_opened, 1)


if __name__ == "__main__":
    unittest.main()
