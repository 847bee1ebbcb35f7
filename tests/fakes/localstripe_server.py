"""Runs localstripe (the Stripe emulator) bound to 127.0.0.1 with a private state file.

localstripe's own command listens on every interface and keeps its state in
/tmp/localstripe.pickle, shared by every copy on the machine. This runner fixes both.
Used by the tests' fixture and by `make run`:

    python -m tests.fakes.localstripe_server --port 8420 --state /path/state.pickle
"""

import argparse
import logging
import pickle
import socket


def _patch_state_path(path: str | None) -> None:
    from localstripe import resources

    def load(self):
        if path is None:
            return
        try:
            with open(path, "rb") as f:
                old = pickle.load(f)
        except FileNotFoundError:
            return
        self.clear()
        self.update(old)

    def dump(self):
        if path is None:
            return
        with open(path, "wb") as f:
            pickle.dump(dict(self), f, protocol=pickle.HIGHEST_PROTOCOL)

    resources.Store.try_load_from_disk = load
    resources.Store.dump_to_disk = dump


def serve(*, host: str, port: int, state: str | None) -> None:
    _patch_state_path(state)
    from aiohttp import web
    from localstripe.server import app, store

    store.try_load_from_disk()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    logging.basicConfig(level=logging.WARNING)
    web.run_app(app, sock=sock, access_log=None, print=None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8420)
    parser.add_argument("--state", default=None, help="state file; none = in memory only")
    args = parser.parse_args()
    serve(host=args.host, port=args.port, state=args.state)


if __name__ == "__main__":
    main()
