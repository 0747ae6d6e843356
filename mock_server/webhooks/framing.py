"""One kept-alive HTTP/1.1 client connection of the webhook transport, framed by h11: POST a body, read the status,
drain the answer, and say whether the connection can carry the next attempt."""

from __future__ import annotations

import asyncio
import time

import h11

from mock_server.webhooks.exchange import READ_CHUNK, DeliveryError, Endpoint, Timing


class Connection:
    """One connection to an endpoint; ``post`` raises ``DeliveryError`` for an answer that is not HTTP/1.1."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.http = h11.Connection(h11.CLIENT)

    async def post(self, endpoint: Endpoint, body: bytes, headers: dict[str, str], timing: Timing) -> int:
        try:
            return await self._exchange(endpoint, body, headers, timing)
        except h11.ProtocolError as exc:
            raise DeliveryError("transport_error", f"not a valid HTTP/1.1 answer: {exc}") from exc

    async def _exchange(self, endpoint: Endpoint, body: bytes, headers: dict[str, str], timing: Timing) -> int:
        fields = [("Host", endpoint.authority), ("Content-Length", str(len(body))), *headers.items()]
        timing.sent, timing.answered = time.perf_counter(), None
        self.writer.write(self.http.send(h11.Request(method="POST", target=endpoint.target, headers=fields))
                          + self.http.send(h11.Data(data=body)) + self.http.send(h11.EndOfMessage()))
        await self.writer.drain()
        status = 0
        while True:
            event = self.http.next_event()
            if event is h11.NEED_DATA:
                self.http.receive_data(await self.reader.read(READ_CHUNK))
            elif isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.EndOfMessage):
                timing.answered = time.perf_counter()
                return status
            elif isinstance(event, h11.ConnectionClosed):
                raise DeliveryError("transport_error", "connection closed before the answer was complete")

    def reusable(self) -> bool:
        if self.http.our_state is h11.DONE and self.http.their_state is h11.DONE:
            self.http.start_next_cycle()
            return True
        return False

    def close(self) -> None:
        self.writer.close()
