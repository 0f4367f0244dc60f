"""A real HTTP receiver standing in for PagerDuty, Slack and a generic webhook.

Every POST is answered 200 (PagerDuty: 202) and appended as one JSON line to
the record file: the time it was received (epoch seconds), the path and the
decoded JSON body. The Molecule verifier and benchmarks/alert_latency.py read
that file. Usage: alert_sink.py <port> <record file>
"""
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()


class Sink(BaseHTTPRequestHandler):
    record = ""

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        received = time.time()
        try:
            body = json.loads(raw.decode("utf-8"))
        except ValueError:
            body = {"undecodable": raw.decode("utf-8", "replace")}
        with LOCK, open(self.record, "a", encoding="utf-8") as handle:
            handle.write(json.dumps({"received": received, "path": self.path, "body": body}) + "\n")
        status = 202 if self.path.startswith("/pagerduty") else 200
        data = b'{"status": "success"}' if status == 202 else b"ok"
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        pass


def main():
    port, Sink.record = int(sys.argv[1]), sys.argv[2]
    ThreadingHTTPServer(("0.0.0.0", port), Sink).serve_forever()


if __name__ == "__main__":
    main()
