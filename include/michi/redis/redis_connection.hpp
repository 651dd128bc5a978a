#pragma once
// One connection to one Redis server (or Sentinel), plain TCP or TLS, on the caller's event
// loop: commands pipelined, replies matched to their callers in order, connected on first use
// (AUTH, SELECT and, for a primary found through Sentinel, a ROLE check first) and again after
// a failure. Every call ends: with the reply, or with an error when the connection fails,
// when the server does not answer within the timeout, or at once while a failed connect is
// backing off.

#include "michi/core/net.hpp"
#include "michi/redis/host_lookup.hpp"
#include "michi/redis/redis_protocol.hpp"
#include "michi/redis/redis_url.hpp"

#include <boost/asio/any_completion_handler.hpp>

#include <deque>
#include <memory>
#include <string>

namespace michi::redis {

using redis_handler = net::any_completion_handler<void(error_code, redis_value)>;

// What a connection says when it opens.
struct redis_hello {
    std::string username;
    std::string password;
    int db = 0;
    bool expect_primary = false;             // ROLE must answer "master" (else the connect fails)
    ssl::context* tls = nullptr;             // TLS with this context (verify_peer, SNI, host name)
    std::chrono::milliseconds backoff{1000}; // calls fail at once this long after a failed connect
};

class redis_connection {
public:
    // lookup: how the host's name is looked up (system_lookup when empty; a test's own).
    redis_connection(executor ex, redis_endpoint at, redis_hello hello,
                     std::chrono::milliseconds timeout, blocking_lookup lookup = {});
    ~redis_connection();
    redis_connection(const redis_connection&) = delete;
    redis_connection& operator=(const redis_connection&) = delete;

    // Sends one command (its RESP bytes) behind those in flight; asking: ASKING goes first
    // (a cluster's ASK redirection). Completes on the connection's executor; with
    // not_connected when the command was never sent (the connect failed or is backing off:
    // safe to send elsewhere), connection_aborted when it was and no reply came.
    void submit(std::string bytes, redis_handler h, bool asking = false);

    template <typename Token>
    auto async_call(std::string bytes, bool asking, Token&& token) {
        return net::async_initiate<Token, void(error_code, redis_value)>(
            [this](auto handler, std::string b, bool ask) {
                submit(std::move(b), redis_handler(std::move(handler)), ask);
            },
            token, std::move(bytes), asking);
    }
    // Another server from now on (Sentinel named a new primary): calls in flight fail.
    void retarget(redis_endpoint at);

    const redis_endpoint& endpoint() const { return at_; }
    // Why the last call failed without a reply ("connection refused", ...).
    const std::string& last_error() const { return last_error_; }
    // True while a failed connect is backing off (calls fail at once).
    bool backing_off() const;
    // Drops the connection: calls in flight fail, the next one connects again.
    void reset(const std::string& why);

private:
    struct pending;
    enum class state { idle, connecting, ready };

    void connect();
    void on_resolved(std::uint64_t gen, error_code ec, const std::vector<tcp::endpoint>& found);
    void on_tcp(std::uint64_t gen);
    void on_connected(std::uint64_t gen);
    void write_more();
    void read_more(std::uint64_t gen);
    void on_read(std::uint64_t gen, std::size_t n);
    void arm_watchdog();
    void complete(redis_handler h, error_code ec, redis_value v);
    void fail(const std::string& why, bool backoff);
    tcp_socket& socket();

    executor ex_;
    redis_endpoint at_;
    redis_hello hello_;
    std::chrono::milliseconds timeout_;
    host_lookup lookup_; // each connect looks the host up again (a restarted server moves)
    // Shared with the handlers of their operations: a stream replaced by a new connection
    // lives until its last operation completed (an SSL stream must).
    std::shared_ptr<tcp_socket> plain_;
    std::shared_ptr<ssl::stream<tcp_socket>> tls_;
    std::shared_ptr<void> stream_alive() const;
    steady_timer watchdog_;
    bool watchdog_armed_ = false;
    state state_ = state::idle;
    std::uint64_t generation_ = 0; // bumped by every connect and failure
    steady_clock::time_point connect_deadline_{};
    steady_clock::time_point retry_after_{};
    bool writing_ = false;
    std::size_t handshake_left_ = 0; // replies of the handshake still to come
    std::string write_buf_;
    std::deque<pending> queue_;    // not written yet
    std::deque<pending> awaiting_; // written, reply not read yet
    std::unique_ptr<char[]> read_buf_;
    std::unique_ptr<redis_reader> reader_;
    std::string last_error_;
};

} // namespace michi::redis
