"""A webhook receiver for the bench, run as its own process: answers every POST with one fixed status.

``python bench/receiver.py --status 500`` listens on a free loopback port, prints ``PORT <n>`` once listening, and
answers ``GET /count`` with ``{"posts": N, "connections": M}`` (POSTs answered and connections accepted so far).
Plain asyncio, HTTP/1.1 keep-alive, Content-Length bodies only (what the mock sends), so the receiver is never the
slow side of the measurement.
"""

from __future__ import annotations

import argparse
import asyncio
import http
import json
import signal
import sys


class Receiver(asyncio.Protocol):
    received = 0
    connections = 0

    def __init__(self, answer: bytes) -> None:
        self.answer = answer
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        Receiver.connections += 1

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            head = bytes(self.buffer[:end]).split(b"\r\n")
            length = 0
            for line in head[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
            if len(self.buffer) < end + 4 + length:
                return
            del self.buffer[: end + 4 + length]
            if head[0].startswith(b"GET /count "):
                body = json.dumps({"posts": Receiver.received, "connections": Receiver.connections}).encode()
                self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                                     + str(len(body)).encode() + b"\r\n\r\n" + body)
            else:
                Receiver.received += 1
                self.transport.write(self.answer)


async def serve(status: int) -> None:
    phrase = http.HTTPStatus(status).phrase
    answer = f"HTTP/1.1 {status} {phrase}\r\nContent-Length: 0\r\n\r\n".encode()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Receiver(answer), "127.0.0.1", 0, backlog=1024)
    port = server.sockets[0].getsockname()[1]
    print(f"PORT {port}", flush=True)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    async with server:
        await stop.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--status", type=int, default=200, help="status of every answer to a POST")
    asyncio.run(serve(parser.parse_args().status))
    return 0


if __name__ == "__main__":
    sys.exit(main())
