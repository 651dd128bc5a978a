#include "michi/redis/redis_connection.hpp"

#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <spdlog/spdlog.h>

namespace michi::redis {
namespace {

constexpr std::size_t read_size = 16 * 1024;

std::string command_bytes(const std::vector<std::string>& args) {
    return redis_command(args).bytes();
}

} // namespace

struct redis_connection::pending {
    // What the connection itself checks in a reply of its own handshake (the caller's
    // replies are the caller's to judge).
    enum class check { caller, not_error, primary_role };
    std::string bytes; // the command, until written
    redis_handler handler;
    check what = check::caller;
    steady_clock::time_point sent{};
};

redis_connection::redis_connection(executor ex, redis_endpoint at, redis_hello hello,
                                   std::chrono::milliseconds timeout, blocking_lookup lookup)
    : ex_(ex), at_(std::move(at)), hello_(std::move(hello)), timeout_(timeout),
      lookup_(ex, std::move(lookup)), watchdog_(ex), read_buf_(new char[read_size]) {}

redis_connection::~redis_connection() = default;

tcp_socket& redis_connection::socket() { return tls_ ? tls_->next_layer() : *plain_; }

std::shared_ptr<void> redis_connection::stream_alive() const {
    return tls_ ? std::shared_ptr<void>(tls_) : std::shared_ptr<void>(plain_);
}

bool redis_connection::backing_off() const {
    return state_ == state::idle && steady_clock::now() < retry_after_;
}

void redis_connection::submit(std::string bytes, redis_handler h, bool asking) {
    if (backing_off()) {
        complete(std::move(h), net::error::not_connected, {});
        return;
    }
    if (asking) {
        queue_.push_back(pending{command_bytes({"ASKING"}), {}, pending::check::not_error, {}});
    }
    queue_.push_back(pending{std::move(bytes), std::move(h), pending::check::caller, {}});
    if (state_ == state::idle) {
        connect();
    } else if (state_ == state::ready) {
        write_more();
    }
}

void redis_connection::retarget(redis_endpoint at) {
    reset("the primary moved to " + at.where());
    at_ = std::move(at);
    retry_after_ = {};
}

void redis_connection::reset(const std::string& why) {
    if (state_ != state::idle || !awaiting_.empty() || !queue_.empty()) {
        fail(why, false);
    }
}

void redis_connection::connect() {
    state_ = state::connecting;
    const std::uint64_t gen = ++generation_;
    connect_deadline_ = steady_clock::now() + timeout_;
    if (hello_.tls != nullptr) {
        plain_.reset();
        tls_ = std::make_shared<ssl::stream<tcp_socket>>(ex_, *hello_.tls);
    } else {
        tls_.reset();
        plain_ = std::make_shared<tcp_socket>(ex_);
    }
    arm_watchdog();
    // Off the event loop, on a thread of the lookup's own: one the DNS server leaves hanging
    // (a container's name while it restarts) holds back neither the loop nor the next try's.
    const bool started = lookup_.start(
        at_.host, at_.port, [this, gen](error_code ec, std::vector<tcp::endpoint> found) {
            if (gen == generation_) {
                on_resolved(gen, ec, found);
            }
        });
    if (!started) {
        fail("cannot look " + at_.host + " up: " + std::to_string(host_lookup::max_running) +
                 " lookups of it still unanswered",
             true);
    }
}

void redis_connection::on_resolved(std::uint64_t gen, error_code ec,
                                   const std::vector<tcp::endpoint>& found) {
    if (!ec && found.empty()) {
        ec = net::error::host_not_found;
    }
    if (ec) {
        fail("cannot resolve " + at_.host + ": " + ec.message(), true);
        return;
    }
    net::async_connect(socket(), found,
                       [this, gen, keep = stream_alive()](error_code cec, const tcp::endpoint&) {
                           if (gen != generation_) {
                               return;
                           }
                           if (cec) {
                               fail("cannot connect: " + cec.message(), true);
                               return;
                           }
                           on_tcp(gen);
                       });
}

// TCP is up: TLS first when asked for (SNI for a name, the chain verified against the
// context's trust anchors, the certificate checked to name the host), then the handshake.
void redis_connection::on_tcp(std::uint64_t gen) {
    error_code ignored;
    socket().set_option(tcp::no_delay(true), ignored);
    if (!tls_) {
        on_connected(gen);
        return;
    }
    error_code not_ip;
    net::ip::make_address(at_.host, not_ip);
    if (not_ip && !SSL_set_tlsext_host_name(tls_->native_handle(), at_.host.c_str())) {
        fail("cannot set the TLS server name", true);
        return;
    }
    tls_->set_verify_mode(ssl::verify_peer);
    tls_->set_verify_callback(ssl::host_name_verification(at_.host));
    tls_->async_handshake(
        ssl::stream_base::client, [this, gen, keep = stream_alive()](error_code ec) {
            if (gen != generation_) {
                return;
            }
            if (ec) {
                const long verdict = SSL_get_verify_result(tls_->native_handle());
                std::string why = "TLS handshake failed: " + ec.message();
                if (verdict != X509_V_OK) {
                    why += std::string(" (") + X509_verify_cert_error_string(verdict) +
                           "; is the CA in the system trust store or in ca_file?)";
                } else if (ec.message().find("certificate verify failed") != std::string::npos) {
                    why += " (the certificate does not name " + at_.host + ")";
                }
                fail(why, true);
                return;
            }
            on_connected(gen);
        });
}

// The handshake goes alone, ahead of the callers' commands, which wait for its replies: a
// connection that turns out wrong (refused AUTH, not a primary) has sent none of them.
void redis_connection::on_connected(std::uint64_t gen) {
    reader_ = std::make_unique<redis_reader>();
    std::deque<pending> hello;
    if (!hello_.password.empty()) {
        std::vector<std::string> auth{"AUTH"};
        if (!hello_.username.empty()) {
            auth.push_back(hello_.username);
        }
        auth.push_back(hello_.password);
        hello.push_back(pending{command_bytes(auth), {}, pending::check::not_error, {}});
    }
    if (hello_.db != 0) {
        hello.push_back(pending{command_bytes({"SELECT", std::to_string(hello_.db)}),
                                {},
                                pending::check::not_error,
                                {}});
    }
    if (hello_.expect_primary) {
        hello.push_back(pending{command_bytes({"ROLE"}), {}, pending::check::primary_role, {}});
    }
    read_more(gen);
    if (hello.empty()) {
        state_ = state::ready;
        write_more();
        return;
    }
    handshake_left_ = hello.size();
    auto callers = std::move(queue_);
    queue_ = std::move(hello);
    state_ = state::ready;
    write_more();
    state_ = state::connecting; // (the watchdog keeps the connect's deadline meanwhile)
    queue_ = std::move(callers);
}

void redis_connection::write_more() {
    if (writing_ || queue_.empty() || state_ != state::ready) {
        return;
    }
    write_buf_.clear();
    const auto now = steady_clock::now();
    while (!queue_.empty()) {
        pending& p = queue_.front();
        write_buf_ += p.bytes;
        p.bytes = std::string();
        p.sent = now;
        awaiting_.push_back(std::move(p));
        queue_.pop_front();
    }
    arm_watchdog();
    writing_ = true;
    const std::uint64_t gen = generation_;
    auto done = [this, gen, keep = stream_alive()](error_code ec, std::size_t) {
        if (gen != generation_) {
            return;
        }
        writing_ = false;
        if (ec) {
            fail("write failed: " + ec.message(), false);
            return;
        }
        write_more();
    };
    if (tls_) {
        net::async_write(*tls_, net::buffer(write_buf_), std::move(done));
    } else {
        net::async_write(*plain_, net::buffer(write_buf_), std::move(done));
    }
}

void redis_connection::read_more(std::uint64_t gen) {
    auto done = [this, gen, keep = stream_alive()](error_code ec, std::size_t n) {
        if (gen != generation_) {
            return;
        }
        if (ec) {
            fail(ec == net::error::eof || ec == ssl::error::stream_truncated
                     ? "Redis closed the connection"
                     : "read failed: " + ec.message(),
                 false);
            return;
        }
        on_read(gen, n);
    };
    if (tls_) {
        tls_->async_read_some(net::buffer(read_buf_.get(), read_size), std::move(done));
    } else {
        plain_->async_read_some(net::buffer(read_buf_.get(), read_size), std::move(done));
    }
}

void redis_connection::on_read(std::uint64_t gen, std::size_t n) {
    if (!reader_->feed(read_buf_.get(), n)) {
        fail("bad reply from Redis: " + reader_->error(), false);
        return;
    }
    for (;;) {
        redis_value v;
        const int got = reader_->next(v);
        if (got < 0) {
            fail("bad reply from Redis: " + reader_->error(), false);
            return;
        }
        if (got == 0) {
            break;
        }
        if (awaiting_.empty()) {
            fail("a reply from Redis that nobody asked for", false);
            return;
        }
        pending p = std::move(awaiting_.front());
        awaiting_.pop_front();
        if (p.what != pending::check::caller) {
            if (p.what == pending::check::not_error && v.is_error()) {
                fail("Redis refused the connection's set-up: " + v.str, true);
                return;
            }
            if (p.what == pending::check::primary_role &&
                (v.type != redis_value::kind::array || v.elements.empty() ||
                 v.elements[0].str != "master")) {
                fail("not a primary (ROLE: " + (v.elements.empty() ? v.str : v.elements[0].str) +
                         ")",
                     true);
                return;
            }
            if (handshake_left_ > 0 && --handshake_left_ == 0) {
                state_ = state::ready; // the callers' commands go now
                write_more();
            }
            continue;
        }
        complete(std::move(p.handler), {}, std::move(v));
    }
    read_more(gen);
}

// One timer watches the connect and the oldest unanswered command; it stays armed while
// there is something to watch.
void redis_connection::arm_watchdog() {
    if (watchdog_armed_) {
        return;
    }
    steady_clock::time_point deadline;
    if (state_ == state::connecting) {
        deadline = connect_deadline_;
    } else if (!awaiting_.empty()) {
        deadline = awaiting_.front().sent + timeout_;
    } else {
        return;
    }
    watchdog_armed_ = true;
    watchdog_.expires_at(deadline);
    watchdog_.async_wait([this](error_code) {
        watchdog_armed_ = false;
        const auto now = steady_clock::now();
        if (state_ == state::connecting && now >= connect_deadline_) {
            fail("no connection within " + std::to_string(timeout_.count()) + " ms", true);
            return;
        }
        if (state_ == state::ready && !awaiting_.empty() &&
            now >= awaiting_.front().sent + timeout_) {
            fail("no answer within " + std::to_string(timeout_.count()) + " ms", false);
            return;
        }
        arm_watchdog();
    });
}

void redis_connection::complete(redis_handler h, error_code ec, redis_value v) {
    if (!h) {
        return;
    }
    // Never inline: a caller resumed here could call again while the queues are walked.
    net::post(ex_, [h = std::move(h), ec, v = std::move(v)]() mutable {
        std::move(h)(ec, std::move(v));
    });
}

void redis_connection::fail(const std::string& why, bool backoff) {
    last_error_ = why;
    spdlog::warn("redis {}: {}", at_.where(), why);
    ++generation_;
    state_ = state::idle;
    writing_ = false;
    handshake_left_ = 0;
    error_code ignored;
    if (plain_ || tls_) {
        socket().close(ignored);
    }
    if (backoff) {
        retry_after_ = steady_clock::now() + hello_.backoff;
    }
    auto sent = std::move(awaiting_);
    auto unsent = std::move(queue_);
    awaiting_.clear();
    queue_.clear();
    for (auto& p : sent) {
        complete(std::move(p.handler), net::error::connection_aborted, {});
    }
    for (auto& p : unsent) {
        complete(std::move(p.handler), net::error::not_connected, {});
    }
}

} // namespace michi::redis
