"""Talking to the emulators the suite starts: localstripe for Stripe, and waiting for a
server or a condition to come true."""

import socket
import time

import requests

STRIPE_TEST_KEY = "sk_test_" + "x" * 24


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_http(url: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            requests.get(url, timeout=0.5)
            return
        except requests.ConnectionError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up within {timeout}s")


def wait_until(predicate, timeout: float = 15.0, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


def stripe_get(base: str, path: str) -> dict:
    response = requests.get(
        f"{base}/v1/{path}", headers={"Authorization": f"Bearer {STRIPE_TEST_KEY}"}, timeout=5
    )
    response.raise_for_status()
    return response.json()
