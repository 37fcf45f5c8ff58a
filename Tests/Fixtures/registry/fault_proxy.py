#!/usr/bin/env python3
"""HTTP proxy in front of a registry that injects faults and counts traffic.

Usage: fault_proxy.py PORT_FILE UPSTREAM_PORT
Listens on a free 127.0.0.1 port (written to PORT_FILE) and forwards to 127.0.0.1:UPSTREAM_PORT,
keeping the Host header so the registry's Location URLs point back at the proxy.
POST /__config with JSON sets the faults (counts are per request kind):
  {"fail503": n}          the next n requests get 503
  {"throttle429": n}      the next n requests get 429 with Retry-After: 1
  {"dropDownload": n}     the next n blob GETs send half the body, then close the connection
  {"dropUpload": n}       the next n blob uploads (PATCH/PUT with a body) are cut off half way
  {"refuseUpload": n}     the next n blob uploads get 413 Payload Too Large (a refusal, not a fault to retry)
  {"corruptDownload": n}  the next n blob GETs have one byte flipped
  {"delay": seconds}      every response waits this long
GET /__stats returns {"uploadedBlobBytes", "downloadedBlobBytes", "requests", "manifestPuts", "faults",
"maxPerSecond"}; POST /__reset zeroes them. maxPerSecond: the most requests that arrived within any one
second since the last reset (or POST /__resetRate, which clears only that).
"""
import signal
# Started from a test process whose threads may block SIGTERM; take default handling back.
signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
signal.signal(signal.SIGTERM, signal.SIG_DFL)
import http.client, json, os, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

port_file, upstream_port = sys.argv[1], int(sys.argv[2])
lock = threading.Lock()
config = {"fail503": 0, "throttle429": 0, "dropDownload": 0, "dropUpload": 0, "refuseUpload": 0, "corruptDownload": 0, "delay": 0}
stats = {"uploadedBlobBytes": 0, "downloadedBlobBytes": 0, "requests": 0, "manifestPuts": 0, "faults": 0, "maxPerSecond": 0}
arrivals = []  # monotonic times of the requests in the last second

def take(key):
    with lock:
        if config[key] > 0:
            config[key] -= 1
            stats["faults"] += 1
            return True
    return False

class Proxy(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def local(self, code, obj=None):
        body = json.dumps(obj or {}).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        # A response to HEAD has no body (RFC 9110 9.3.2); bytes here would be read as the next response.
        if self.command != "HEAD":
            self.wfile.write(body)

    def handle_any(self):
        if self.path.startswith("/__"):
            length = int(self.headers.get("Content-Length", 0))
            body = self.rfile.read(length) if length else b""
            with lock:
                if self.path == "/__config":
                    config.update(json.loads(body or b"{}"))
                elif self.path == "/__reset":
                    for k in stats:
                        stats[k] = 0
                    arrivals.clear()
                elif self.path == "/__resetRate":
                    stats["maxPerSecond"] = 0
                    arrivals.clear()
                return self.local(200, dict(stats))
        with lock:
            stats["requests"] += 1
            now = time.monotonic()
            arrivals.append(now)
            while arrivals and arrivals[0] <= now - 1.0:
                arrivals.pop(0)
            stats["maxPerSecond"] = max(stats["maxPerSecond"], len(arrivals))
            delay = config["delay"]
        if delay:
            time.sleep(delay)
        length = int(self.headers.get("Content-Length", 0) or 0)
        is_upload = "/blobs/uploads/" in self.path and self.command in ("PATCH", "PUT", "POST") and length > 0
        is_blob_get = self.command == "GET" and "/blobs/sha256:" in self.path
        if take("fail503"):
            self.rfile.read(length)
            return self.local(503, {"errors": [{"code": "UNAVAILABLE", "message": "injected"}]})
        if take("throttle429"):
            self.rfile.read(length)
            self.send_response(429)
            self.send_header("Retry-After", "1")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if is_upload and take("refuseUpload"):
            self.rfile.read(length)
            return self.local(413, {"errors": [{"code": "SIZE_INVALID", "message": "injected: too large"}]})
        if is_upload and take("dropUpload"):
            part = self.rfile.read(length // 2)
            with lock:
                stats["uploadedBlobBytes"] += len(part)
            self.close_connection = True
            self.connection.shutdown(2)
            return
        body = self.rfile.read(length) if length else None
        if is_upload:
            with lock:
                stats["uploadedBlobBytes"] += length
        if self.command == "PUT" and "/manifests/" in self.path:
            with lock:
                stats["manifestPuts"] += 1
        conn = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=120)
        # Header by header: clients send several Accept headers, which a dict would collapse.
        conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
        for k, v in self.headers.items():
            if k.lower() not in ("connection", "keep-alive", "transfer-encoding", "content-length"):
                conn.putheader(k, v)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        resp = conn.getresponse()
        data = resp.read()
        if is_blob_get and resp.status in (200, 206):
            with lock:
                stats["downloadedBlobBytes"] += len(data)
        drop = is_blob_get and resp.status in (200, 206) and len(data) > 1 and take("dropDownload")
        if is_blob_get and resp.status == 200 and data and take("corruptDownload"):
            data = bytes([data[0] ^ 0xFF]) + data[1:]
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in ("connection", "keep-alive", "transfer-encoding", "content-length"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            if drop:
                self.wfile.write(data[: len(data) // 2])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(2)
                return
            self.wfile.write(data)
        conn.close()

    do_GET = do_PUT = do_POST = do_PATCH = do_DELETE = do_HEAD = handle_any

class Server(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        # Clients hang up mid-response when a fault makes them give up or retry: expected here.
        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            return
        super().handle_error(request, client_address)

server = Server(("127.0.0.1", 0), Proxy)
server.daemon_threads = True
with open(port_file + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(port_file + ".tmp", port_file)
server.serve_forever()
