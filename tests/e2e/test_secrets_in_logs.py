"""After a full run of the auth flow, no secret appears in any component's log: passwords,
access and refresh tokens, the database password, the signing key."""

import unittest
import uuid

from harness import Stack


class SecretsInLogsTest(unittest.TestCase):
    def test_logs_of_a_full_flow_hold_no_secret(self):
        password = f"Pw-{uuid.uuid4().hex}"
        with Stack(users_overrides={"log_level": "debug"},
                   gateway_overrides={"log_level": "debug"}) as stack:
            email = f"{uuid.uuid4().hex[:10]}@example.com"
            r = stack.http("POST", "/v1/auth/signup",
                           {"email": email, "password": password, "display_name": "S"})
            self.assertEqual(r.status, 201)
            first = r.json
            r = stack.http("POST", "/v1/auth/login", {"email": email, "password": password})
            login = r.json
            stack.http("POST", "/v1/auth/login", {"email": email, "password": password + "x"})
            bearer = {"Authorization": f"Bearer {login['access_token']}"}
            stack.http("GET", "/v1/users/me", headers=bearer)
            r = stack.http("POST", "/v1/auth/refresh", {"refresh_token": login["refresh_token"]})
            rotated = r.json
            stack.http("POST", "/v1/auth/refresh", {"refresh_token": login["refresh_token"]})
            stack.http("POST", "/v1/auth/logout",
                       headers={"Authorization": f"Bearer {first['access_token']}"})
            stack.http("GET", "/v1/users/me", headers=bearer)
            key_pem = (stack.keys_dir / f"{stack.kid}.pem").read_text()
            stack.stop()
            logs = stack.gateway_log_text() + stack.users_log_text() + stack.orders_log_text()

        self.assertIn("effective configuration", logs)  # the config was logged...
        self.assertIn("<redacted>", logs)                # ...with its secrets redacted
        secrets = {
            "password": password,
            "wrong password": password + "x",
            "access token": login["access_token"],
            "first access token": first["access_token"],
            "rotated access token": rotated["access_token"],
            "refresh token": login["refresh_token"],
            "rotated refresh token": rotated["refresh_token"],
            "access token signature": login["access_token"].split(".")[2],
            "database password": stack.db_password,
            "signing key": key_pem.splitlines()[1],
        }
        for name, secret in secrets.items():
            self.assertNotIn(secret, logs, f"the {name} appears in the logs")


if __name__ == "__main__":
    unittest.main()
