#!/usr/bin/env python3
"""A TCP proxy that holds a client's traffic at a chosen point, so a test can
put another client's writes in between two of its round trips.

    hold-proxy.py LISTEN_PORT TARGET_PORT MARKER HELD_FILE RELEASE_FILE

Bytes flow through unchanged until a client-to-server chunk contains MARKER
(for Redis, b"MULTI"). That chunk is then kept back: the proxy creates
HELD_FILE and waits for RELEASE_FILE to exist before forwarding it and
everything after. Only the first occurrence is held. Loopback only."""
import os
import socket
import sys
import threading
import time

listen_port, target_port = int(sys.argv[1]), int(sys.argv[2])
marker = sys.argv[3].encode()
held_file, release_file = sys.argv[4], sys.argv[5]
held = threading.Event()


def pump(src, dst, hold):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            if hold and not held.is_set() and marker in data:
                held.set()
                open(held_file, "w").close()
                while not os.path.exists(release_file):
                    time.sleep(0.01)
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", listen_port))
srv.listen(16)
while True:
    c, _ = srv.accept()
    t = socket.create_connection(("127.0.0.1", target_port))
    threading.Thread(target=pump, args=(c, t, True), daemon=True).start()
    threading.Thread(target=pump, args=(t, c, False), daemon=True).start()
