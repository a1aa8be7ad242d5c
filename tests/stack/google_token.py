"""A local stand-in for Google's OAuth token endpoint, for one test run.

Started by a test (not by up.sh): makes an RSA key and writes
`<dir>/service_account.json`, a service-account key whose `token_uri` is this
server, then prints `ready <port>`. `POST /token` takes the JWT-bearer grant
exactly as https://oauth2.googleapis.com/token does: the assertion must be an
RS256 JWT signed by that key, issued by its client_email, for audience
token_uri, with a scope and a lifetime of at most an hour. A valid one gets a
fresh access token; anything else a 400 `invalid_grant`. `GET /exchanges`
lists every exchange (assertion, access token, verdict) so the test can look
for them in its logs.
"""

import argparse
import base64
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

EXCHANGES = []
LOCK = threading.Lock()
GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def b64url(data: str) -> bytes:
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))


def verify(assertion: str, public_key, email: str, token_uri: str) -> str:
    """The reason the assertion is refused, or "" when it is valid."""
    parts = assertion.split(".")
    if len(parts) != 3:
        return "not a JWT"
    header, claims = json.loads(b64url(parts[0])), json.loads(b64url(parts[1]))
    if header.get("alg") != "RS256":
        return f"alg {header.get('alg')}"
    try:
        public_key.verify(b64url(parts[2]), f"{parts[0]}.{parts[1]}".encode(),
                          padding.PKCS1v15(), hashes.SHA256())
    except Exception:  # InvalidSignature
        return "bad signature"
    now = time.time()
    if claims.get("iss") != email:
        return f"iss {claims.get('iss')}"
    if claims.get("aud") != token_uri:
        return f"aud {claims.get('aud')}"
    if "bigquery" not in claims.get("scope", ""):
        return f"scope {claims.get('scope')}"
    if not (claims.get("iat", 0) - 300 <= now <= claims.get("exp", 0)) or claims["exp"] - claims["iat"] > 3600:
        return "lifetime"
    return ""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    args = ap.parse_args()
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    email = "segments-test@segments-local.iam.gserviceaccount.com"

    class Handler(BaseHTTPRequestHandler):
        def reply(self, code, body):
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, fmt, *a):
            pass

        def do_GET(self):
            with LOCK:
                self.reply(200, EXCHANGES)

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
            form = dict(parse_qsl(body))
            assertion = form.get("assertion", "")
            reason = "grant_type" if form.get("grant_type") != GRANT else verify(
                assertion, key.public_key(), email, token_uri)
            token = "" if reason else "ya29.local-" + secrets.token_urlsafe(32)
            with LOCK:
                EXCHANGES.append({"assertion": assertion, "access_token": token, "refused": reason})
            if reason:
                self.reply(400, {"error": "invalid_grant", "error_description": reason})
            else:
                self.reply(200, {"access_token": token, "expires_in": 3600, "token_type": "Bearer"})

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port = server.server_address[1]
    token_uri = f"http://127.0.0.1:{port}/token"
    Path(args.dir, "service_account.json").write_text(json.dumps({
        "type": "service_account",
        "project_id": "segments-local",
        "private_key_id": secrets.token_hex(20),
        "private_key": pem,
        "client_email": email,
        "client_id": "1",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
    }))
    print(f"ready {port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
