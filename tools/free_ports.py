#!/usr/bin/env python3
"""Prints N free TCP ports on 127.0.0.1 (default 3), for scripts that start ballotd themselves.

The ports are BELOW the ephemeral range: a port the kernel hands out for port 0 can be taken,
between this check and ballotd's bind, as the source port of any outgoing connection on a busy
machine ("Address already in use", no leader); ports below the range are only taken by listeners.
"""
import random
import socket
import sys


def main():
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
    ports = []
    while len(ports) < count:
        port = random.randrange(max(1024, low - 10000), low)
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
            if port not in ports:
                ports.append(port)
        except OSError:
            pass
        finally:
            s.close()
    print(" ".join(str(p) for p in ports))


if __name__ == "__main__":
    main()
