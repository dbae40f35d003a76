"""Zero failed requests while every replica is restarted one after the other, under steady load
through a real load balancer (Debian's haproxy): two gateway replicas behind haproxy, two users
replicas behind the gateways (gRPC round robin with health checking)."""

import subprocess
import tempfile
import threading
import time
import unittest
import uuid
from pathlib import Path

from harness import Stack, http_request, local
from replicas import Replica, wait_for

DRAIN_MS = 600


class RollingRestartTest(unittest.TestCase):
    def test_restarting_every_replica_under_load_fails_no_request(self):
        drain = {"shutdown": {"drain_delay_ms": DRAIN_MS, "grace_ms": 5000}}
        work = Path(tempfile.mkdtemp(prefix="trellis-rolling-"))
        with Stack(users_overrides=drain, gateway_overrides=drain) as stack:
            users_a = stack.users_port
            users_b = local.free_port()
            target = f"ipv4:127.0.0.1:{users_a},127.0.0.1:{users_b}"
            users_second = Replica(stack, "users", {
                "TRELLIS_USERS__GRPC__LISTEN": f"127.0.0.1:{users_b}",
                "TRELLIS_USERS__MIGRATE_ON_START": "false"}, work / "users-b.log")
            gateway_ports = [local.free_port(), local.free_port()]
            gateways = [Replica(stack, "gateway", {
                "TRELLIS_GATEWAY__LISTEN__PORT": str(port),
                "TRELLIS_GATEWAY__UPSTREAMS__USERS__TARGET": target}, work / f"gateway-{i}.log")
                for i, port in enumerate(gateway_ports)]
            proxy_port = local.free_port()
            config = work / "haproxy.cfg"
            config.write_text(f"""
global
  maxconn 512
defaults
  mode http
  timeout connect 1s
  timeout client 10s
  timeout server 10s
  retries 3
  option redispatch 1
  retry-on conn-failure empty-response response-timeout
  default-server inter 200ms fall 1 rise 2
frontend api
  bind 127.0.0.1:{proxy_port}
  default_backend gateways
backend gateways
  balance roundrobin
  option httpchk GET /readyz
  http-check expect status 200
""" + "".join(f"  server g{i} 127.0.0.1:{port} check\n" for i, port in enumerate(gateway_ports)))
            proxy = subprocess.Popen(["/usr/sbin/haproxy", "-f", str(config), "-db"],
                                     stdout=open(work / "haproxy.log", "ab"),
                                     stderr=subprocess.STDOUT)
            stop_load = threading.Event()
            results = []
            try:
                users_second.start()
                self.assertTrue(local.wait_for_listen(users_b, 15, lambda: users_second.process.poll() is None))
                for gateway in gateways:
                    gateway.start()
                for port in gateway_ports:
                    self.assertTrue(wait_for(lambda p=port: http_request("127.0.0.1", p, "GET", "/readyz").status == 200))
                self.assertTrue(wait_for(lambda: http_request("127.0.0.1", proxy_port, "GET", "/readyz").status == 200))

                email = f"{uuid.uuid4().hex[:10]}@example.com"
                r = http_request("127.0.0.1", proxy_port, "POST", "/v1/auth/signup",
                                 {"email": email, "password": "correct horse", "display_name": "R"})
                self.assertEqual(r.status, 201, r.body)
                bearer = {"Authorization": f"Bearer {r.json['access_token']}"}

                def load():
                    from harness import KeepAliveSession
                    session = KeepAliveSession("127.0.0.1", proxy_port, timeout=10)
                    while not stop_load.is_set():
                        try:
                            response = session.request("GET", "/v1/users/me", headers=bearer)
                            results.append(response.status)
                        except Exception as error:  # noqa: BLE001 — any failure counts
                            results.append(repr(error))
                        time.sleep(0.005)
                    session.close()

                threads = [threading.Thread(target=load) for _ in range(4)]
                for thread in threads:
                    thread.start()
                time.sleep(1)

                # Gateways, one after the other.
                for gateway, port in zip(gateways, gateway_ports):
                    self.assertEqual(gateway.stop(), 0, "gateway did not exit cleanly")
                    gateway.start()
                    self.assertTrue(wait_for(lambda p=port: http_request("127.0.0.1", p, "GET", "/readyz").status == 200))
                    time.sleep(1)  # haproxy needs `rise` checks before it sends traffic again
                # Users replicas, one after the other.
                self.assertEqual(stack.stop_component("users"), 0)
                stack.start_component("users")
                self.assertTrue(local.wait_for_listen(users_a, 15, lambda: True))
                time.sleep(1.5)
                self.assertEqual(users_second.stop(), 0)
                users_second.start()
                self.assertTrue(local.wait_for_listen(users_b, 15, lambda: True))
                time.sleep(1.5)
            finally:
                stop_load.set()
                for thread in threads if "threads" in locals() else []:
                    thread.join()
                proxy.terminate()
                proxy.wait()
                for gateway in gateways:
                    gateway.stop()
                users_second.stop()

        failures = [r for r in results if r != 200]
        self.assertGreater(len(results), 200, "too little load to prove anything")
        self.assertEqual(failures, [], f"{len(failures)} of {len(results)} requests failed; logs in {work}")


if __name__ == "__main__":
    unittest.main()
