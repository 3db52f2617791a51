#!/usr/bin/env python3
"""A slow, lossy Ethernet link between two network namespaces, for the LAN lab (test/helpers/lan.ts).

This kernel has no netem, so the link is emulated in user space: one TAP device in each
namespace (created beforehand with `ip -n NS tuntap add dev NAME mode tap`); every frame read
from one is dropped with probability LOSS or written to the other DELAY_MS later, in both
directions. Frames keep their order. Prints `ready` once both devices are open; exits when
stdin closes (the test that started it ended) or on SIGTERM.

Usage: tap-relay.py NS_A DEV_A NS_B DEV_B DELAY_MS LOSS_PERCENT SEED
"""
import ctypes
import fcntl
import heapq
import os
import random
import select
import struct
import sys
import time

CLONE_NEWNET = 0x40000000
TUNSETIFF = 0x400454CA
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000

libc = ctypes.CDLL(None, use_errno=True)


def open_tap(namespace: str, name: str) -> int:
    """Opens the TAP device `name` of `namespace`; the descriptor stays bound to it after we leave."""
    ns = os.open(f"/var/run/netns/{namespace}", os.O_RDONLY)
    try:
        if libc.setns(ns, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns {namespace}: {os.strerror(err)}")
    finally:
        os.close(ns)
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TAP | IFF_NO_PI))
    return fd


def main() -> None:
    ns_a, dev_a, ns_b, dev_b, delay_ms, loss_percent, seed = sys.argv[1:8]
    delay = float(delay_ms) / 1000
    loss = float(loss_percent) / 100
    rng = random.Random(int(seed))
    a = open_tap(ns_a, dev_a)
    b = open_tap(ns_b, dev_b)
    other = {a: b, b: a}
    # (due time, sequence, descriptor, frame): the sequence keeps frames of one due time in order.
    queue: list = []
    seq = 0
    stats = {"frames": 0, "dropped": 0}
    print("ready", flush=True)
    stdin = sys.stdin.fileno()
    while True:
        now = time.monotonic()
        while queue and queue[0][0] <= now:
            _, _, fd, frame = heapq.heappop(queue)
            try:
                os.write(fd, frame)
            except (BlockingIOError, OSError):
                pass  # the device is down or full: the frame is lost, as on a wire
        timeout = max(0.0, queue[0][0] - now) if queue else None
        readable, _, _ = select.select([a, b, stdin], [], [], timeout)
        if stdin in readable and not os.read(stdin, 4096):
            print(f"frames {stats['frames']} dropped {stats['dropped']}", flush=True)
            return
        for fd in readable:
            if fd == stdin:
                continue
            while True:
                try:
                    frame = os.read(fd, 65536)
                except BlockingIOError:
                    break
                except OSError:
                    break  # the device went down: nothing to read until it is up again
                stats["frames"] += 1
                if rng.random() < loss:
                    stats["dropped"] += 1
                    continue
                seq += 1
                heapq.heappush(queue, (time.monotonic() + delay, seq, other[fd], frame))


if __name__ == "__main__":
    main()
