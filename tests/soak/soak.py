#!/usr/bin/env python3
"""The soak's clients and report (started by tests/soak/run.sh, which explains the run).

  soak.py normal SECONDS OUT.json     well-formed traffic at $SOAK_RATE requests/s
  soak.py hostile SECONDS OUT.json    one bounded loop per class of hostile client
  soak.py drive OUT.json              quiet phase, then soak phase (normal + hostile + SIGHUP
                                      reloads), RSS every 5 s, the state at the end
  soak.py report DRIVE.json EXIT_CODE MARKDOWN   counts sanitizer reports, checks the targets,
                                      writes the markdown; exits 1 when a target is missed

Everything reads its settings from the environment run.sh exports (SOAK_PORT, SOAK_PID, ...).
Only the Python standard library.
"""
import asyncio
import collections
import datetime
import glob
import json
import os
import random
import resource
import signal
import socket
import statistics
import struct
import subprocess
import sys
import time

PORT = int(os.environ.get("SOAK_PORT", "0"))
HOST = "127.0.0.1"
NORMAL_KEY = os.environ.get("SOAK_NORMAL_KEY", "")
HOSTILE_KEY = os.environ.get("SOAK_HOSTILE_KEY", "")
ADMIN_KEY = os.environ.get("SOAK_ADMIN_KEY", "")
MAX_BODY = int(os.environ.get("SOAK_MAX_BODY", "4194304"))
RATE = float(os.environ.get("SOAK_RATE", "20"))
NORMAL_TIMEOUT = 30.0


# ------------------------------------------------------------------------------- HTTP bits

def request(method, path, body=b"", key=None, headers=(), close=True):
    lines = [f"{method} {path} HTTP/1.1", f"Host: {HOST}:{PORT}"]
    if key:
        lines.append(f"Authorization: Bearer {key}")
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append("Content-Type: application/json")
        lines.append(f"Content-Length: {len(body)}")
    lines.extend(headers)
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def dechunk(data):
    """The payload of a chunked body (as much of it as is well framed)."""
    out, pos = bytearray(), 0
    while True:
        end = data.find(b"\r\n", pos)
        if end < 0:
            return bytes(out), False
        try:
            size = int(data[pos:end].split(b";")[0], 16)
        except ValueError:
            return bytes(out), False
        if size == 0:
            return bytes(out), True
        out += data[end + 2:end + 2 + size]
        pos = end + 2 + size + 2
        if pos > len(data):
            return bytes(out), False


def split_response(raw):
    """(status, headers dict, body bytes, complete) of the first response in raw."""
    head_end = raw.find(b"\r\n\r\n")
    if head_end < 0 or not raw.startswith(b"HTTP/1."):
        return None, {}, b"", False
    lines = raw[:head_end].split(b"\r\n")
    try:
        status = int(lines[0].split(b" ")[1])
    except (IndexError, ValueError):
        return None, {}, b"", False
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
    rest = raw[head_end + 4:]
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body, complete = dechunk(rest)
    elif "content-length" in headers:
        n = int(headers["content-length"])
        body, complete = rest[:n], len(rest) >= n
    else:
        body, complete = rest, True
    return status, headers, body, complete


async def read_all(reader, timeout):
    """Reads to EOF or until timeout passes. -> (bytes read, error label or None)."""
    deadline = time.monotonic() + timeout
    chunks = []
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return b"".join(chunks), "timeout"
            b = await asyncio.wait_for(reader.read(65536), left)
            if not b:
                return b"".join(chunks), None
            chunks.append(b)
    except asyncio.TimeoutError:
        return b"".join(chunks), "timeout"
    except ConnectionResetError:
        return b"".join(chunks), "reset" if not chunks else None


def blocking_exchange(data, timeout):
    """exchange() on a blocking socket, for bodies the gateway refuses before reading them
    whole: its answer is still read after a send fails on the connection it closed."""
    try:
        with socket.create_connection((HOST, PORT), timeout=timeout) as s:
            try:
                s.sendall(data)
            except OSError:
                pass
            chunks = []
            while True:
                b = s.recv(65536)
                if not b:
                    break
                chunks.append(b)
            return b"".join(chunks), None
    except socket.timeout:
        return b"".join(chunks) if "chunks" in locals() else b"", "timeout"
    except OSError as e:
        return b"", f"oserror:{e.errno}"


async def exchange(data, timeout, half_close=False):
    """Sends data on a new connection, reads to EOF. -> (raw bytes, error label or None)."""
    writer = None
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, PORT), 10)
        try:
            writer.write(data)
            await writer.drain()
            if half_close:
                writer.write_eof()
        except (BrokenPipeError, ConnectionResetError):
            raw, _ = await read_all(reader, 1)  # an answer sent before it stopped reading
            return raw, None if raw else "closed-while-sending"
        return await read_all(reader, timeout)
    except asyncio.TimeoutError:
        return b"", "connect-timeout"
    except OSError as e:
        return b"", f"oserror:{e.errno}"
    finally:
        if writer is not None:
            writer.close()


# ------------------------------------------------------------------------------- normal traffic

def chat_body(model, stream=False, text="Say something short about soaking."):
    body = {"model": model, "messages": [{"role": "user", "content": text}]}
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return json.dumps(body).encode()


NORMAL_KINDS = [
    ("chat", lambda: request("POST", "/v1/chat/completions", chat_body("up/gpt-soak"), NORMAL_KEY)),
    ("chat_stream", lambda: request("POST", "/v1/chat/completions",
                                    chat_body("up/gpt-soak", True), NORMAL_KEY)),
    ("echo", lambda: request("POST", "/v1/chat/completions", chat_body("echo/echo-1"), NORMAL_KEY)),
    ("echo_stream", lambda: request("POST", "/v1/chat/completions",
                                    chat_body("echo/echo-1", True), NORMAL_KEY)),
    ("models", lambda: request("GET", "/v1/models", key=NORMAL_KEY)),
]
# Out of every 10 requests: 4 chats, 3 streams through the fake upstream, 1 echo, 1 echo
# stream, 1 model list.
NORMAL_MIX = [0, 1, 0, 4, 1, 0, 2, 1, 0, 3]


async def normal_one(kind_index, out):
    kind, make = NORMAL_KINDS[kind_index]
    start = time.monotonic()
    raw, err = await exchange(make(), NORMAL_TIMEOUT)
    elapsed = time.monotonic() - start
    rec = {"kind": kind, "t": time.time(), "latency": elapsed}
    if err:
        rec["outcome"] = err
    else:
        status, headers, body, complete = split_response(raw)
        if status is None:
            rec["outcome"] = "no-answer"
        elif status != 200:
            rec["outcome"] = str(status)
            rec["body"] = body[:300].decode("utf-8", "replace")
        elif not complete:
            rec["outcome"] = "truncated"
        elif kind.endswith("stream") and (b"data: [DONE]" not in body or b'"error"' in body):
            rec["outcome"] = "stream-broken"
            rec["body"] = body[-300:].decode("utf-8", "replace")
        else:
            rec["outcome"] = "ok"
    out.append(rec)


async def normal(seconds, out_path):
    records, tasks = [], set()
    start = time.monotonic()
    n = int(seconds * RATE)
    skipped = 0
    for i in range(n):
        due = start + i / RATE
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)  # pacing at a fixed rate, not synchronisation
        if len(tasks) >= 256:
            skipped += 1
            continue
        task = asyncio.ensure_future(normal_one(NORMAL_MIX[i % len(NORMAL_MIX)], records))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.wait(tasks, timeout=NORMAL_TIMEOUT + 15)
    with open(out_path, "w") as f:
        json.dump({"records": records, "skipped": skipped, "planned": n}, f)


# ------------------------------------------------------------------------------- hostile classes

def nested(depth, open_="[", close="]", inner="1"):
    return open_ * depth + inner + close * depth


DEEP = 5000
MSG = '"messages":[{"role":"user","content":"hi"}]'


def deep_bodies():
    arr = nested(DEEP)
    obj = nested(DEEP, '{"a":', "}", "1")
    tool = ('{"type":"function","function":{"name":"f","parameters":{"type":"object",'
            '"properties":{"x":' + nested(DEEP, '{"items":', "}", '{"type":"string"}') + "}}}}")
    return [
        ("/v1/chat/completions", '{"model":"up/gpt-soak",' + MSG + ',"metadata":' + arr +
         ',"stream_options":{"include_usage":false}}'),
        ("/v1/chat/completions", '{"model":"up/gpt-soak","model":' + arr + "," + MSG + "}"),
        ("/v1/chat/completions", '{"model":"anth/claude-soak",' + MSG + ',"tools":[' + tool + "]}"),
        ("/v1/messages", '{"model":"anth/claude-soak","max_tokens":10,' + MSG +
         ',"tools":[{"name":"f","input_schema":' + obj + "}]}"),
        ("/v1/chat/completions", '{"model":"echo/echo-1","messages":[{"role":"user","content":' +
         arr + "}]}"),
        ("/v1/chat/completions", '{"model":"echo/echo-1",' + MSG + ',"stream":true,"x":' + obj + "}"),
        ("/v1/embeddings", '{"model":"echo/echo-1","input":' + arr + "}"),
        ("/v1/chat/completions", arr),
        ("/v1/chat/completions", obj),
    ]


class Hostile:
    """One loop per class; each attempt returns a label, counted per class."""

    def __init__(self, seconds):
        self.end = time.monotonic() + seconds
        self.counts = collections.defaultdict(collections.Counter)
        self.sent = collections.Counter()
        self.spans = collections.defaultdict(list)  # class -> [(start, end)] of its attempts
        self.rng = random.Random(23)
        self.deep = [(p, b.encode()) for p, b in deep_bodies()]
        # The big echo prompt (SOAK_BIG_BYTES, default 200 KB of words), within max_body_bytes.
        words = int(os.environ.get("SOAK_BIG_BYTES", "200000")) // 5
        self.big_prompt = " ".join("w%d" % (i % 1000) for i in range(words)).encode()

    def left(self):
        return self.end - time.monotonic()

    @staticmethod
    def label(raw, err):
        status, _, _, _ = split_response(raw)
        if status is None:
            return err or ("closed-silently" if not raw else "garbage")
        # An answer, but the connection was then left open (timeout) or reset.
        return str(status) + (f"+{err}" if err else "")

    async def loop(self, name, attempt, workers, pause):
        async def worker(w):
            i = w
            while self.left() > 0:
                started = time.time()
                try:
                    label = await attempt(i)
                except (OSError, asyncio.IncompleteReadError) as e:
                    label = type(e).__name__
                self.spans[name].append((started, time.time()))
                self.counts[name][label] += 1
                self.sent[name] += 1
                i += workers
                await asyncio.sleep(min(pause, max(self.left(), 0)))
        await asyncio.gather(*(worker(w) for w in range(workers)))

    # -- JSON nested thousands deep: bodies, tool parameters, a duplicated model key, metadata
    async def deep_json(self, i):
        path, body = self.deep[i % len(self.deep)]
        raw, err = await exchange(request("POST", path, body, HOSTILE_KEY), 30)
        return self.label(raw, err)

    # -- bodies and heads over the limits
    async def oversize(self, i):
        v = i % 6
        if v == 0:  # a body over max_body_bytes, really sent
            body = b'{"model":"echo/echo-1","messages":[{"role":"user","content":"' + \
                b"x" * (MAX_BODY + 1000) + b'"}]}'
            data = request("POST", "/v1/chat/completions", body, HOSTILE_KEY)
        elif v == 1:  # a Content-Length of 10 GB announced, little sent
            data = ("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                    f"Authorization: Bearer {HOSTILE_KEY}\r\nContent-Type: application/json\r\n"
                    "Content-Length: 10000000000\r\nConnection: close\r\n\r\n{").encode()
        elif v == 2:  # a chunked body over the limit
            chunk = b"x" * 65536
            n = MAX_BODY // len(chunk) + 2
            data = request("POST", "/v1/chat/completions", b"", HOSTILE_KEY,
                           ["Transfer-Encoding: chunked"]).replace(b"Content-Length: 0\r\n", b"")
            data += (b"10000\r\n" + chunk + b"\r\n") * n + b"0\r\n\r\n"
        elif v == 3:  # one header of 200 KB
            data = request("GET", "/v1/models", key=HOSTILE_KEY, headers=["X-Big: " + "a" * 200000])
        elif v == 4:  # 20000 small headers
            data = request("GET", "/v1/models", key=HOSTILE_KEY,
                           headers=["X-H%d: v" % k for k in range(20000)])
        else:  # a 300 KB request target
            data = request("GET", "/v1/models?q=" + "z" * 300000, key=HOSTILE_KEY)
        raw, err = await asyncio.to_thread(blocking_exchange, data, 30)
        return ["body", "cl-10g", "chunked", "header", "headers", "target"][v] + ":" + \
            self.label(raw, err)

    # -- Transfer-Encoding smuggling: the request behind must never be answered
    async def smuggling(self, i):
        inner = (f"GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {HOSTILE_KEY}"
                 "\r\n\r\n").encode()
        chat = chat_body("echo/echo-1")
        v = i % 7
        head = (f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                f"Authorization: Bearer {HOSTILE_KEY}\r\nContent-Type: application/json\r\n")
        if v == 0:
            data = (head + "Transfer-Encoding: gzip\r\n\r\n").encode() + inner
        elif v == 1:
            data = (head + "Transfer-Encoding: chunked, identity\r\n\r\n").encode() + \
                b"%x\r\n%s\r\n0\r\n\r\n" % (len(chat), chat) + inner
        elif v == 2:
            data = (head + f"Transfer-Encoding: chunked\r\nContent-Length: {len(chat)}\r\n\r\n"
                    ).encode() + b"0\r\n\r\n" + inner
        elif v == 3:
            data = (head + f"Content-Length: {len(chat)}\r\nContent-Length: {len(chat) + 5}"
                    "\r\n\r\n").encode() + chat + inner
        elif v == 4:
            data = (head.replace("HTTP/1.1", "HTTP/1.0") + "Transfer-Encoding: chunked\r\n\r\n"
                    ).encode() + b"%x\r\n%s\r\n0\r\n\r\n" % (len(chat), chat) + inner
        elif v == 5:
            data = (head + "Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n"
                    ).encode() + b"0\r\n\r\n" + inner
        else:
            data = (head + "Transfer-Encoding:  xchunked\r\n\r\n").encode() + inner
        raw, err = await exchange(data, 15)
        answers = sum(1 for line in raw.split(b"\r\n") if line.startswith(b"HTTP/1."))
        label = self.label(raw, err)
        return label + ("+SMUGGLED" if answers > 1 else "")

    # -- malformed chunked bodies
    async def bad_chunked(self, i):
        chat = chat_body("echo/echo-1")
        bad = [
            b"zz\r\n" + chat + b"\r\n0\r\n\r\n",
            b"%x\r\n%s0\r\n\r\n" % (len(chat), chat),  # no CRLF after the data
            b"fffffffffffffffffffffff\r\n" + chat + b"\r\n0\r\n\r\n",
            b"-1\r\n" + chat + b"\r\n0\r\n\r\n",
            b"%x;" % len(chat) + b"e" * 100000 + b"\r\n" + chat + b"\r\n0\r\n\r\n",
            b"%x\r\n%s\r\n0\r\nX-Trailer: " % (len(chat), chat) + b"t" * 100000 + b"\r\n\r\n",
            b"%x\r\n%s" % (len(chat) + 100, chat),  # cut short, then nothing more
            b" %x \r\n%s\r\n0\r\n\r\n" % (len(chat), chat),
        ]
        v = i % len(bad)
        data = request("POST", "/v1/chat/completions", b"", HOSTILE_KEY,
                       ["Transfer-Encoding: chunked"]).replace(
                           b"Content-Length: 0\r\n", b"") + bad[v]
        raw, err = await exchange(data, 40, half_close=(v == 6))
        return f"v{v}:" + self.label(raw, err)

    # -- slowloris: a head, or a body, one byte at a time
    async def slowloris(self, i):
        body_kind = i % 2 == 1
        if body_kind:
            first = request("POST", "/v1/chat/completions", b"", HOSTILE_KEY, close=False
                            ).replace(b"Content-Length: 0", b"Content-Length: 100000")
            drip = b"x" * 100000
        else:
            first = b""
            drip = request("GET", "/v1/models", key=HOSTILE_KEY, headers=[
                "X-Slow-%d: %s" % (k, "s" * 50) for k in range(200)])
        writer = None
        start = time.monotonic()
        kind = "body" if body_kind else "head"
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, PORT), 10)
            writer.write(first)
            read = asyncio.ensure_future(reader.read(65536))
            for b in drip:
                if self.left() <= 0 or time.monotonic() - start > 120:
                    read.cancel()
                    return f"{kind}:gave-up-open"
                writer.write(bytes([b]))
                await writer.drain()
                done, _ = await asyncio.wait({read}, timeout=0.5)
                if done:
                    got = read.result()
                    secs = time.monotonic() - start
                    status = self.label(got, None) if got else "closed"
                    return f"{kind}:{status}-after-{int(secs // 10) * 10}s"
            read.cancel()
            return f"{kind}:sent-all"
        except (ConnectionResetError, BrokenPipeError):
            secs = time.monotonic() - start
            return f"{kind}:reset-after-{int(secs // 10) * 10}s"
        finally:
            if writer is not None:
                writer.close()

    # -- clients hanging up mid-stream and before the first byte
    async def hangup(self, i):
        v = i % 5
        writer = None
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, PORT), 10)
            if v == 0:  # mid-stream, through the upstream
                writer.write(request("POST", "/v1/chat/completions", chat_body("up/slow", True),
                                     HOSTILE_KEY))
                got = await asyncio.wait_for(reader.readuntil(b"data: "), 20)
                label = "mid-stream" if got.startswith(b"HTTP/1.1 200") else "mid-stream:no-200"
            elif v in (1, 2):  # before the first byte, a stream (1) or a whole answer (2)
                stream = v == 1
                writer.write(request("POST", "/v1/chat/completions", chat_body("up/late", stream),
                                     HOSTILE_KEY))
                await writer.drain()
                await asyncio.sleep(0.2)
                label = "before-first-byte" if stream else "before-first-byte-nonstream"
            elif v == 3:  # mid-stream with a reset (SO_LINGER 0)
                writer.write(request("POST", "/v1/chat/completions", chat_body("up/slow", True),
                                     HOSTILE_KEY))
                await asyncio.wait_for(reader.readuntil(b"data: "), 20)
                sock = writer.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                label = "mid-stream-reset"
            else:  # mid-body
                body = chat_body("echo/echo-1", text="y" * 50000)
                data = request("POST", "/v1/chat/completions", body, HOSTILE_KEY)
                writer.write(data[:len(data) // 2])
                await writer.drain()
                label = "mid-body"
            return label
        except asyncio.TimeoutError:
            return f"v{v}:timeout"
        except asyncio.IncompleteReadError:
            return f"v{v}:closed-early"
        finally:
            if writer is not None:
                writer.close()

    # -- large echo streamed prompts (within max body) and big embeddings inputs
    async def big_echo(self, i):
        v = i % 4
        if v == 0:
            body = chat_body("echo/echo-1", True, self.big_prompt.decode())
            kind = "stream"
        elif v == 1:  # as many inputs as an embeddings request may hold
            body = json.dumps({"model": "echo/echo-1", "input": [
                "input number %d" % k for k in range(2048)]}).encode()
            kind = "embeddings-2048"
        elif v == 2:  # more inputs than that: refused
            body = json.dumps({"model": "echo/echo-1",
                               "input": ["input number %d" % k for k in range(10000)]}).encode()
            kind = "embeddings-10k"
        else:
            body = json.dumps({"model": "echo/echo-1",
                               "input": self.big_prompt.decode()}).encode()
            kind = "embeddings-one-input"
        start = time.monotonic()
        raw, err = await exchange(request("POST", "/v1/chat/completions" if v == 0
                                          else "/v1/embeddings", body, HOSTILE_KEY), 120)
        secs = time.monotonic() - start
        status, _, payload, complete = split_response(raw)
        if err or status is None:
            return f"{kind}:{err or 'no-answer'}"
        ok = complete and (v != 0 or b"data: [DONE]" in payload)
        return f"{kind}:{status}{'' if ok else '-incomplete'}:{'<5s' if secs < 5 else '>=5s'}"

    # -- random model names: metric label spam
    async def random_models(self, i):
        r = self.rng
        v = i % 5
        if v == 0:
            model = "echo/" + "".join(r.choice("abcdefghijklmnopqrstuvwxyz0123456789-_.")
                                      for _ in range(r.randint(1, 40)))
        elif v == 1:
            model = "".join(chr(r.randint(1, 0x2FFF)) for _ in range(r.randint(1, 30)))
        elif v == 2:
            model = "echo/a\nkey=admin status=200\x00\x1b[31m" + str(i)
        elif v == 3:
            model = "echo/" + "m" * 100000
        else:
            model = "nosuch%d/model%d" % (r.randint(0, 1 << 30), i)
        raw, err = await exchange(request("POST", "/v1/chat/completions",
                                          chat_body(model, i % 2 == 0), HOSTILE_KEY), 30)
        return self.label(raw, err)

    # -- bad and missing auth
    async def bad_auth(self, i):
        v = i % 7
        body = chat_body("echo/echo-1")
        if v == 0:
            data = request("POST", "/v1/chat/completions", body)
        elif v == 1:
            data = request("POST", "/v1/chat/completions", body, "sk-michi-" + "0" * 40)
        elif v == 2:
            data = request("POST", "/v1/chat/completions", body, "k" * 60000)
        elif v == 3:
            data = request("POST", "/v1/chat/completions", body,
                           headers=["Authorization: Basic dXNlcjpwYXNz"])
        elif v == 4:
            data = request("POST", "/v1/chat/completions", body,
                           headers=["Authorization: Bearer"])
        elif v == 5:
            data = request("GET", "/admin/keys", key=NORMAL_KEY)
        else:
            data = request("GET", "/admin/keys", key="x" * 32)
        raw, err = await exchange(data, 30)
        return self.label(raw, err)

    # -- admin API junk with the admin key
    async def admin_junk(self, i):
        deep = nested(DEEP, '{"a":', "}", "1")
        junk = [
            ("POST", "/admin/keys", '{"id":"j%d","class":"application","secret":"abc"}' % i),
            ("POST", "/admin/keys", '{"id":12,"class":"application"}'),
            ("POST", "/admin/keys", '{"id":"j","class":7}'),
            ("POST", "/admin/keys", '{"id":"j","class":"application","rpm":9223372036854775808}'),
            ("POST", "/admin/keys", '{"id":"j","class":"application","daily_usd":-1}'),
            ("POST", "/admin/keys", '{"id":"j","class":"application","models":' + deep + "}"),
            ("POST", "/admin/keys", deep),
            ("POST", "/admin/keys", "not json at all"),
            ("POST", "/admin/keys", "[]"),
            ("POST", "/admin/keys", ""),
            ("PATCH", "/admin/keys/soak-made", '{"class":"application"}'),
            ("PATCH", "/admin/keys/nosuch-%d" % i, '{"rpm":5}'),
            ("PATCH", "/admin/keys/soak-made", '{"rpm":"many"}'),
            ("PUT", "/admin/routes/junk", '{"targets":"not-a-list"}'),
            ("PUT", "/admin/routes/junk", '{"targets":[' + deep + "]}"),
            ("PUT", "/admin/routes/junk", '{"targets":["up/gpt-soak"],"attempt_timeout_ms":-5}'),
            ("GET", "/admin/usage?since=yesterday-ish&group_by=everything", ""),
            ("DELETE", "/admin/keys/nosuch-%d" % i, ""),
        ]
        method, path, body = junk[i % len(junk)]
        raw, err = await exchange(request(method, path, body.encode(), ADMIN_KEY), 30)
        return f"{method} {path.split('?')[0][:18]}:" + self.label(raw, err)

    # -- random raw bytes
    async def raw_bytes(self, i):
        r = self.rng
        v = i % 3
        if v == 0:
            data = r.randbytes(r.randint(1, 65536))
        elif v == 1:
            data = b"POST /v1/chat/completions HTTP/1.1\r\n" + r.randbytes(r.randint(1, 8192))
        else:
            data = b"\r\n".join(bytes(r.randint(32, 126) for _ in range(r.randint(0, 80)))
                                for _ in range(r.randint(1, 50))) + b"\r\n\r\n"
        raw, err = await exchange(data, 70, half_close=True)
        return self.label(raw, err)


# SOAK_INTENSITY scales how often each hostile worker tries again (2: twice as often).
INTENSITY = float(os.environ.get("SOAK_INTENSITY", "1"))
HOSTILE_CLASSES = [
    # name, workers, pause between one worker's attempts (s)
    ("deep_json", 2, 0.2 / INTENSITY),
    ("oversize", 1, 0.4 / INTENSITY),
    ("smuggling", 2, 0.2 / INTENSITY),
    ("bad_chunked", 2, 0.2 / INTENSITY),
    ("slowloris", 16, 0.0),
    ("hangup", 2, 0.2 / INTENSITY),
    ("big_echo", 1, 5 / INTENSITY),
    ("random_models", 2, 0.2 / INTENSITY),
    ("bad_auth", 2, 0.2 / INTENSITY),
    ("admin_junk", 1, 0.2 / INTENSITY),
    ("raw_bytes", 2, 0.2 / INTENSITY),
]


async def hostile(seconds, out_path):
    h = Hostile(seconds)
    # One key made through the admin API, for the junk PATCHes to aim at (config keys are
    # not editable there).
    raw, _ = await exchange(request("POST", "/admin/keys",
                                    b'{"id":"soak-made","class":"application"}', ADMIN_KEY), 30)
    h.counts["admin_junk"]["setup POST /admin/keys:" + h.label(raw, None)] += 1
    only = os.environ.get("SOAK_CLASSES", "").split(",")
    classes = [c for c in HOSTILE_CLASSES if only == [""] or c[0] in only]
    await asyncio.gather(*(h.loop(name, getattr(h, name), workers, pause)
                           for name, workers, pause in classes))
    with open(out_path, "w") as f:
        json.dump({"sent": h.sent, "counts": {k: dict(v) for k, v in h.counts.items()},
                   "spans": {k: v for k, v in h.spans.items() if k != "slowloris"},
                   "classes": [[n, w, p] for n, w, p in classes]}, f)


# ------------------------------------------------------------------------------- the driver

def rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def cpu_seconds(pid):
    """User + system CPU time the process has used so far."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def http_get(path, key=None, timeout=10):
    """A blocking GET on the gateway: (status or None, body)."""
    try:
        with socket.create_connection((HOST, PORT), timeout=timeout) as s:
            s.sendall(request("GET", path, key=key))
            chunks = []
            while True:
                b = s.recv(65536)
                if not b:
                    break
                chunks.append(b)
        status, _, body, _ = split_response(b"".join(chunks))
        return status, body
    except OSError:
        return None, b""


def upstream_stats():
    port = int(os.environ["SOAK_UPSTREAM_PORT"])
    try:
        with socket.create_connection((HOST, port), timeout=10) as s:
            s.sendall(b"GET /__stats HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
            data = b""
            while True:
                b = s.recv(65536)
                data += b
                status, _, body, complete = split_response(data)
                if complete and status is not None or not b:
                    return json.loads(body) if status == 200 else None
    except (OSError, ValueError):
        return None


def spawn(mode, seconds, out):
    return subprocess.Popen([sys.executable, os.path.abspath(__file__), mode, str(seconds), out])


def drive(out_path):
    pid = int(os.environ["SOAK_PID"])
    quiet = float(os.environ.get("QUIET_SECONDS", "30"))
    soak = float(os.environ.get("SOAK_SECONDS", "300"))
    reload_every = float(os.environ.get("SOAK_RELOAD_EVERY", "3"))
    tmp = os.environ["SOAK_TMP"]
    result = {"rss": [], "reloads": 0, "late_wakeups": [], "load_start": os.getloadavg(), "quiet": quiet,
              "soak": soak, "rate": RATE, "started": time.time()}
    _, metrics = http_get("/metrics")
    result["metrics_bytes_start"] = len(metrics)

    def sample(phase, t0):
        kb = rss_kb(pid)
        result["rss"].append({"phase": phase, "t": round(time.monotonic() - t0, 1), "kb": kb})

    # Quiet phase: the normal traffic alone.
    up_pid = int(os.environ.get("SOAK_UPSTREAM_PID", "0"))

    def children_cpu():
        r = resource.getrusage(resource.RUSAGE_CHILDREN)
        return r.ru_utime + r.ru_stime

    def phase_cpu(name, t0, cpu0, kids0, up0):
        secs = time.monotonic() - t0
        cpu1, up1 = cpu_seconds(pid), cpu_seconds(up_pid)
        result["cpu_" + name] = {
            "gateway": (cpu1 - cpu0) / secs if cpu1 is not None else None,
            "clients": (children_cpu() - kids0) / secs,
            "upstream": (up1 - up0) / secs if up1 is not None and up0 is not None else None}

    t0 = time.monotonic()
    cpu0, kids0, up0 = cpu_seconds(pid), children_cpu(), cpu_seconds(up_pid)
    p = spawn("normal", quiet, f"{tmp}/normal-quiet.json")
    next_sample = t0
    while p.poll() is None:
        if time.monotonic() >= next_sample:
            sample("quiet", t0)
            next_sample += 5
        time.sleep(0.2)  # polling the client's end and the sampling clock
    phase_cpu("quiet", t0, cpu0, kids0, up0)
    # Soak phase: the same normal traffic, the hostile clients, SIGHUP reloads.
    t0 = time.monotonic()
    cpu0, kids0, up0 = cpu_seconds(pid), children_cpu(), cpu_seconds(up_pid)
    pn = spawn("normal", soak, f"{tmp}/normal-soak.json")
    ph = spawn("hostile", soak, f"{tmp}/hostile.json")
    next_sample, next_reload = t0, t0 + reload_every
    alive = True
    while pn.poll() is None or ph.poll() is None:
        now = time.monotonic()
        if now >= next_sample:
            sample("soak", t0)
            next_sample += 5
        if reload_every > 0 and now >= next_reload and now - t0 < soak:
            try:
                os.kill(pid, signal.SIGHUP)
                result["reloads"] += 1
            except ProcessLookupError:
                alive = False
            next_reload += reload_every
        before = time.monotonic()
        time.sleep(0.1)
        # The machine's own stalls: how late this process wakes up from a 100 ms sleep.
        late = time.monotonic() - before - 0.1
        if late > 0.1:
            result["late_wakeups"].append([round(before + 0.1 - t0, 2), round(late, 3)])
    sample("end", t0)
    phase_cpu("soak", t0, cpu0, kids0, up0)
    result["load_end"] = os.getloadavg()
    result["alive_end"] = alive and rss_kb(pid) is not None
    status, _ = http_get("/readyz")
    result["readyz_end"] = status
    _, metrics = http_get("/metrics")
    result["metrics_bytes_end"] = len(metrics)
    result["upstream"] = upstream_stats()
    for name in ("normal-quiet", "normal-soak", "hostile"):
        try:
            with open(f"{tmp}/{name}.json") as f:
                result[name] = json.load(f)
        except (OSError, ValueError):
            result[name] = None
    with open(out_path, "w") as f:
        json.dump(result, f)


# ------------------------------------------------------------------------------- the report

def pct(values, q):
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def sanitizer_reports(asan_dir, daemon_log):
    reports, files = 0, []
    for path in sorted(glob.glob(os.path.join(asan_dir, "*"))) + [daemon_log]:
        try:
            with open(path, errors="replace") as f:
                text = f.read()
        except OSError:
            continue
        n = (text.count("ERROR: AddressSanitizer") + text.count("ERROR: LeakSanitizer") +
             text.count("runtime error:") + text.count("WARNING: AddressSanitizer"))
        if n:
            reports += n
            files.append(path)
    return reports, files


def report(drive_path, exit_code, md_path):
    with open(drive_path) as f:
        d = json.load(f)
    asan_dir = os.environ["SOAK_ASAN_DIR"]
    reports, report_files = sanitizer_reports(asan_dir, os.environ["SOAK_DAEMON_LOG"])
    misses, lines = [], []

    def normal_summary(name):
        data = d.get(name) or {"records": [], "skipped": 0, "planned": 0}
        recs = data["records"]
        ok = [r["latency"] * 1000 for r in recs if r["outcome"] == "ok"]
        outcomes = collections.Counter(r["outcome"] for r in recs)
        fivexx = sum(v for k, v in outcomes.items() if k.isdigit() and k.startswith("5"))
        conn = sum(v for k, v in outcomes.items() if not k.isdigit() and k != "ok")
        other = sum(v for k, v in outcomes.items() if k.isdigit() and not k.startswith("5"))
        samples = [r for r in recs if r["outcome"] != "ok"][:5]
        return {"n": len(recs), "planned": data["planned"], "skipped": data["skipped"],
                "p50": pct(ok, 0.50), "p99": pct(ok, 0.99), "max": max(ok) if ok else 0,
                "5xx": fivexx, "conn": conn, "other": other, "outcomes": dict(outcomes),
                "samples": samples}

    q, s = normal_summary("normal-quiet"), normal_summary("normal-soak")
    ratio = s["p99"] / q["p99"] if q["p99"] and q["p99"] == q["p99"] else float("nan")
    rss_soak = [r for r in d["rss"] if r["phase"] == "soak" and r["kb"]]
    first = [r["kb"] for r in rss_soak if r["t"] < 60]
    last = [r["kb"] for r in rss_soak if r["t"] >= d["soak"] - 60]
    rss_first = statistics.median(first) if first else 0
    rss_last = statistics.median(last) if last else 0
    rss_growth = (rss_last - rss_first) / rss_first if rss_first else float("nan")
    upstream = d.get("upstream") or {}

    def check(ok, what):
        if not ok:
            misses.append(what)
        return "met" if ok else "**MISSED**"

    date = datetime.datetime.utcfromtimestamp(d["started"]).strftime("%Y-%m-%d %H:%M UTC")
    lines += [
        f"# Michi soak, {date}",
        "",
        f"Binary: `{os.environ.get('MICHI_BIN', '?')}`, commit {os.environ.get('SOAK_COMMIT', '?')}; "
        f"quiet phase {d['quiet']:.0f} s, soak phase {d['soak']:.0f} s; normal traffic "
        f"{d['rate']:g} requests/s in both; {d['reloads']} SIGHUP reloads during the soak; "
        f"load average (1, 5, 15 min) at the start {fmt_load(d['load_start'])}, at the end "
        f"{fmt_load(d['load_end'])} ({os.cpu_count()} cores). CPU used, in % of one core, "
        f"quiet phase / soak phase: the gateway {fmt_cpu(d, 'gateway')}, the soak's Python "
        f"clients {fmt_cpu(d, 'clients')}, the fake upstream {fmt_cpu(d, 'upstream')}.",
        "",
        "| target | figure | result |",
        "|---|---|---|",
        f"| sanitizer reports = 0 | {reports} | {check(reports == 0, 'sanitizer reports')} |",
        f"| 5xx to well-formed requests = 0 | quiet {q['5xx']}, soak {s['5xx']} | "
        f"{check(q['5xx'] + s['5xx'] == 0, '5xx to well-formed requests')} |",
        f"| connection errors, timeouts, broken streams of well-formed requests = 0 | quiet "
        f"{q['conn']}, soak {s['conn']} | {check(q['conn'] + s['conn'] == 0, 'connection errors')} |",
        f"| other non-200 to well-formed requests = 0 | quiet {q['other']}, soak {s['other']} | "
        f"{check(q['other'] + s['other'] == 0, 'non-200 answers')} |",
        f"| normal p99 soak / quiet ≤ 2 | {s['p99']:.1f} ms / {q['p99']:.1f} ms = {ratio:.2f} | "
        f"{check(ratio <= 2.0, 'p99 ratio')} |",
        f"| RSS flat (last minute's median within 10 % of the first minute's) | "
        f"{rss_first / 1024:.0f} MiB → {rss_last / 1024:.0f} MiB ({rss_growth * 100:+.1f} %) | "
        f"{check(rss_growth <= 0.10, 'RSS growth')} |",
        f"| alive and /readyz 200 at the end | alive {d['alive_end']}, /readyz "
        f"{d['readyz_end']} | {check(d['alive_end'] and d['readyz_end'] == 200, 'alive at the end')} |",
        f"| nothing smuggled to the upstream | {upstream.get('unexpected', '?')} unexpected "
        f"requests | {check(upstream.get('unexpected') == 0, 'upstream saw smuggled requests')} |",
        f"| clean exit on SIGTERM | exit code {exit_code} | "
        f"{check(str(exit_code) == '0', 'exit code')} |",
        "",
        "## Normal traffic",
        "",
        "| phase | requests (planned) | p50 ms | p99 ms | max ms | outcomes |",
        "|---|---|---|---|---|---|",
    ]
    for name, x in (("quiet", q), ("soak", s)):
        outs = ", ".join(f"{k} {v}" for k, v in sorted(x["outcomes"].items()))
        lines.append(f"| {name} | {x['n']} ({x['planned']}, {x['skipped']} skipped) | "
                     f"{x['p50']:.1f} | {x['p99']:.1f} | {x['max']:.1f} | {outs} |")
    t_start = {name: min((r["t"] for r in (d.get(name) or {"records": []})["records"]),
                         default=0) for name in ("normal-quiet", "normal-soak")}
    slowest = sorted((d.get("normal-soak") or {"records": []})["records"],
                     key=lambda r: -r["latency"])[:10]
    lines += ["", "Slowest in the soak (seconds into the phase, kind, ms): " + ", ".join(
        f"{r['t'] - r['latency'] - t_start['normal-soak']:.1f} s {r['kind']} "
        f"{r['latency'] * 1000:.0f}" for r in slowest) + "."]
    late = d.get("late_wakeups", [])
    slow = [r for r in (d.get("normal-soak") or {"records": []})["records"]
            if r["outcome"] == "ok" and r["latency"] * 1000 > 2 * q["p99"]]
    near = [r for r in slow if any(
        r["t"] - r["latency"] - t_start["normal-soak"] - 1 <= w <= r["t"] - t_start["normal-soak"]
        + 1 for w, _ in late)]
    lines += ["", f"The machine: the driver (a process of its own, outside the gateway) woke up "
              f"more than 100 ms late from a 100 ms sleep {len(late)} times in the soak "
              f"(worst {max((x for _, x in late), default=0) * 1000:.0f} ms); of the "
              f"{len(slow)} normal requests slower than twice the quiet p99, {len(near)} were "
              "under way within a second of such a late wake-up."]
    lines += ["", "Which hostile class was under way during the slow requests (share of the slow "
              "normal requests overlapping one of its attempts, against the share of all normal "
              "requests that did): " + overlap_summary(d, slow) + "."]
    for name, x in (("quiet", q), ("soak", s)):
        for r in x["samples"]:
            lines.append(f"- {name} failure sample: {json.dumps(r)[:400]}")
    lines += ["", "## RSS (every 5 s)", "",
              "Quiet: " + " ".join(f"{r['kb'] // 1024}" for r in d["rss"]
                                   if r["phase"] == "quiet" and r["kb"]) + " MiB",
              "",
              "Soak: " + " ".join(f"{r['kb'] // 1024}" for r in rss_soak) + " MiB",
              "",
              f"`/metrics`: {d['metrics_bytes_start']} bytes before, {d['metrics_bytes_end']} "
              "after.", "",
              "## Hostile clients", "",
              "| class | workers | sent | what they got |", "|---|---|---|---|"]
    hostile_data = d.get("hostile") or {"sent": {}, "counts": {}, "classes": []}
    total = 0
    for name, workers, _ in hostile_data["classes"]:
        counts = hostile_data["counts"].get(name, {})
        got = ", ".join(f"{k} ×{v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1]))
        sent = hostile_data["sent"].get(name, 0)
        total += sent
        lines.append(f"| {name} | {workers} | {sent} | {got} |")
    lines += ["", f"{total} hostile requests in all; the fake upstream saw "
              f"{json.dumps(upstream.get('requests', {}))}.", ""]
    if report_files:
        lines += ["Sanitizer reports in: " + ", ".join(report_files), ""]
    lines.append("Result: " + ("all targets met." if not misses else
                               "missed: " + "; ".join(misses) + "."))
    text = "\n".join(lines) + "\n"
    os.makedirs(os.path.dirname(os.path.abspath(md_path)), exist_ok=True)
    with open(md_path, "w") as f:
        f.write(text)
    print(text)
    return 1 if misses else 0


def overlap_summary(d, slow):
    import bisect
    hostile_data = d.get("hostile") or {}
    normal = [r for r in (d.get("normal-soak") or {"records": []})["records"]
              if r["outcome"] == "ok"]
    if not slow or not normal:
        return "no slow requests"
    out = []
    for name, spans in sorted((hostile_data.get("spans") or {}).items()):
        spans = sorted(spans)
        starts = [a for a, _ in spans]
        longest = max((b - a for a, b in spans), default=0)

        def overlaps(r):
            begin, end = r["t"] - r["latency"], r["t"]
            k = bisect.bisect_right(starts, end)
            j = bisect.bisect_left(starts, begin - longest)
            return any(spans[m][1] >= begin for m in range(j, k))
        share_slow = sum(map(overlaps, slow)) / len(slow)
        share_all = sum(map(overlaps, normal)) / len(normal)
        out.append((share_slow - share_all, f"{name} {share_slow * 100:.0f} % vs "
                                            f"{share_all * 100:.0f} %"))
    return "; ".join(text for _, text in sorted(out, reverse=True))


def fmt_cpu(d, who):
    def one(phase):
        x = (d.get("cpu_" + phase) or {}).get(who)
        return f"{x * 100:.0f}" if x is not None else "?"
    return f"{one('quiet')} / {one('soak')}"


def fmt_load(load):
    return " ".join(f"{x:.2f}" for x in load)


def main():
    mode = sys.argv[1]
    if mode == "normal":
        asyncio.run(normal(float(sys.argv[2]), sys.argv[3]))
    elif mode == "hostile":
        asyncio.run(hostile(float(sys.argv[2]), sys.argv[3]))
    elif mode == "drive":
        drive(sys.argv[2])
    elif mode == "report":
        sys.exit(report(sys.argv[2], sys.argv[3], sys.argv[4]))
    else:
        sys.exit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
