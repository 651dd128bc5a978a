// libFuzzer target for the whole gateway as a client meets it: the input's bytes are sent,
// raw, on a fresh TCP connection to the real gateway running in this process (sessions, the
// request parser, the framing checks, admission with the ledger, the admin API, the exchange
// with a fake upstream behind it, the relay), then the connection is half-closed and the
// answer read to its end. Every source of the gateway is instrumented, so a crash, an
// assertion or a sanitizer report anywhere fails the run. Checked besides: no request ends
// in the catch-all (a 500 internal_error), and every connection is answered and closed within
// a bound (no stall).

#include "michi/admin/assets.hpp"
#include "michi/app/gateway.hpp"
#include "michi/config/config.hpp"
#include "michi/core/secret.hpp"
#include "michi/obs/log.hpp"
#include "support/fake_upstream.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

namespace michi::admin {
// The dashboard's files are not embedded in this target: /dashboard/ answers 404.
const asset* find_asset(std::string_view) { return nullptr; }
} // namespace michi::admin

namespace {

// The client secret of the config's key (seed inputs use it).
constexpr const char* secret = "mk-dev-FuzzFuzzFuzzFuzzFuzzFuzzFuzzFuzzFuzz1";
constexpr const char* admin_key = "admin-FuzzAdminKeyFuzzAdminKeyFuzzAdminKey";

// How long one input may take, end to end, before it counts as a stall.
constexpr int answer_seconds = 20;

[[noreturn]] void fail(const char* what) {
    std::fprintf(stderr, "http_session_fuzz: %s\n", what);
    std::abort();
}

// The fake upstream and the gateway in front of it, made once for the whole run.
struct world {
    michi::test::fake_upstream upstream;
    std::unique_ptr<michi::gateway> gw;

    world() {
        michi::obs::setup_logging({"error", "text"}); // no access log: the run would drown in it
        const std::string base = upstream.base_url();
        const std::string yaml =
            "server: { listen: \"127.0.0.1:0\", threads: 1, max_body_bytes: 262144,\n"
            "          max_header_bytes: 8192, idle_timeout: 2s, read_timeout: 2s }\n"
            "admin: { key: \"" +
            std::string(admin_key) +
            "\" }\n"
            "store: { sqlite: \":memory:\" }\n"
            "log: { level: error }\n"
            "providers:\n"
            "  fake: { type: openai, base_url: \"" +
            base +
            "/v1\", api_key: \"sk-up\" }\n"
            "  claude: { type: anthropic, base_url: \"" +
            base +
            "\", api_key: \"sk-up\" }\n"
            "  gem: { type: gemini, base_url: \"" +
            base +
            "\", api_key: \"sk-up\" }\n"
            "  echo: { type: echo }\n"
            "models:\n"
            "  fake/gpt-test: { upstream: gpt-test, input_per_mtok: 1, output_per_mtok: 2 }\n"
            "  claude/c: { upstream: c, input_per_mtok: 1, output_per_mtok: 2 }\n"
            "  gem/g: { upstream: g, input_per_mtok: 1, output_per_mtok: 2 }\n"
            "routes:\n"
            "  r: { targets: [claude/c, gem/g, fake/gpt-test] }\n"
            "keys:\n"
            "  - id: fuzzer\n"
            "    class: developer\n"
            "    secret_sha256: \"" +
            michi::sha256_hex(secret) +
            "\"\n"
            "    rpm: 1000000\n";
        auto loaded = michi::config::load_string(yaml);
        if (!loaded.cfg) {
            for (const auto& e : loaded.errors) {
                std::fprintf(stderr, "config: %s\n", e.c_str());
            }
            fail("the fuzzer's config does not load");
        }
        auto rt = michi::pipeline::snapshot::build(loaded.cfg);
        if (!rt) {
            fail(rt.error().message.c_str());
        }
        gw = std::make_unique<michi::gateway>(rt.value());
        gw->start();
    }
};

world& the_world() {
    static world* w = new world(); // never destroyed: the workers run until the process ends
    return *w;
}

// Sends the input on a new connection, half-closes, and reads the answer to its end.
std::string exchange(std::uint16_t port, const std::uint8_t* data, std::size_t size) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
        fail("socket() failed");
    }
    timeval tv{};
    tv.tv_sec = answer_seconds;
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
        fail("connect() to the gateway failed");
    }
    std::size_t sent = 0;
    while (sent < size) {
        const auto n = ::send(fd, data + sent, size - sent, MSG_NOSIGNAL);
        if (n <= 0) {
            break; // the gateway closed early (an error answer): read what it said
        }
        sent += static_cast<std::size_t>(n);
    }
    ::shutdown(fd, SHUT_WR);
    std::string answer;
    char buf[16384];
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(answer_seconds);
    for (;;) {
        const auto n = ::recv(fd, buf, sizeof buf, 0);
        if (n > 0) {
            if (answer.size() < (1u << 20)) {
                answer.append(buf, static_cast<std::size_t>(n));
            }
            if (std::chrono::steady_clock::now() > give_up) {
                fail("the gateway kept sending past the time bound");
            }
            continue;
        }
        if (n == 0 || errno == ECONNRESET) {
            break;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            fail("the gateway neither answered nor closed the connection in time");
        }
        break;
    }
    ::close(fd);
    return answer;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    world& w = the_world();
    const std::string answer = exchange(w.gw->port(), data, size);
    // The catch-all's answer: a 500 with its fixed message (an echo can repeat the message,
    // but never with that status; the fake upstream's own 500s say something else).
    if (answer.find("HTTP/1.1 500 ") != std::string::npos &&
        answer.find("Internal error while handling the request.") != std::string::npos) {
        fail("a request ended in the catch-all (500 internal_error)");
    }
    return 0;
}
