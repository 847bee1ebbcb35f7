"""Runs localstripe (the Stripe emulator) bound to 127.0.0.1 with a private state file.

localstripe's own command listens on every interface and keeps its state in
/tmp/localstripe.pickle, shared by every copy on the machine. This runner fixes both, and
makes it announce payment method attach/detach and setup intent success like Stripe, and
list a customer's PaymentIntents.
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


def _emit_missing_events() -> None:
    """Stripe sends payment_method.attached/detached and setup_intent.succeeded; localstripe
    does not. Wrap its handlers so the emulator announces them like Stripe does."""
    from localstripe import resources
    from localstripe.webhooks import schedule_webhook

    def announcing(original, event_type, succeeded=lambda obj: True):
        def handler(id, **kwargs):
            obj = original(id, **kwargs)
            if succeeded(obj):
                schedule_webhook(resources.Event(event_type, obj))
            return obj

        return handler

    wrapped = {
        "/v1/payment_methods/{id}/attach": "payment_method.attached",
        "/v1/payment_methods/{id}/detach": "payment_method.detached",
        "/v1/setup_intents/{id}/confirm": "setup_intent.succeeded",
    }
    for index, (method, url, func) in enumerate(resources.extra_apis):
        if url in wrapped:
            check = (
                (lambda obj: obj.status == "succeeded")
                if "setup_intents" in url
                else (lambda obj: True)
            )
            resources.extra_apis[index] = (method, url, announcing(func, wrapped[url], check))


def _filter_payment_intents_by_customer() -> None:
    """Stripe lists a customer's PaymentIntents (`?customer=`); localstripe refuses any
    filter. Collection looks an attempt's charge up that way after a crash."""
    from localstripe import resources

    original = resources.PaymentIntent._api_list_all.__func__

    def list_all(cls, url, customer=None, limit=None, starting_after=None, **kwargs):
        listed = original(cls, url, limit=limit, starting_after=starting_after, **kwargs)
        if customer is not None:
            listed._list = [pi for pi in listed._list if pi.customer == customer]
        return listed

    resources.PaymentIntent._api_list_all = classmethod(list_all)


def serve(*, host: str, port: int, state: str | None) -> None:
    _patch_state_path(state)
    _emit_missing_events()
    _filter_payment_intents_by_customer()
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
