"""Extra replicas of a stack's components for tests that need more than one: the same config
file, with environment overrides (TRELLIS_<COMPONENT>__KEY__SUB=value) for ports and targets."""

import os
import signal
import subprocess

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
