// A large request body is parsed, translated and answered off the worker's event loop: while
// its work waits or runs on the CPU pool, the worker's other connections keep being served.
// The pool's threads are held by the test (a gate) so that the large request's work cannot
// end before the test says: what is asserted is the order of events, not their timing.

#include "hostile/hostile_support.hpp"
#include "support/fake_upstream.hpp"
#include "support/gateway_harness.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <future>
#include <optional>
#include <thread>
#include <vector>

namespace michi::test {
namespace {

const std::string small_chat =
    R"({"model":"echo/small","messages":[{"role":"user","content":"hello"}]})";

// A chat request to echo with a message of `bytes` characters.
std::string large_chat(std::size_t bytes, const std::string& extra = "") {
    return R"({"model":"echo/large","messages":[{"role":"user","content":")" +
           std::string(bytes, 'a') + R"("}])" + extra + "}";
}

// Holds every thread of the gateway's CPU pool until opened (or destroyed).
class pool_gate {
public:
    explicit pool_gate(cpu_pool& pool) : opened_(open_.get_future().share()) {
        for (std::size_t i = 0; i < pool.threads(); ++i) {
            net::post(pool.get_executor(), [f = opened_] { f.wait(); });
        }
    }
    ~pool_gate() { open(); }
    void open() {
        if (!done_) {
            done_ = true;
            open_.set_value();
        }
    }

private:
    std::promise<void> open_;
    std::shared_future<void> opened_;
    bool done_ = false;
};

// A client connection sending raw bytes and reading the answer in a thread of its own.
class raw_client {
public:
    raw_client(std::uint16_t port, std::string bytes)
        : thread_([this, port, b = std::move(bytes)] {
              answer_ = raw_exchange(port, b, false, std::chrono::seconds(120));
              done_ = true;
          }) {}
    ~raw_client() {
        if (thread_.joinable()) {
            thread_.join();
        }
    }
    bool done() const { return done_; }
    const raw_answer& wait() {
        thread_.join();
        return answer_;
    }

private:
    raw_answer answer_;
    std::atomic<bool> done_{false};
    std::thread thread_;
};

std::string with_close(const std::string& body) {
    return raw_post("/v1/chat/completions", body, "Connection: close\r\n");
}

TEST(LargeBodyTest, SmallRequestsAreServedWhileALargeBodyIsParsed) {
    fake_upstream up;
    gateway_harness gw(basic_config(up.base_url())); // one worker
    auto& pool = gw.gw().state().cpu();
    std::optional<raw_client> large; // (before the gate: it is opened before the join)
    pool_gate gate(pool);
    // 4 MB of prompt: parsed on the pool, where it waits behind the gate.
    large.emplace(gw.port(), with_close(large_chat(4 * 1024 * 1024)));
    ASSERT_TRUE(eventually([&] { return pool.jobs() == 1; }, std::chrono::seconds(60)))
        << "the large body's work never reached the pool";
    // The same worker answers small requests meanwhile, each on a connection of its own.
    for (int i = 0; i < 20; ++i) {
        const auto r = gw.chat(small_chat);
        ASSERT_EQ(r.status, 200u) << r.body;
    }
    EXPECT_FALSE(large->done()); // (its work is still held)
    gate.open();
    const auto& answer = large->wait();
    EXPECT_TRUE(answer.bytes.starts_with("HTTP/1.1 200 ")) << answer.bytes.substr(0, 300);
    EXPECT_GT(answer.bytes.size(), 4u * 1024 * 1024); // the echo of the whole prompt
    EXPECT_EQ(pool.jobs(), 0u);
}

TEST(LargeBodyTest, AFullPoolQueueIs503WithRetryAfter) {
    fake_upstream up;
    gateway_harness gw(basic_config(up.base_url()));
    auto& pool = gw.gw().state().cpu();
    std::vector<std::unique_ptr<raw_client>> waiting; // (before the gate, as above)
    pool_gate gate(pool);
    // Just over the threshold: as many large requests as the queue holds, each waiting.
    for (std::size_t i = 0; i < pool.max_jobs(); ++i) {
        waiting.push_back(
            std::make_unique<raw_client>(gw.port(), with_close(large_chat(70 * 1024))));
    }
    ASSERT_TRUE(
        eventually([&] { return pool.jobs() == pool.max_jobs(); }, std::chrono::seconds(60)));
    // One more is refused at once, cleanly; a small one is still served.
    auto refused = gw.chat(large_chat(70 * 1024));
    EXPECT_EQ(refused.status, 503u) << refused.body;
    EXPECT_EQ(refused.headers["retry-after"], "1");
    EXPECT_NE(refused.body.find("\"api_error\""), std::string::npos) << refused.body;
    EXPECT_EQ(gw.chat(small_chat).status, 200u);
    gate.open();
    for (auto& c : waiting) {
        const auto& a = c->wait();
        EXPECT_TRUE(a.bytes.starts_with("HTTP/1.1 200 ")) << a.bytes.substr(0, 300);
    }
}

TEST(LargeBodyTest, AClientGoneWhileItsBodyIsParsedEndsItsRequestOnly) {
    fake_upstream up;
    gateway_harness gw(basic_config(up.base_url()));
    auto& pool = gw.gw().state().cpu();
    pool_gate gate(pool);
    // A large request to the fake upstream; the client hangs up while its body waits.
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(gw.port());
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr), 0);
    std::string body = large_chat(1024 * 1024);
    body.replace(body.find("echo/large"), 10, "fake/gpt-test");
    const auto bytes = raw_post("/v1/chat/completions", body);
    for (std::size_t sent = 0; sent < bytes.size();) {
        const auto n = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
        ASSERT_GT(n, 0);
        sent += static_cast<std::size_t>(n);
    }
    ASSERT_TRUE(eventually([&] { return pool.jobs() == 1; }, std::chrono::seconds(60)));
    ::close(fd);
    gate.open();
    ASSERT_TRUE(eventually([&] { return pool.jobs() == 0; }, std::chrono::seconds(60)));
    // Its result was dropped: nothing went upstream; the gateway serves on.
    EXPECT_EQ(gw.chat(small_chat).status, 200u);
    EXPECT_EQ(up.request_count(), 0u);
}

// Each step that runs off the event loop for a large body gives what the inline path gives:
// translated requests and answers (Responses and Messages to a chat-only upstream, whole and
// streamed), echo answers and embeddings, and the response cache's key.
TEST(LargeBodyTest, EveryPathServesALargeBodyAsTheInlinePathDoes) {
    fake_upstream up;
    gateway_harness gw(basic_config(
        up.base_url(),
        {.rest = "routes:\n  cached: { targets: [fake/gpt-test], cache: { ttl: 10m } }\n"}));
    const std::string text(200 * 1024, 'w');
    const auto post = [&](const std::string& path, const std::string& body) {
        return gw.request(http::verb::post, path, body,
                          {{"authorization", std::string("Bearer ") + test_secret}});
    };
    // Responses, translated to chat: the upstream gets the whole text; the answer is a response.
    auto r = post("/v1/responses", R"({"model":"fake/gpt-test","input":")" + text + R"("})");
    ASSERT_EQ(r.status, 200u) << r.body.substr(0, 300);
    auto out = nlohmann::json::parse(r.body);
    EXPECT_EQ(out["object"], "response");
    auto sent = nlohmann::json::parse(up.requests().back().body);
    EXPECT_EQ(sent["messages"][0]["content"], text);
    // The same streamed (the upstream's answer is not a stream: a whole one, translated).
    r = post("/v1/responses",
             R"({"model":"fake/gpt-test","stream":true,"input":")" + text + R"("})");
    EXPECT_EQ(r.status, 200u) << r.body.substr(0, 300);
    // Messages, translated to chat.
    r = post("/v1/messages", R"({"model":"fake/gpt-test","max_tokens":5,"messages":[)"
                             R"({"role":"user","content":")" +
                                 text + R"("}]})");
    ASSERT_EQ(r.status, 200u) << r.body.substr(0, 300);
    out = nlohmann::json::parse(r.body);
    EXPECT_EQ(out["type"], "message");
    sent = nlohmann::json::parse(up.requests().back().body);
    EXPECT_EQ(sent["messages"][0]["content"], text);
    // Echo, whole and streamed, and embeddings.
    r = post("/v1/chat/completions", large_chat(text.size()));
    ASSERT_EQ(r.status, 200u) << r.body.substr(0, 300);
    out = nlohmann::json::parse(r.body);
    EXPECT_GE(out["choices"][0]["message"]["content"].get<std::string>().size(), 1u);
    r = post("/v1/chat/completions", large_chat(text.size(), R"(,"stream":true)"));
    EXPECT_EQ(r.status, 200u);
    EXPECT_NE(r.body.find("data: [DONE]"), std::string::npos);
    r = post("/v1/embeddings", R"({"model":"echo/e","input":")" + text + R"("})");
    ASSERT_EQ(r.status, 200u) << r.body.substr(0, 300);
    EXPECT_EQ(nlohmann::json::parse(r.body)["object"], "list");
    // The response cache: the same large request twice is one upstream request.
    const auto cached =
        R"({"model":"cached","messages":[{"role":"user","content":")" + text + R"("}]})";
    const auto before = up.request_count();
    r = post("/v1/chat/completions", cached);
    EXPECT_EQ(r.headers["x-michi-cache"], "miss");
    r = post("/v1/chat/completions", cached);
    EXPECT_EQ(r.status, 200u);
    EXPECT_EQ(r.headers["x-michi-cache"], "hit");
    EXPECT_EQ(up.request_count(), before + 1);
    EXPECT_EQ(gw.gw().state().cpu().jobs(), 0u);
}

} // namespace
} // namespace michi::test
