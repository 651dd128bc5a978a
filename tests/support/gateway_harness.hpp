#pragma once
// Runs the real gateway in-process on 127.0.0.1:0 from a YAML text, and talks to it
// with a small blocking HTTP client.

#include "michi/app/gateway.hpp"

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>

namespace michi::test {

// The client secret every harness config accepts (key id "tester").
inline constexpr const char* test_secret = "mk-dev-TestSecretTestSecretTestSecretTest1234";
// Secrets of the keys the guard tests add ("limited", a developer key, and "agent").
inline const std::string limited = "mk-dev-LimitedLimitedLimitedLimitedLimited1";
inline const std::string agent = "mk-agt-AgentAgentAgentAgentAgentAgentAgent12";
// The admin key of a config with admin_section() among its top-level sections, and the
// header that sends it.
inline const std::string admin_key = "admin-TestAdminKeyTestAdminKeyTestAdminKey";
inline std::string admin_section() { return "admin: { key: \"" + admin_key + "\" }\n"; }
inline std::map<std::string, std::string> admin_auth() {
    return {{"authorization", "Bearer " + admin_key}};
}

struct http_reply {
    unsigned status = 0;
    std::map<std::string, std::string> headers; // lower-cased names
    std::string body;
};

// YAML lines added to the sections of basic_config (each indented as its section wants).
struct config_parts {
    std::string server;    // "  idle_timeout: 300ms\n"
    std::string providers; // "  other: { type: openai, base_url: ... }\n"
    std::string models;
    std::string keys;  // more entries of the keys list: "  - id: x\n    class: agent\n..."
    std::string rest;  // top-level sections: "routes:\n  ..."
    std::string store; // more fields of store: ", redis: \"redis://...\""
    std::string sqlite = ":memory:"; // store.sqlite
};

// Polls check every 10 ms until it holds (true) or `limit` passes (false): for state that
// another thread or process changes with no event to wait on.
bool eventually(const std::function<bool()>& check,
                std::chrono::milliseconds limit = std::chrono::seconds(10));

// A config with a `fake` openai-type provider at fake_base_url (+"/v1"), an `echo`
// provider, model fake/gpt-test (upstream gpt-test), and the test key.
std::string basic_config(const std::string& fake_base_url, const config_parts& parts = {});

class gateway_harness {
public:
    explicit gateway_harness(const std::string& yaml,
                             guard::wall_clock clock = std::chrono::system_clock::now);
    ~gateway_harness();

    std::uint16_t port() const { return gw_->port(); }
    gateway& gw() { return *gw_; }

    // One request on a fresh connection; headers default to the test key.
    http_reply request(http::verb method, const std::string& target, const std::string& body = "",
                       std::map<std::string, std::string> headers = {
                           {"authorization", std::string("Bearer ") + test_secret}});
    http_reply chat(const std::string& body, const std::string& secret = test_secret) {
        return request(http::verb::post, "/v1/chat/completions", body,
                       {{"authorization", "Bearer " + secret}});
    }

private:
    std::unique_ptr<gateway> gw_;
};

// A key entry for config_parts::keys: id, class, the sha256 of secret, and extra lines
// ("    daily_usd: 1\n").
std::string key_entry(const std::string& id, const std::string& cls, const std::string& secret,
                      const std::string& extra = "");

// One connection kept alive across requests, for tests of what the gateway keeps from one
// request of a connection to the next. Each request carries the test key; a body goes as
// JSON; `headers` are added (or replace those).
class kept_alive_client {
public:
    explicit kept_alive_client(std::uint16_t port);
    http::response<http::string_body>
    request(http::verb method, const std::string& target, const std::string& body = "",
            const std::map<std::string, std::string>& headers = {});

private:
    net::io_context ioc_;
    tcp::socket sock_;
    beast::flat_buffer buffer_;
};

// A connected blocking socket to 127.0.0.1:port with a receive timeout, for tests that
// need to misbehave (slow clients, hang-ups).
class raw_client {
public:
    explicit raw_client(std::uint16_t port,
                        std::chrono::milliseconds recv_timeout = std::chrono::seconds(10));
    void send(const std::string& bytes);
    // Reads until `needle` has been seen or the peer closed; returns all bytes read.
    std::string read_until(const std::string& needle);
    // Reads until the peer closes; returns true if it did (false on timeout).
    bool wait_closed();
    void close();

private:
    net::io_context ioc_;
    tcp::socket sock_;
};

} // namespace michi::test
