"""The test app: an HTTP server on $PORT whose behaviour the environment chooses.

CRASH=<code>: print a line and exit with <code> at once. SICK=1: /health answers 500.
GET /echo/<text> prints <text>; GET /exit/<code> exits with <code>.
"""

import http.server
import os
import sys
import threading

if os.environ.get("CRASH"):
    print("boom: crashing on purpose", flush=True)
    sys.exit(int(os.environ["CRASH"]))

SICK = os.environ.get("SICK") == "1"
PORT = int(os.environ.get("PORT", "8000"))


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        code, body = 200, f"hello uid={os.getuid()}"
        if self.path == "/health":
            code = 500 if SICK else 200
        elif self.path.startswith("/echo/"):
            print(self.path[len("/echo/") :], flush=True)
        elif self.path.startswith("/exit/"):
            threading.Timer(0.1, os._exit, [int(self.path[len("/exit/") :])]).start()
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, fmt, *args):
        """Quiet: the test reads what it needs from the requests."""


for n in range(int(os.environ.get("START_LINES", "3"))):
    print(f"starting line {n}", flush=True)
print(f"listening on {PORT}", flush=True)
http.server.ThreadingHTTPServer(("0.0.0.0", PORT), Handler).serve_forever()  # noqa: S104
