#pragma once
// A Redis connection for one worker: commands pipelined on one TCP connection, replies
// matched to their callers in order, connected on first use and again after a failure.
// Replies are read by hiredis's reply reader and commands written by its formatter; the
// socket is the worker's own Asio socket, so a call never blocks the event loop. Every
// call ends: with the reply, or with an error when the connection fails, when Redis does
// not answer within the timeout, or at once while a failed connect is backing off.

#include "michi/core/net.hpp"
#include "michi/store/redis_url.hpp"

#include <boost/asio/any_completion_handler.hpp>

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

struct redisReader;

namespace michi::store {

struct redis_value {
    enum class kind { nil, integer, string, status, error, array };
    kind type = kind::nil;
    long long integer = 0;
    std::string str; // string, status and error replies
    std::vector<redis_value> elements;

    bool is_error() const { return type == kind::error; }
};

using redis_handler = net::any_completion_handler<void(error_code, redis_value)>;

class redis_client {
public:
    redis_client(executor ex, redis_url url, std::chrono::milliseconds timeout);
    ~redis_client();
    redis_client(const redis_client&) = delete;
    redis_client& operator=(const redis_client&) = delete;

    // Sends one command behind those in flight. Completes on the client's executor with
    // the reply (an error reply is a reply) or an error code when there is none.
    template <typename Token>
    auto async_call(std::vector<std::string> args, Token&& token) {
        return net::async_initiate<Token, void(error_code, redis_value)>(
            [this](auto handler, std::vector<std::string> a) {
                submit(std::move(a), redis_handler(std::move(handler)));
            },
            token, std::move(args));
    }

    // Why the last call failed without a reply ("connection refused", ...).
    const std::string& last_error() const { return last_error_; }
    const redis_url& url() const { return url_; }

private:
    struct pending {
        std::string bytes; // the formatted command
        redis_handler handler;
        bool internal = false; // AUTH/SELECT of the connection's handshake
        steady_clock::time_point sent{};
    };
    enum class state { idle, connecting, ready };

    void submit(std::vector<std::string> args, redis_handler h);
    void connect();
    void on_connected(std::uint64_t gen);
    void write_more();
    void read_more(std::uint64_t gen);
    void arm_watchdog();
    void complete(redis_handler h, error_code ec, redis_value v);
    void fail(const std::string& why, bool backoff);

    executor ex_;
    redis_url url_;
    std::chrono::milliseconds timeout_;
    tcp_resolver resolver_;
    tcp_socket socket_;
    steady_timer watchdog_;
    bool watchdog_armed_ = false;
    state state_ = state::idle;
    std::uint64_t generation_ = 0; // bumped by every connect and failure
    steady_clock::time_point connect_deadline_{};
    steady_clock::time_point retry_after_{};
    bool writing_ = false;
    std::string write_buf_;
    std::deque<pending> queue_;    // not written yet
    std::deque<pending> awaiting_; // written, reply not read yet
    std::unique_ptr<char[]> read_buf_;
    std::unique_ptr<redisReader, void (*)(redisReader*)> reader_;
    std::string last_error_;
};

// A reply's element as a number: integers as they are, strings parsed (Lua returns
// fractional numbers as strings); 0 when neither.
double redis_number(const redis_value& v);

} // namespace michi::store
