#!/usr/bin/env python3
"""Bearer token server for docker-registry's `auth: token` (distribution's token spec).

Usage: token_server.py PORT_FILE CA_CERT_OUT ISSUER SERVICE USER PASSWORD
Makes a CA and a signing certificate, writes the CA (the registry's rootcertbundle) to
CA_CERT_OUT, listens on a free 127.0.0.1 port written to PORT_FILE, and serves GET /token:
valid Basic credentials get the requested actions; anonymous requests get `pull` only.
GET /stats returns {"tokens": n, "basic": n, "anonymous": n}.
"""
import signal
# Started from a test process whose threads may block SIGTERM; take default handling back.
signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
signal.signal(signal.SIGTERM, signal.SIG_DFL)
import base64, datetime, json, os, sys, threading, time, uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse, parse_qs
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa, padding
from cryptography.x509.oid import NameOID

port_file, ca_out, issuer, service, user, password = sys.argv[1:7]

def make_cert(subject, issuer_name, key, sign_key, ca):
    now = datetime.datetime.now(datetime.timezone.utc)
    b = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer_name).public_key(key.public_key())
         .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
         .not_valid_after(now + datetime.timedelta(days=1))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
         .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=ca, crl_sign=ca, content_commitment=False,
                                      key_encipherment=False, data_encipherment=False, key_agreement=False,
                                      encipher_only=False, decipher_only=False), critical=True))
    return b.sign(sign_key, hashes.SHA256())

ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cairn test CA")])
ca_cert = make_cert(ca_name, ca_name, ca_key, ca_key, True)
key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
cert = make_cert(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cairn token signer")]), ca_name, key, ca_key, False)
with open(ca_out, "wb") as f:
    f.write(ca_cert.public_bytes(serialization.Encoding.PEM))
x5c = [base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()]

def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()

stats = {"tokens": 0, "basic": 0, "anonymous": 0}
lock = threading.Lock()

class Handler(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def reply(self, code, obj):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        url = urlparse(self.path)
        if url.path == "/stats":
            with lock:
                return self.reply(200, stats)
        if url.path != "/token":
            return self.reply(404, {})
        q = parse_qs(url.query)
        auth = self.headers.get("Authorization", "")
        authed = False
        if auth.startswith("Basic "):
            u, _, p = base64.b64decode(auth[6:]).decode().partition(":")
            if (u, p) != (user, password):
                return self.reply(401, {"details": "bad credentials"})
            authed = True
        access = []
        for scope in q.get("scope", []):
            kind, name, actions = scope.split(":")
            granted = actions.split(",") if authed else [a for a in actions.split(",") if a == "pull"]
            access.append({"type": kind, "name": name, "actions": granted})
        now = int(time.time())
        claims = {"iss": issuer, "sub": user if authed else "", "aud": q.get("service", [service])[0], "exp": now + 300,
                  "nbf": now - 10, "iat": now, "jti": str(uuid.uuid4()), "access": access}
        header = {"typ": "JWT", "alg": "RS256", "x5c": x5c}
        signing_input = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
        sig = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        with lock:
            stats["tokens"] += 1
            stats["basic" if authed else "anonymous"] += 1
        self.reply(200, {"token": signing_input + "." + b64url(sig), "expires_in": 300})

server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(port_file + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(port_file + ".tmp", port_file)
server.serve_forever()
