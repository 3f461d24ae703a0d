"""A loopback origin for the documented-command checks: HTTP on port 80 and
HTTPS on port 443 of one address. Every GET answers 200 with
"hello from HOST" so a check can tell the request reached it.
Usage: origin.py ADDRESS CERT KEY
"""

import http.server
import ssl
import sys
import threading


class Hello(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        body = f"hello from {self.headers.get('Host', '?')}\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        sys.stderr.write("origin: " + (fmt % args) + "\n")


def main():
    address, cert, key = sys.argv[1:4]
    plain = http.server.ThreadingHTTPServer((address, 80), Hello)
    secure = http.server.ThreadingHTTPServer((address, 443), Hello)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    secure.socket = context.wrap_socket(secure.socket, server_side=True)
    for server in (plain, secure):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    print("serving", address, flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
