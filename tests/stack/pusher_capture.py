"""A local Pusher HTTP API stand-in for tests.

It accepts `POST /apps/{app_id}/events` exactly as the Pusher HTTP API v1 does:
the query carries auth_key, auth_timestamp, auth_version=1.0, body_md5 and
auth_signature = hex HMAC-SHA256(secret, "POST\\n{path}\\n{sorted query without
auth_signature}"). A request with a wrong key, signature, body md5 or a stale
timestamp is refused (401/400) and not recorded. Accepted events are kept in
memory: `GET /captured` lists them, `DELETE /captured` clears them.
"""

import argparse
import hashlib
import hmac
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

CAPTURED = []
LOCK = threading.Lock()


def make_handler(app_id, key, secret):
    class Handler(BaseHTTPRequestHandler):
        def reply(self, code, body):
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, fmt, *args):  # keep the log to refusals
            pass

        def do_GET(self):
            if urlsplit(self.path).path == "/captured":
                with LOCK:
                    return self.reply(200, list(CAPTURED))
            if urlsplit(self.path).path == "/health":
                return self.reply(200, {"ok": True})
            self.reply(404, {"error": "not found"})

        def do_DELETE(self):
            if urlsplit(self.path).path == "/captured":
                with LOCK:
                    CAPTURED.clear()
                return self.reply(200, {})
            self.reply(404, {"error": "not found"})

        def do_POST(self):
            url = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            if url.path != f"/apps/{app_id}/events":
                return self.reply(404, {"error": f"unknown path {url.path}"})
            params = dict(parse_qsl(url.query, keep_blank_values=True))
            signature = params.pop("auth_signature", "")
            to_sign = "POST\n{}\n{}".format(
                url.path, "&".join(f"{k}={params[k]}" for k in sorted(params))
            )
            expected = hmac.new(secret.encode(), to_sign.encode(), hashlib.sha256).hexdigest()
            problem = None
            if params.get("auth_key") != key:
                problem = (401, "unknown auth_key")
            elif params.get("auth_version") != "1.0":
                problem = (401, "auth_version must be 1.0")
            elif abs(time.time() - int(params.get("auth_timestamp") or 0)) > 600:
                problem = (401, "auth_timestamp is not within 600 s of now")
            elif not hmac.compare_digest(signature, expected):
                problem = (401, "invalid signature")
            elif params.get("body_md5") != hashlib.md5(body).hexdigest():
                problem = (400, "body_md5 does not match the body")
            if problem:
                print(f"refused: {problem[1]}", flush=True)
                return self.reply(problem[0], {"error": problem[1]})
            try:
                event = json.loads(body)
                data = event.get("data")
                record = {
                    "name": event["name"],
                    "channels": event.get("channels") or [event.get("channel")],
                    "data": json.loads(data) if isinstance(data, str) else data,
                    "receivedAt": time.time(),
                }
            except (ValueError, KeyError, TypeError) as e:
                return self.reply(400, {"error": f"bad event body: {e}"})
            with LOCK:
                CAPTURED.append(record)
            self.reply(200, {})

    return Handler


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=5056)
    p.add_argument("--app-id", default=os.environ.get("PUSHER_APP_ID", "segments-local"))
    p.add_argument("--key", default=os.environ.get("PUSHER_KEY", "local-key"))
    p.add_argument("--secret", default=os.environ.get("PUSHER_SECRET", "local-secret"))
    a = p.parse_args()
    server = ThreadingHTTPServer((a.host, a.port), make_handler(a.app_id, a.key, a.secret))
    print(f"pusher capture on {a.host}:{a.port} for app {a.app_id}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
