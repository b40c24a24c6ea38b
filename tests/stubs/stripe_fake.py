"""Stripe for the billing tests: localstripe, and an HTTP-level fake of what it lacks in front of it.

localstripe (PyPI) is a stateful local Stripe: customers, products, plans, subscriptions and
invoices behave as Stripe's do, and the official `stripe` client talks to it unchanged. It has no
Prices, no Checkout and no Billing Portal, so `StripeFake` serves those itself, following Stripe's
documented shapes (https://docs.stripe.com/api/prices, /api/checkout/sessions,
/api/customer_portal/sessions), and passes every other request through to localstripe:

- `POST /v1/prices` makes a price (lookup keys, `transfer_lookup_key`, idempotency keys honoured)
  and, under the same id, a localstripe plan, as Stripe itself does for recurring prices, so a
  subscription in localstripe can be made on it; `GET /v1/prices` lists by `lookup_keys[]` and
  `active`; `GET /v1/prices/{id}`.
- `POST /v1/checkout/sessions` (mode `subscription`) answers an open session with its `url`;
  `complete_checkout(id)` does what a paying customer would: makes the subscription in
  localstripe and answers the `checkout.session.completed` event Stripe would send.
- `POST /v1/billing_portal/sessions` answers a portal session with its `url` (and its `flow`
  when one is asked for, e.g. `subscription_update`).
- The `url`s it hands out (Checkout, the portal, invoices and their PDFs) answer a small HTML page
  naming what they stand for, so a browser sent there arrives somewhere.
- Invoices from localstripe get the fields Stripe's have and it lacks: `created`, `number`,
  `hosted_invoice_url` and `invoice_pdf`.

Both run on free local ports and are stopped by `close()`; `requests` counts what reached the fake.
"""

from __future__ import annotations

import itertools
import json
import secrets
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def decode_form(body: str) -> dict[str, Any]:
    """Stripe's form encoding (`a[b][0][c]=v`) as nested dicts and lists."""
    root: dict[str, Any] = {}
    for key, value in parse_qsl(body, keep_blank_values=True):
        parts = key.replace("]", "").split("[")
        node: Any = root
        for part, following in itertools.pairwise(parts):
            container: Any = [] if following.isdigit() else {}
            if isinstance(node, list):
                index = int(part)
                while len(node) <= index:
                    node.append(None)
                if node[index] is None:
                    node[index] = container
                node = node[index]
            else:
                node = node.setdefault(part, container)
        last = parts[-1]
        if isinstance(node, list):
            index = int(last)
            while len(node) <= index:
                node.append(None)
            node[index] = value
        else:
            node[last] = value
    return root


def encode_form(data: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """The inverse of `decode_form`, for requests passed on to localstripe."""
    pairs: list[tuple[str, str]] = []
    for key, value in data.items():
        name = f"{prefix}[{key}]" if prefix else key
        if isinstance(value, dict):
            pairs.extend(encode_form(value, name))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                pairs.extend(encode_form({str(index): item}, name))
        else:
            pairs.append((name, str(value)))
    return pairs


class StripeError(Exception):
    def __init__(self, status: int, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.param = status, param


class StripeFake:
    """localstripe on one free port, the fake on another; `base` is what STRIPE_API_BASE names."""

    def __init__(self) -> None:
        self.localstripe_port = free_port()
        self.localstripe = f"http://127.0.0.1:{self.localstripe_port}"
        self.prices: dict[str, dict[str, Any]] = {}
        self.checkouts: dict[str, dict[str, Any]] = {}
        self.portals: dict[str, dict[str, Any]] = {}
        self.idempotent: dict[str, tuple[int, bytes]] = {}
        self.requests: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._server: ThreadingHTTPServer | None = None
        self.base = ""

    def start(self) -> StripeFake:
        executable = shutil.which("localstripe", path=str(Path(sys.executable).parent))
        if executable is None:
            raise RuntimeError("localstripe is not installed in this environment (pip install -e '.[test]')")
        self._process = subprocess.Popen([executable, "--port", str(self.localstripe_port)],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"{self.localstripe}/v1/customers", auth=("sk_test_x", ""), timeout=1)
                break
            except httpx.TransportError:
                if self._process.poll() is not None or time.monotonic() > deadline:
                    self.close()
                    raise RuntimeError("localstripe did not start") from None
                time.sleep(0.1)
        # localstripe keeps its objects in /tmp/localstripe.pickle and loads that file when it
        # starts: whatever another run left there is dropped, so every fake starts empty
        httpx.delete(f"{self.localstripe}/_config/data", timeout=10).raise_for_status()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                fake._handle(self, "GET")

            def do_POST(self) -> None:
                fake._handle(self, "POST")

            def do_DELETE(self) -> None:
                fake._handle(self, "DELETE")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None

    # -- request handling ------------------------------------------------------------------------

    def _page(self, handler: BaseHTTPRequestHandler, path: str) -> bool:
        """The pages a browser is sent to (the Checkout page, the Billing Portal, an invoice's
        PDF link): a small HTML page naming what it stands for, so a browser test sees where it
        arrived; False for any other path."""
        parts = path.strip("/").split("/")
        known = {"pay": self.checkouts, "portal": self.portals}
        if len(parts) == 2 and parts[0] in known and parts[1] in known[parts[0]]:
            title = {"pay": "Stripe Checkout", "portal": "Stripe Billing Portal"}[parts[0]]
        elif parts[0] == "invoice" and len(parts) in (2, 3):
            title = "Stripe invoice" + (" PDF" if parts[-1] == "pdf" else "")
        else:
            return False
        page = (f'<!doctype html><html><head><title>{title} (fake)</title><link rel="icon" href="data:,">'
                f'</head><body><h1 id="stripe-page">{title}</h1><p id="stripe-object">{parts[1]}</p>'
                "</body></html>").encode()
        handler.send_response(200)
        handler.send_header("Content-Type", "text/html; charset=utf-8")
        handler.send_header("Content-Length", str(len(page)))
        handler.end_headers()
        handler.wfile.write(page)
        return True

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        url = urlsplit(handler.path)
        if method == "GET" and not url.path.startswith("/v1/") and self._page(handler, url.path):
            return
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length).decode() if length else ""
        params = decode_form(body if method == "POST" else url.query)
        route = f"{method} {url.path}"
        key = handler.headers.get("Idempotency-Key")
        try:
            with self._lock:
                if key and method == "POST" and (method, url.path, key) in self.idempotent:  # type: ignore[comparison-overlap]
                    status, payload = self.idempotent[(method, url.path, key)]  # type: ignore[index]
                else:
                    status, payload = self._route(method, url.path, params, body, url.query, handler)
                    if key and method == "POST" and status < 500:
                        self.idempotent[(method, url.path, key)] = (status, payload)  # type: ignore[index]
                self.requests[route] += 1
        except StripeError as exc:
            status = exc.status
            payload = json.dumps({"error": {"type": "invalid_request_error", "message": str(exc),
                                            "param": exc.param}}).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)

    def _route(self, method: str, path: str, params: dict[str, Any], body: str, query: str,
               handler: BaseHTTPRequestHandler) -> tuple[int, bytes]:
        if path == "/v1/prices" and method == "POST":
            return 200, json.dumps(self._create_price(params)).encode()
        if path == "/v1/prices" and method == "GET":
            return 200, json.dumps(self._list_prices(params)).encode()
        if path.startswith("/v1/prices/") and method == "GET":
            price = self.prices.get(path.rsplit("/", 1)[1])
            if price is None:
                raise StripeError(404, f"No such price: '{path.rsplit('/', 1)[1]}'", "id")
            return 200, json.dumps(price).encode()
        if path == "/v1/checkout/sessions" and method == "POST":
            return 200, json.dumps(self._create_checkout(params)).encode()
        if path == "/v1/billing_portal/sessions" and method == "POST":
            return 200, json.dumps(self._create_portal(params)).encode()
        if path == "/v1/subscriptions" and method == "POST":
            params = self._prices_as_plans(params)
            body = str(httpx.QueryParams(encode_form(params)))
        return self._pass_on(method, path, body, query, handler)

    def _pass_on(self, method: str, path: str, body: str, query: str,
                 handler: BaseHTTPRequestHandler) -> tuple[int, bytes]:
        headers = {"Authorization": handler.headers.get("Authorization", ""),
                   "Content-Type": "application/x-www-form-urlencoded"}
        answer = httpx.request(method, f"{self.localstripe}{path}" + (f"?{query}" if query else ""),
                               content=body.encode(), headers=headers, timeout=10)
        return answer.status_code, self._with_prices(answer.content)

    # -- prices --------------------------------------------------------------------------------

    def _create_price(self, params: dict[str, Any]) -> dict[str, Any]:
        for field in ("currency", "product"):
            if not params.get(field):
                raise StripeError(400, f"Missing required param: {field}.", field)
        if "unit_amount" not in params or not str(params["unit_amount"]).isdigit():
            raise StripeError(400, "Invalid integer: unit_amount", "unit_amount")
        key = params.get("lookup_key")
        if key:
            holder = next((p for p in self.prices.values() if p["lookup_key"] == key), None)
            if holder is not None:
                if params.get("transfer_lookup_key") != "true":
                    raise StripeError(400, f"A price (`{holder['id']}`) already uses that lookup key.",
                                      "lookup_key")
                holder["lookup_key"] = None
        price_id = f"price_{secrets.token_hex(12)}"
        recurring = params.get("recurring")
        price = {
            "id": price_id, "object": "price", "active": True, "billing_scheme": "per_unit",
            "created": int(time.time()), "currency": params["currency"], "livemode": False,
            "lookup_key": key or None, "metadata": params.get("metadata", {}), "nickname": None,
            "product": params["product"],
            "recurring": None if not recurring else {
                "interval": recurring.get("interval", "month"),
                "interval_count": int(recurring.get("interval_count", 1)),
                "usage_type": "licensed", "aggregate_usage": None, "trial_period_days": None},
            "type": "recurring" if recurring else "one_time",
            "unit_amount": int(params["unit_amount"]), "unit_amount_decimal": str(params["unit_amount"]),
            "tax_behavior": "unspecified", "tiers_mode": None, "transform_quantity": None,
        }
        if recurring:  # the plan localstripe subscribes customers to, under the price's id
            plan = {"id": price_id, "amount": price["unit_amount"], "currency": price["currency"],
                    "interval": price["recurring"]["interval"], "product": price["product"],
                    "metadata": price["metadata"]}
            answer = httpx.post(f"{self.localstripe}/v1/plans", data=dict(encode_form(plan)),
                                auth=("sk_test_fake", ""), timeout=10)
            if answer.status_code != 200:
                raise StripeError(answer.status_code, f"localstripe refused the plan: {answer.text}")
        self.prices[price_id] = price
        return price

    def _list_prices(self, params: dict[str, Any]) -> dict[str, Any]:
        wanted = params.get("lookup_keys")
        prices = [p for p in self.prices.values()
                  if (wanted is None or p["lookup_key"] in wanted)
                  and ("active" not in params or str(p["active"]).lower() == params["active"])]
        limit = int(params.get("limit", 10))
        return {"object": "list", "url": "/v1/prices", "has_more": len(prices) > limit,
                "data": prices[:limit]}

    def _prices_as_plans(self, params: dict[str, Any]) -> dict[str, Any]:
        """localstripe subscribes to plans: an item's `price` becomes its `plan` (the same id)."""
        for item in params.get("items", []) or []:
            if isinstance(item, dict) and "price" in item:
                item["plan"] = item.pop("price")
        return params

    def _with_prices(self, content: bytes) -> bytes:
        """Subscription items from localstripe name a plan; Stripe's also carry the `price`."""
        try:
            document = json.loads(content)
        except ValueError:
            return content

        def visit(node: Any) -> None:
            if isinstance(node, dict):
                if node.get("object") == "subscription_item" and isinstance(node.get("plan"), dict):
                    node.setdefault("price", self.prices.get(node["plan"]["id"]))
                if node.get("object") == "invoice" and isinstance(node.get("id"), str):
                    self._invoice_fields(node)
                for value in node.values():
                    visit(value)
            elif isinstance(node, list):
                for value in node:
                    visit(value)

        visit(document)
        return json.dumps(document).encode()

    def _invoice_fields(self, invoice: dict[str, Any]) -> None:
        """localstripe's invoices carry `date` (Stripe's old name) and no documents; Stripe's have
        `created`, a `number`, the hosted page and the PDF (docs.stripe.com/api/invoices/object)."""
        invoice.setdefault("created", invoice.get("date"))
        invoice.setdefault("number", f"VELES-{invoice['id'][-8:].upper()}")
        invoice.setdefault("hosted_invoice_url", f"{self.base}/invoice/{invoice['id']}")
        invoice.setdefault("invoice_pdf", f"{self.base}/invoice/{invoice['id']}/pdf")

    # -- checkout and portal ----------------------------------------------------------------------

    def _create_checkout(self, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("mode") != "subscription":
            raise StripeError(400, "This fake serves subscription-mode Checkout only.", "mode")
        for field in ("success_url", "line_items"):
            if not params.get(field):
                raise StripeError(400, f"Missing required param: {field}.", field)
        items = params["line_items"]
        price = items[0].get("price") if items and isinstance(items[0], dict) else None
        if price not in self.prices:
            raise StripeError(400, f"No such price: '{price}'", "line_items[0][price]")
        session_id = f"cs_test_{secrets.token_hex(16)}"
        session = {
            "id": session_id, "object": "checkout.session", "mode": "subscription", "status": "open",
            "payment_status": "unpaid", "url": f"{self.base}/pay/{session_id}",
            "customer": params.get("customer"), "customer_email": params.get("customer_email"),
            "client_reference_id": params.get("client_reference_id"),
            "metadata": params.get("metadata", {}), "success_url": params["success_url"],
            "cancel_url": params.get("cancel_url"), "subscription": None, "livemode": False,
            "created": int(time.time()), "line_items_price": price,
            "subscription_data": params.get("subscription_data", {}),
        }
        self.checkouts[session_id] = session
        return session

    def complete_checkout(self, session_id: str) -> dict[str, Any]:
        """Pay a checkout session: the subscription is made in localstripe (for its customer, or a
        new one), the session completes, and the `checkout.session.completed` event is answered
        (the caller signs and delivers it, as Stripe would)."""
        session = self.checkouts[session_id]
        auth = ("sk_test_fake", "")
        customer = session["customer"]
        if not customer:
            made = httpx.post(f"{self.localstripe}/v1/customers", auth=auth, timeout=10,
                              data={"email": session["customer_email"] or "buyer@example.test"})
            customer = made.json()["id"]
        token = httpx.post(f"{self.localstripe}/v1/tokens", auth=auth, timeout=10,
                           data={"card[number]": "4242424242424242", "card[exp_month]": "12",
                                 "card[exp_year]": "2040", "card[cvc]": "123"})
        card = httpx.post(f"{self.localstripe}/v1/customers/{customer}/sources", auth=auth, timeout=10,
                          data={"source": token.json()["id"]})
        if card.status_code != 200:
            raise RuntimeError(f"localstripe refused the card: {card.text}")
        metadata = session["subscription_data"].get("metadata", {})
        form = {"customer": customer, "items[0][plan]": session["line_items_price"],
                **{f"metadata[{k}]": v for k, v in metadata.items()}}
        answer = httpx.post(f"{self.localstripe}/v1/subscriptions", auth=auth, timeout=10, data=form)
        if answer.status_code != 200:
            raise RuntimeError(f"localstripe refused the subscription: {answer.text}")
        session.update(status="complete", payment_status="paid", customer=customer,
                       subscription=answer.json()["id"])
        return {"id": f"evt_{secrets.token_hex(12)}", "object": "event", "type": "checkout.session.completed",
                "created": int(time.time()), "livemode": False, "api_version": "2026-10-28.endive",
                "data": {"object": dict(session)}}

    def _create_portal(self, params: dict[str, Any]) -> dict[str, Any]:
        customer = params.get("customer")
        if not customer:
            raise StripeError(400, "Missing required param: customer.", "customer")
        known = httpx.get(f"{self.localstripe}/v1/customers/{customer}", auth=("sk_test_fake", ""),
                          timeout=10)
        if known.status_code != 200:
            raise StripeError(400, f"No such customer: '{customer}'", "customer")
        portal_id = f"bps_{secrets.token_hex(12)}"
        portal = {"id": portal_id, "object": "billing_portal.session", "customer": customer,
                  "return_url": params.get("return_url"), "url": f"{self.base}/portal/{portal_id}",
                  "created": int(time.time()), "livemode": False, "configuration": "bpc_fake",
                  "flow": params.get("flow_data"), "locale": None, "on_behalf_of": None}
        self.portals[portal_id] = portal
        return portal
