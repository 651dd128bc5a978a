// The michi-gateway binary itself: command line, logs, SIGHUP reload and SIGTERM drain.
#include "support/daemon_process.hpp"
#include "support/fake_upstream.hpp"
#include "support/gateway_harness.hpp"

#include "michi/core/secret.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <sys/resource.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <optional>
#include <regex>
#include <thread>
#include <vector>

namespace michi::test {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

class DaemonTest : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() /
               ("michi-daemon-" + std::to_string(::getpid()) + "-" +
                ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::create_directories(dir_);
    }
    void TearDown() override { fs::remove_all(dir_); }

    std::string write_config(const std::string& text, const std::string& name = "michi.yaml") {
        const auto path = dir_ / name;
        std::ofstream(path) << text;
        return path.string();
    }

    // A config on an ephemeral port with the echo provider, the fake upstream and the test key.
    std::string daemon_config(const std::string& fake_url, const std::string& extra_keys = "") {
        std::string cfg = basic_config(fake_url);
        cfg.replace(cfg.find("log: { level: warn }"), 20, "log: { level: info }");
        cfg.replace(cfg.find("\":memory:\""), 10, "\"" + (dir_ / "michi.db").string() + "\"");
        return cfg + extra_keys;
    }

    fs::path dir_;
};

http_reply call(std::uint16_t port, const std::string& secret, const std::string& body) {
    net::io_context ioc;
    beast::tcp_stream stream(ioc);
    stream.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
    http::request<http::string_body> req{http::verb::post, "/v1/chat/completions", 11};
    req.set(http::field::host, "127.0.0.1");
    req.set(http::field::authorization, "Bearer " + secret);
    req.set(http::field::content_type, "application/json");
    req.body() = body;
    req.prepare_payload();
    http::write(stream, req);
    beast::flat_buffer buffer;
    http::response<http::string_body> res;
    http::read(stream, buffer, res);
    return {res.result_int(), {}, res.body()};
}

TEST_F(DaemonTest, VersionAndHelp) {
    auto [vcode, vout] = run_binary({"--version"});
    EXPECT_EQ(vcode, 0);
    EXPECT_NE(vout.find("michi-gateway "), std::string::npos);
    auto [hcode, hout] = run_binary({"--help"});
    EXPECT_EQ(hcode, 0);
    EXPECT_NE(hout.find("keygen --class"), std::string::npos);
    auto [bcode, bout] = run_binary({"--bogus"});
    EXPECT_EQ(bcode, 2);
}

TEST_F(DaemonTest, KeygenPrintsPrefixedSecretAndItsDigest) {
    const std::map<std::string, std::string> prefixes = {
        {"developer", "mk-dev-"}, {"application", "mk-app-"}, {"agent", "mk-agt-"}};
    std::set<std::string> seen;
    for (const auto& [cls, prefix] : prefixes) {
        auto [code, out] = run_binary({"keygen", "--class", cls});
        ASSERT_EQ(code, 0) << out;
        std::smatch m;
        ASSERT_TRUE(std::regex_search(
            out, m,
            std::regex("secret: (" + prefix + "[0-9A-Za-z]{32,})\nsecret_sha256: ([0-9a-f]{64})")))
            << out;
        EXPECT_EQ(sha256_hex(m[1].str()), m[2].str());
        EXPECT_TRUE(seen.insert(m[1].str()).second);
    }
    auto [code, out] = run_binary({"keygen", "--class", "robot"});
    EXPECT_EQ(code, 2);
}

TEST_F(DaemonTest, CheckReportsEveryProblemWithItsPathAndExits1) {
    const auto bad = write_config(R"(
server: { threads: many }
providers:
  echo: { type: echo }
routes:
  r: { targets: [echo/x, nope/y] }
bogus: 1
)");
    auto [code, out] = run_binary({"--config", bad, "--check"});
    EXPECT_EQ(code, 1);
    EXPECT_NE(out.find("server.threads"), std::string::npos) << out;
    EXPECT_NE(out.find("routes.r.targets[1]: unknown model \"nope/y\""), std::string::npos) << out;
    EXPECT_NE(out.find("bogus: unknown field"), std::string::npos) << out;
    // The daemon refuses to start on it too.
    auto [rcode, rout] = run_binary({"--config", bad});
    EXPECT_EQ(rcode, 1);
    const auto good = write_config("providers: { echo: { type: echo } }\n", "good.yaml");
    auto [gcode, gout] = run_binary({"--config", good, "--check"});
    EXPECT_EQ(gcode, 0) << gout;
}

TEST_F(DaemonTest, ARedisStoreIsNamedAtStartWithoutItsPassword) {
    const auto cfg = write_config("server: { listen: \"127.0.0.1:0\" }\n"
                                  "store: { sqlite: \"" +
                                  (dir_ / "michi.db").string() +
                                  "\", redis: \"redis://:hunter2@cache:6379/0\" }\n"
                                  "providers: { echo: { type: echo } }\n");
    auto [code, out] = run_binary({"--config", cfg, "--check"});
    EXPECT_EQ(code, 0) << out;
    EXPECT_EQ(out.find("warning"), std::string::npos) << out;
    daemon_process d({"--config", cfg});
    ASSERT_NE(d.wait_listening(), 0u) << d.output();
    EXPECT_NE(d.output().find("ledger: shared through Redis at cache:6379"), std::string::npos)
        << d.output();
    EXPECT_EQ(d.output().find("hunter2"), std::string::npos) << d.output();
    d.signal(SIGTERM);
    EXPECT_EQ(d.wait_exit(), 0);
}

// This process's soft limit on open files lowered while it lives (a child started meanwhile
// inherits it), then put back.
class lowered_open_files_limit {
public:
    explicit lowered_open_files_limit(rlim_t soft) {
        ok_ = ::getrlimit(RLIMIT_NOFILE, &saved_) == 0;
        rlimit lim = saved_;
        lim.rlim_cur = soft;
        ok_ = ok_ && ::setrlimit(RLIMIT_NOFILE, &lim) == 0;
    }
    ~lowered_open_files_limit() { ::setrlimit(RLIMIT_NOFILE, &saved_); }
    bool ok() const { return ok_; }

private:
    rlimit saved_{};
    bool ok_ = false;
};

// Started with the soft limit many systems give services (here 64, far below the 200
// connections of the test), the daemon raises it to the hard limit and serves them all at once.
TEST_F(DaemonTest, ServesMoreConnectionsAtOnceThanTheOpenFilesLimitItStartedWith) {
    rlimit lim{};
    ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &lim), 0);
    constexpr std::size_t clients = 200;
    if (lim.rlim_max != RLIM_INFINITY && lim.rlim_max < 4 * clients) {
        GTEST_SKIP() << "the hard limit on open files is " << lim.rlim_max;
    }
    fake_upstream up;
    const std::string secret = "mk-app-ManyConnectionsManyConnectionsManyConn1";
    const auto cfg = write_config(daemon_config(
        up.base_url(), key_entry("many", "application", secret, "    rpm: 100000\n")));
    std::optional<daemon_process> d;
    {
        lowered_open_files_limit low(64);
        ASSERT_TRUE(low.ok());
        d.emplace(std::vector<std::string>{"--config", cfg});
    }
    const auto port = d->wait_listening();
    ASSERT_NE(port, 0) << d->output();
    EXPECT_NE(d->output().find("soft limit raised from 64 to "), std::string::npos) << d->output();

    // Every connection open and its request sent before any answer is read.
    net::io_context ioc;
    std::vector<tcp::socket> sockets;
    const std::string body =
        R"({"model":"echo/echo-1","messages":[{"role":"user","content":"hi"}]})";
    const std::string request = "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                                "Authorization: Bearer " +
                                secret + "\r\nContent-Length: " + std::to_string(body.size()) +
                                "\r\n\r\n" + body;
    const timeval ten_seconds{10, 0};
    for (std::size_t i = 0; i < clients; ++i) {
        auto& s = sockets.emplace_back(ioc);
        s.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
        ::setsockopt(s.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &ten_seconds, sizeof ten_seconds);
        net::write(s, net::buffer(request));
    }
    std::size_t answered = 0;
    for (auto& s : sockets) {
        beast::flat_buffer buffer;
        http::response<http::string_body> res;
        error_code ec;
        http::read(s, buffer, res, ec);
        if (ec) {
            ADD_FAILURE() << "connection " << answered << ": " << ec.message();
            break;
        }
        EXPECT_EQ(res.result_int(), 200u) << res.body();
        ++answered;
    }
    EXPECT_EQ(answered, clients) << d->output();
    d->signal(SIGTERM);
    EXPECT_EQ(d->wait_exit(), 0) << d->output();
}

TEST_F(DaemonTest, AccessLogLineNamesTheKeyButNeverTheSecretOrPrompt) {
    fake_upstream up;
    daemon_process d({"--config", write_config(daemon_config(up.base_url()))});
    const auto port = d.wait_listening();
    ASSERT_NE(port, 0) << d.output();
    const auto r = call(
        port, test_secret,
        R"({"model":"echo/echo-1","messages":[{"role":"user","content":"TOP-SECRET-PROMPT"}]})");
    EXPECT_EQ(r.status, 200u);
    ASSERT_TRUE(d.wait_for_line("key=tester")) << d.output();
    EXPECT_NE(d.output().find("model=echo/echo-1 status=200"), std::string::npos) << d.output();
    EXPECT_EQ(d.output().find("TOP-SECRET-PROMPT"), std::string::npos);
    EXPECT_EQ(d.output().find(test_secret), std::string::npos);
    d.signal(SIGTERM);
    EXPECT_EQ(d.wait_exit(), 0);
}

TEST_F(DaemonTest, SighupKeepsOldConfigWhenNewIsBadAndSwapsInAGoodOne) {
    fake_upstream up;
    const auto path = write_config(daemon_config(up.base_url()));
    daemon_process d({"--config", path});
    const auto port = d.wait_listening();
    ASSERT_NE(port, 0) << d.output();
    const std::string second = "mk-dev-SecondKeySecondKeySecondKeySecond99";
    const std::string body =
        R"({"model":"echo/echo-1","messages":[{"role":"user","content":"x"}]})";
    EXPECT_EQ(call(port, second, body).status, 401u);

    write_config("server: { threads: -1 }\n");
    d.signal(SIGHUP);
    ASSERT_TRUE(d.wait_for_line("reload rejected")) << d.output();
    EXPECT_EQ(call(port, test_secret, body).status, 200u);

    write_config(daemon_config(up.base_url(), "  - id: second\n    class: developer\n"
                                              "    secret_sha256: \"" +
                                                  sha256_hex(second) + "\"\n"));
    d.signal(SIGHUP);
    ASSERT_TRUE(d.wait_for_line("config reloaded")) << d.output();
    EXPECT_EQ(call(port, second, body).status, 200u);
    d.signal(SIGTERM);
    EXPECT_EQ(d.wait_exit(), 0);
}

TEST_F(DaemonTest, SigtermFinishesInFlightRequestsThenExits0) {
    fake_upstream up;
    up.set_handler([](const recorded_request& req) {
        auto r = default_chat_completion(req);
        r.head_delay = 500ms;
        return r;
    });
    daemon_process d({"--config", write_config(daemon_config(up.base_url()))});
    const auto port = d.wait_listening();
    ASSERT_NE(port, 0) << d.output();
    http_reply slow;
    std::thread client([&] {
        slow = call(port, test_secret,
                    R"({"model":"fake/gpt-test","messages":[{"role":"user","content":"x"}]})");
    });
    ASSERT_TRUE(up.wait_until([&] { return up.request_count() == 1; }));
    d.signal(SIGTERM);
    client.join();
    EXPECT_EQ(slow.status, 200u);
    EXPECT_EQ(d.wait_exit(), 0) << d.output();
    EXPECT_NE(d.output().find("draining"), std::string::npos);
}

} // namespace
} // namespace michi::test

namespace michi::test {
namespace {

// An upstream whose every answer costs $0.20 on fake/gpt-test ($2 per million output).
fake_response costly(const recorded_request&) {
    return json_response(
        200, R"({"id":"c","object":"chat.completion","choices":[{"index":0,)"
             R"("message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],)"
             R"("usage":{"prompt_tokens":0,"completion_tokens":100000,"total_tokens":100000}})");
}

class LedgerPersistenceTest : public DaemonTest {
protected:
    // What the daemon's SQLite file holds for the key, read as another process would.
    double persisted_spend(const std::string& key) {
        sqlite3* db = nullptr;
        double usd = 0;
        if (sqlite3_open_v2((dir_ / "michi.db").c_str(), &db, SQLITE_OPEN_READONLY, nullptr) ==
            SQLITE_OK) {
            sqlite3_stmt* st = nullptr;
            if (sqlite3_prepare_v2(
                    db, "SELECT SUM(usd) FROM spend WHERE key_id = ? AND period LIKE 'd:%'", -1,
                    &st, nullptr) == SQLITE_OK) {
                sqlite3_bind_text(st, 1, key.c_str(), -1, SQLITE_TRANSIENT);
                if (sqlite3_step(st) == SQLITE_ROW) {
                    usd = sqlite3_column_double(st, 0);
                }
            }
            sqlite3_finalize(st);
        }
        sqlite3_close(db);
        return usd;
    }

    std::string budget_config(const std::string& fake_url) {
        // $0.50 a day: two requests ($0.40) leave room for one more, three exhaust it.
        return daemon_config(fake_url,
                             key_entry("limited", "developer", limited_, "    daily_usd: 0.5\n"));
    }
    const std::string limited_ = "mk-dev-PersistPersistPersistPersistPersist12";
    const std::string body_ =
        R"({"model":"fake/gpt-test","max_tokens":10,"messages":[{"role":"user","content":"x"}]})";
};

TEST_F(LedgerPersistenceTest, SpendSurvivesACleanRestart) {
    fake_upstream up;
    up.set_handler(costly);
    const auto path = write_config(budget_config(up.base_url()));
    {
        daemon_process d({"--config", path});
        const auto port = d.wait_listening();
        ASSERT_NE(port, 0) << d.output();
        for (int i = 0; i < 3; ++i) {
            ASSERT_EQ(call(port, limited_, body_).status, 200u);
        }
        d.signal(SIGTERM);
        ASSERT_EQ(d.wait_exit(), 0) << d.output();
    }
    daemon_process again({"--config", path});
    const auto port = again.wait_listening();
    ASSERT_NE(port, 0) << again.output();
    const auto refused = call(port, limited_, body_);
    EXPECT_EQ(refused.status, 403u) << refused.body;
    EXPECT_NE(refused.body.find("budget_exceeded"), std::string::npos);
    EXPECT_EQ(up.request_count(), 3u);
}

TEST_F(LedgerPersistenceTest, AKill9LosesAtMostTheLastFlushInterval) {
    fake_upstream up;
    up.set_handler(costly);
    auto cfg = budget_config(up.base_url());
    cfg.replace(cfg.find("store: {"), 8, "store: { flush_interval: 50ms,");
    const auto path = write_config(cfg);
    {
        daemon_process d({"--config", path});
        const auto port = d.wait_listening();
        ASSERT_NE(port, 0) << d.output();
        for (int i = 0; i < 3; ++i) {
            ASSERT_EQ(call(port, limited_, body_).status, 200u);
        }
        // The flush interval passes (observed in the file, not slept): the charges are on disk.
        ASSERT_TRUE(up.wait_until([&] { return persisted_spend("limited") > 0.6 - 1e-9; },
                                  std::chrono::seconds(10)));
        d.signal(SIGKILL);
        d.wait_exit();
    }
    daemon_process again({"--config", path});
    const auto port = again.wait_listening();
    ASSERT_NE(port, 0) << again.output();
    EXPECT_EQ(call(port, limited_, body_).status, 403u);
}

} // namespace
} // namespace michi::test

namespace michi::test {
namespace {

TEST(ShippedConfigTest, EveryConfigInTheRepositoryPassesCheck) {
    for (const auto* file : {"config/michi.yaml", "config/providers.example.yaml"}) {
        auto [code, out] =
            run_binary({"--config", std::string(MICHI_SOURCE_DIR) + "/" + file, "--check"});
        EXPECT_EQ(code, 0) << file << ":\n" << out;
    }
}

} // namespace
} // namespace michi::test
