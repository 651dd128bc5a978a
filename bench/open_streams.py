#!/usr/bin/env python3
"""Open streams: the memory a proxy holds for each stream it keeps open.

  open_streams.py upstream
      A slow OpenAI-style SSE upstream on 127.0.0.1 (a free port, printed on the first line):
      each streamed answer sends one event at once, then one every 2 s, and never ends.
  open_streams.py client PORT PIDS STEPS
      Opens streams through the proxy at 127.0.0.1:PORT up to each count in STEPS (comma
      separated), waits for every stream's first event, and prints the resident memory of the
      processes PIDS (comma separated: a proxy's master and workers are summed) after each step:
      "streams=N rss_kb=R".  The request carries $MICHI_BENCH_KEY when it is set, and the
      messages of the chat request body in $BODY_FILE when it is set (else one "hi").
"""
import asyncio
import json
import os
import sys

EVENT = (b'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m",'
         b'"choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}]}\n\n')


async def serve_one(reader, writer):
    try:
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        await reader.readexactly(length)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n")
        while True:
            writer.write(b"%x\r\n%s\r\n" % (len(EVENT), EVENT))
            await writer.drain()
            await asyncio.sleep(2)
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        pass
    finally:
        writer.close()


async def upstream():
    server = await asyncio.start_server(serve_one, "127.0.0.1", 0, backlog=16384)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()


def rss_kb(pids):
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total


async def client(port, pids, steps):
    body = b'{"model":"slow/m","stream":true,"messages":[{"role":"user","content":"hi"}]}'
    if os.environ.get("BODY_FILE"):  # a real conversation instead of "hi"
        with open(os.environ["BODY_FILE"]) as f:
            conversation = json.load(f)
        conversation.update(model="slow/m", stream=True)
        body = json.dumps(conversation).encode()
    auth = os.environ.get("MICHI_BENCH_KEY", "")
    request = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: bench\r\n" +
               (b"Authorization: Bearer " + auth.encode() + b"\r\n" if auth else b"") +
               b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) +
               body)
    streams = []
    print(f"streams=0 rss_kb={rss_kb(pids)}", flush=True)

    async def open_one():
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(request)
        await writer.drain()
        await asyncio.wait_for(reader.readuntil(b"data: "), timeout=30)
        streams.append(writer)

    for step in steps:
        batch = step - len(streams)
        for start in range(0, batch, 500):  # bounded bursts of connects
            await asyncio.gather(*[open_one() for _ in range(min(500, batch - start))])
        await asyncio.sleep(0.5)  # let the proxy settle its allocations (not a sync point)
        print(f"streams={len(streams)} rss_kb={rss_kb(pids)}", flush=True)
    for writer in streams:
        writer.close()


def main():
    if len(sys.argv) == 2 and sys.argv[1] == "upstream":
        asyncio.run(upstream())
    elif len(sys.argv) == 5 and sys.argv[1] == "client":
        pids = [int(p) for p in sys.argv[3].split(",") if p]
        steps = [int(s) for s in sys.argv[4].split(",")]
        asyncio.run(client(int(sys.argv[2]), pids, steps))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
