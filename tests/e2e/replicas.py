"""Helpers for tests that run more than one process: extra replicas of a stack's components (the
same config file, with environment overrides TRELLIS_<COMPONENT>__KEY__SUB=value for ports and
targets) and waiting for a condition while processes start or stop."""

import os
import signal
import subprocess
import time

from harness import local


class Replica:
    """One extra process started from a stack's config file plus environment overrides."""

    def __init__(self, stack, name, overrides, log_path):
        self.argv = [str(local.binary_path(stack.build_dir, name)), "--config",
                     str(stack.config_paths[name])]
        self.env = dict(os.environ, **overrides)
        self.log_path = log_path
        self.process = None

    def start(self):
        self.process = subprocess.Popen(self.argv, env=self.env, stdout=open(self.log_path, "ab"),
                                        stderr=subprocess.STDOUT)

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode if self.process else None


def wait_for(predicate, timeout=15.0, interval=0.05):
    """Polls `predicate` until it is true or `timeout` passes; connection errors count as false
    (the process being waited for may not listen yet)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return True
        except OSError:
            pass
        time.sleep(interval)
    return False
