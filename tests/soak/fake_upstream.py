#!/usr/bin/env python3
"""The soak's fake upstream: an OpenAI-style provider (and an Anthropic-style one) on 127.0.0.1.

Listens on a free port and prints it on its first line of stdout. Keep-alive HTTP/1.1.
  POST /v1/chat/completions   model "gpt-soak": a chat.completion at once, or with "stream":
                              true an SSE answer (role, three content chunks, finish, usage,
                              [DONE]); model "slow": a stream of 30 chunks, one every 100 ms;
                              model "late": the same as gpt-soak, after 2 s without a byte
  POST /v1/messages           an Anthropic message (non-stream)
  GET  /__stats               JSON counts: requests per path, and "unexpected" (any other path
                              or method: a request the gateway should never have sent, such as
                              the body of a smuggled request)
"""
import asyncio
import json
import sys
import time

STATS = {"requests": {}, "unexpected": 0, "unexpected_samples": []}


def completion(model):
    return json.dumps({
        "id": "chatcmpl-soak", "object": "chat.completion", "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "soak answer"},
                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15},
    }).encode()


def chunk(model, delta, finish=None, usage=None, choices=True):
    obj = {"id": "chatcmpl-soak", "object": "chat.completion.chunk", "created": 1,
           "model": model,
           "choices": [{"index": 0, "delta": delta, "finish_reason": finish}] if choices else []}
    if usage is not None:
        obj["usage"] = usage
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


def anthropic_message(model):
    return json.dumps({
        "id": "msg_soak", "type": "message", "role": "assistant", "model": model,
        "content": [{"type": "text", "text": "soak answer"}], "stop_reason": "end_turn",
        "stop_sequence": None, "usage": {"input_tokens": 12, "output_tokens": 3},
    }).encode()


async def read_request(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ")
    method, path = parts[0], parts[1] if len(parts) > 1 else b""
    length, chunked = 0, False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value.strip())
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if chunked:
        body = b""
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0].strip(), 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                break
            body += await reader.readexactly(size)
            await reader.readexactly(2)
    else:
        body = await reader.readexactly(length)
    return method.decode("latin-1"), path.decode("latin-1"), body


async def send_sse(writer, events, gap=0.0):
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n")
    for event in events:
        writer.write(b"%x\r\n%s\r\n" % (len(event), event))
        await writer.drain()
        if gap:
            await asyncio.sleep(gap)
    writer.write(b"0\r\n\r\n")
    await writer.drain()


def send_json(writer, body, status=b"200 OK"):
    writer.write(b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json\r\n"
                 b"Content-Length: %d\r\n\r\n" % len(body) + body)


async def serve(reader, writer):
    try:
        while True:
            method, path, body = await read_request(reader)
            key = f"{method} {path}"
            STATS["requests"][key] = STATS["requests"].get(key, 0) + 1
            if method == "GET" and path == "/__stats":
                send_json(writer, json.dumps(STATS).encode())
            elif method == "POST" and path == "/v1/chat/completions":
                try:
                    req = json.loads(body)
                    model = str(req.get("model", ""))
                    stream = req.get("stream") is True
                except (ValueError, AttributeError):
                    send_json(writer, b'{"error":{"message":"bad json"}}', b"400 Bad Request")
                    await writer.drain()
                    continue
                if model == "late":
                    await asyncio.sleep(2)
                if not stream:
                    send_json(writer, completion(model))
                else:
                    pieces = 30 if model == "slow" else 3
                    events = [chunk(model, {"role": "assistant", "content": ""})]
                    events += [chunk(model, {"content": "soak "}) for _ in range(pieces)]
                    events.append(chunk(model, {}, "stop"))
                    events.append(chunk(model, None, usage={
                        "prompt_tokens": 12, "completion_tokens": pieces,
                        "total_tokens": 12 + pieces}, choices=False))
                    events.append(b"data: [DONE]\n\n")
                    await send_sse(writer, events, 0.1 if model == "slow" else 0.0)
            elif method == "POST" and path == "/v1/messages":
                try:
                    model = str(json.loads(body).get("model", ""))
                except (ValueError, AttributeError):
                    model = ""
                send_json(writer, anthropic_message(model))
            else:
                STATS["unexpected"] += 1
                if len(STATS["unexpected_samples"]) < 5:
                    STATS["unexpected_samples"].append(key[:200])
                send_json(writer, b'{"error":{"message":"not here"}}', b"404 Not Found")
            await writer.drain()
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
        pass
    finally:
        writer.close()


async def main():
    server = await asyncio.start_server(serve, "127.0.0.1", 0, backlog=4096,
                                        limit=16 * 1024 * 1024)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
