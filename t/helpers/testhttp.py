"""What plumb's test servers under t/ share: a handler base that sends every
method to one serve(method) and reads request bodies whole (chunked or by
Content-Length), and the port-file handshake with the tests (the port is
written to a file, atomically, once the server listens). Imported as
helpers.testhttp: a server's own directory, t/, is first on sys.path."""
import os
from http.server import BaseHTTPRequestHandler


class Dispatch(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        self.serve("GET")

    def do_PUT(self):
        self.serve("PUT")

    def do_POST(self):
        self.serve("POST")

    def do_DELETE(self):
        self.serve("DELETE")

    def do_PATCH(self):
        self.serve("PATCH")

    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    break
                data += self.rfile.read(size)
                self.rfile.readline()
            return data
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""


def announce(port_file, port):
    """Write port to port_file once listening; the tests wait for the file."""
    tmp = port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % port)
    os.rename(tmp, port_file)
