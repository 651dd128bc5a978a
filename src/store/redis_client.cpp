#include "michi/store/redis_client.hpp"

#include <hiredis/hiredis.h>
#include <spdlog/spdlog.h>

#include <cstdlib>

namespace michi::store {
namespace {

constexpr std::size_t read_size = 16 * 1024;
// After a failed connect, calls fail at once for this long instead of each waiting for
// a connect of its own (Redis down must not turn every request into a connect timeout).
constexpr std::chrono::milliseconds connect_backoff{1000};

redis_value convert(const redisReply* r) {
    redis_value v;
    switch (r->type) {
    case REDIS_REPLY_STRING: v.type = redis_value::kind::string; break;
    case REDIS_REPLY_STATUS: v.type = redis_value::kind::status; break;
    case REDIS_REPLY_ERROR: v.type = redis_value::kind::error; break;
    case REDIS_REPLY_INTEGER: v.type = redis_value::kind::integer; break;
    case REDIS_REPLY_ARRAY: v.type = redis_value::kind::array; break;
    default: v.type = redis_value::kind::nil; break;
    }
    if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS ||
        r->type == REDIS_REPLY_ERROR) {
        v.str.assign(r->str, r->len);
    }
    v.integer = r->integer;
    if (r->type == REDIS_REPLY_ARRAY) {
        v.elements.reserve(r->elements);
        for (std::size_t i = 0; i < r->elements; ++i) {
            v.elements.push_back(convert(r->element[i]));
        }
    }
    return v;
}

std::string format(const std::vector<std::string>& args) {
    std::vector<const char*> argv;
    std::vector<std::size_t> lens;
    argv.reserve(args.size());
    lens.reserve(args.size());
    for (const auto& a : args) {
        argv.push_back(a.data());
        lens.push_back(a.size());
    }
    char* cmd = nullptr;
    const int n = redisFormatCommandArgv(&cmd, static_cast<int>(args.size()), argv.data(),
                                         lens.data());
    if (n < 0 || cmd == nullptr) {
        throw std::bad_alloc();
    }
    std::string out(cmd, static_cast<std::size_t>(n));
    redisFreeCommand(cmd);
    return out;
}

} // namespace

double redis_number(const redis_value& v) {
    if (v.type == redis_value::kind::integer) {
        return static_cast<double>(v.integer);
    }
    if (v.type == redis_value::kind::string || v.type == redis_value::kind::status) {
        char* end = nullptr;
        const double d = std::strtod(v.str.c_str(), &end);
        return end != v.str.c_str() ? d : 0.0;
    }
    return 0.0;
}

redis_client::redis_client(executor ex, redis_url url, std::chrono::milliseconds timeout)
    : ex_(ex),
      url_(std::move(url)),
      timeout_(timeout),
      resolver_(ex),
      socket_(ex),
      watchdog_(ex),
      read_buf_(new char[read_size]),
      reader_(nullptr, redisReaderFree) {}

redis_client::~redis_client() = default;

void redis_client::submit(std::vector<std::string> args, redis_handler h) {
    pending p{format(args), std::move(h), false, {}};
    if (state_ == state::idle && steady_clock::now() < retry_after_) {
        complete(std::move(p.handler), net::error::connection_refused, {});
        return;
    }
    queue_.push_back(std::move(p));
    if (state_ == state::idle) {
        connect();
    } else if (state_ == state::ready) {
        write_more();
    }
}

void redis_client::connect() {
    state_ = state::connecting;
    const std::uint64_t gen = ++generation_;
    connect_deadline_ = steady_clock::now() + timeout_;
    arm_watchdog();
    resolver_.async_resolve(
        url_.host, std::to_string(url_.port),
        [this, gen](error_code ec, const tcp::resolver::results_type& results) {
            if (gen != generation_) {
                return;
            }
            if (ec) {
                fail("cannot resolve " + url_.host + ": " + ec.message(), true);
                return;
            }
            net::async_connect(socket_, results,
                               [this, gen](error_code cec, const tcp::endpoint&) {
                                   if (gen != generation_) {
                                       return;
                                   }
                                   if (cec) {
                                       fail("cannot connect: " + cec.message(), true);
                                       return;
                                   }
                                   on_connected(gen);
                               });
        });
}

void redis_client::on_connected(std::uint64_t gen) {
    error_code ignored;
    socket_.set_option(tcp::no_delay(true), ignored);
    reader_.reset(redisReaderCreate());
    // The handshake goes first; its replies are checked by complete's caller (internal).
    std::vector<pending> hello;
    if (!url_.password.empty()) {
        std::vector<std::string> auth{"AUTH"};
        if (!url_.username.empty()) {
            auth.push_back(url_.username);
        }
        auth.push_back(url_.password);
        hello.push_back(pending{format(auth), {}, true, {}});
    }
    if (url_.db != 0) {
        hello.push_back(pending{format({"SELECT", std::to_string(url_.db)}), {}, true, {}});
    }
    for (auto it = hello.rbegin(); it != hello.rend(); ++it) {
        queue_.push_front(std::move(*it));
    }
    state_ = state::ready;
    read_more(gen);
    write_more();
}

void redis_client::write_more() {
    if (writing_ || queue_.empty() || state_ != state::ready) {
        return;
    }
    write_buf_.clear();
    const auto now = steady_clock::now();
    while (!queue_.empty()) {
        pending& p = queue_.front();
        write_buf_ += p.bytes;
        p.bytes.clear();
        p.bytes.shrink_to_fit();
        p.sent = now;
        awaiting_.push_back(std::move(p));
        queue_.pop_front();
    }
    arm_watchdog();
    writing_ = true;
    const std::uint64_t gen = generation_;
    net::async_write(socket_, net::buffer(write_buf_), [this, gen](error_code ec, std::size_t) {
        if (gen != generation_) {
            return;
        }
        writing_ = false;
        if (ec) {
            fail("write failed: " + ec.message(), false);
            return;
        }
        write_more();
    });
}

void redis_client::read_more(std::uint64_t gen) {
    socket_.async_read_some(
        net::buffer(read_buf_.get(), read_size), [this, gen](error_code ec, std::size_t n) {
            if (gen != generation_) {
                return;
            }
            if (ec) {
                fail(ec == net::error::eof ? "Redis closed the connection"
                                           : "read failed: " + ec.message(),
                     false);
                return;
            }
            if (redisReaderFeed(reader_.get(), read_buf_.get(), n) != REDIS_OK) {
                fail("bad reply from Redis", false);
                return;
            }
            for (;;) {
                void* raw = nullptr;
                if (redisReaderGetReply(reader_.get(), &raw) != REDIS_OK) {
                    fail(std::string("bad reply from Redis: ") + reader_->errstr, false);
                    return;
                }
                if (raw == nullptr) {
                    break;
                }
                redis_value v = convert(static_cast<redisReply*>(raw));
                freeReplyObject(raw);
                if (awaiting_.empty()) {
                    fail("a reply from Redis that nobody asked for", false);
                    return;
                }
                pending p = std::move(awaiting_.front());
                awaiting_.pop_front();
                if (p.internal) {
                    if (v.is_error()) {
                        fail("Redis refused the connection's set-up: " + v.str, true);
                        return;
                    }
                    continue;
                }
                complete(std::move(p.handler), {}, std::move(v));
            }
            read_more(gen);
        });
}

// One timer watches the connect and the oldest unanswered command; it stays armed while
// there is something to watch.
void redis_client::arm_watchdog() {
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

void redis_client::complete(redis_handler h, error_code ec, redis_value v) {
    if (!h) {
        return;
    }
    // Never inline: a caller resumed here could call again while the queues are walked.
    net::post(ex_, [h = std::move(h), ec, v = std::move(v)]() mutable {
        std::move(h)(ec, std::move(v));
    });
}

void redis_client::fail(const std::string& why, bool backoff) {
    last_error_ = why;
    spdlog::warn("redis {}: {}", url_.where(), why);
    ++generation_;
    state_ = state::idle;
    writing_ = false;
    error_code ignored;
    resolver_.cancel();
    socket_.close(ignored);
    if (backoff) {
        retry_after_ = steady_clock::now() + connect_backoff;
    }
    auto failed = std::move(awaiting_);
    awaiting_.clear();
    for (auto& p : queue_) {
        failed.push_back(std::move(p));
    }
    queue_.clear();
    for (auto& p : failed) {
        complete(std::move(p.handler), net::error::connection_aborted, {});
    }
}

} // namespace michi::store
