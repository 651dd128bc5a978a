#include "michi/upstream/tls_channel.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/x509_vfy.h>

#include <algorithm>
#include <climits>
#include <cstring>

namespace michi::upstream {
namespace {

// The SSL's pointer to its channel (a slot of our own: Asio's streams use the app data).
int channel_index() {
    static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
    return index;
}

class verify_category_impl final : public boost::system::error_category {
public:
    const char* name() const noexcept override { return "michi.tls_verify"; }
    std::string message(int v) const override {
        return std::string("certificate verify failed: ") + X509_verify_cert_error_string(v);
    }
};

} // namespace

const boost::system::error_category& tls_verify_category() {
    static const verify_category_impl category;
    return category;
}

// The BIO between OpenSSL and the channel's buffers: OpenSSL reads the records received
// from in_ and appends what it writes to out_.
struct tls_channel::bio_io {
    static tls_channel* of(BIO* b) { return static_cast<tls_channel*>(BIO_get_data(b)); }

    static int read(BIO* b, char* data, int size) {
        BIO_clear_retry_flags(b);
        tls_channel* self = of(b);
        const std::size_t have = self->in_end_ - self->in_begin_;
        if (have == 0 || size <= 0) {
            BIO_set_retry_read(b);
            return -1;
        }
        const std::size_t n = std::min(have, static_cast<std::size_t>(size));
        std::memcpy(data, self->in_.get() + self->in_begin_, n);
        self->in_begin_ += n;
        return static_cast<int>(n);
    }

    static int write(BIO* b, const char* data, int size) {
        BIO_clear_retry_flags(b);
        if (size <= 0) {
            return 0;
        }
        of(b)->out_.append(data, static_cast<std::size_t>(size));
        return size;
    }

    static long ctrl(BIO* b, int cmd, long, void*) {
        switch (cmd) {
        case BIO_CTRL_FLUSH: return 1; // the channel sends out_ itself
        case BIO_CTRL_PENDING: return static_cast<long>(of(b)->in_end_ - of(b)->in_begin_);
        case BIO_CTRL_WPENDING: return static_cast<long>(of(b)->out_.size());
        default: return 0;
        }
    }

    static int create(BIO* b) {
        BIO_set_init(b, 1);
        return 1;
    }

    static const BIO_METHOD* method() {
        static BIO_METHOD* const m = [] {
            BIO_METHOD* made =
                BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "michi upstream tls");
            if (made != nullptr) {
                BIO_meth_set_read(made, &read);
                BIO_meth_set_write(made, &write);
                BIO_meth_set_ctrl(made, &ctrl);
                BIO_meth_set_create(made, &create);
            }
            return made;
        }();
        return m;
    }
};

void tls_channel::prepare_context(ssl::context& ctx) {
    SSL_CTX* h = ctx.native_handle();
    SSL_CTX_set_session_cache_mode(h, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(h, &tls_channel::on_new_session);
    // A renegotiation would need writes in the middle of reads.
    SSL_CTX_set_options(h, SSL_OP_NO_RENEGOTIATION);
}

tls_channel::tls_channel(tcp_stream& lower, ssl::context& ctx)
    : lower_(lower), ssl_(SSL_new(ctx.native_handle())), in_(new char[in_capacity]) {
    if (ssl_ == nullptr) {
        return; // (out of memory: the handshake fails)
    }
    const BIO_METHOD* m = bio_io::method();
    BIO* bio = m != nullptr ? BIO_new(m) : nullptr;
    if (bio == nullptr) {
        SSL_free(ssl_);
        ssl_ = nullptr;
        return;
    }
    BIO_set_data(bio, this);
    SSL_set_bio(ssl_, bio, bio); // (one reference for both directions)
    SSL_set_ex_data(ssl_, channel_index(), this);
    SSL_set_connect_state(ssl_);
}

tls_channel::~tls_channel() {
    if (ssl_ != nullptr) {
        // Connections end without a close_notify (the socket is just closed), which OpenSSL
        // takes for a broken one unless told otherwise: SSL_free() would mark its session
        // (the one the cache holds) not resumable. A session a TLS error spoilt OpenSSL
        // has marked already.
        SSL_set_shutdown(ssl_, SSL_SENT_SHUTDOWN | SSL_get_shutdown(ssl_));
        SSL_free(ssl_);
    }
}

bool tls_channel::resumed() const noexcept {
    return ssl_ != nullptr && SSL_session_reused(ssl_) == 1;
}

awaitable<error_code> tls_channel::handshake(const std::string& host, tls_sessions& sessions,
                                             const std::string& key) {
    if (ssl_ == nullptr) {
        co_return error_code(net::error::no_memory);
    }
    ERR_clear_error();
    error_code ip_ec;
    net::ip::make_address(host, ip_ec);
    if (ip_ec) {
        // A name: sent as SNI, and the certificate must carry it (RFC 6125 matching).
        SSL_set_hostflags(ssl_, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        if (SSL_set_tlsext_host_name(ssl_, host.c_str()) != 1 ||
            SSL_set1_host(ssl_, host.c_str()) != 1) {
            co_return failure(SSL_ERROR_SSL);
        }
    } else if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_), host.c_str()) != 1) {
        co_return failure(SSL_ERROR_SSL); // (an address needs an IP entry; no SNI for it)
    }
    SSL_set_verify(ssl_, SSL_VERIFY_PEER, nullptr);
    sessions_ = &sessions;
    session_key_ = key;
    SSL_SESSION* offered = sessions.find(key, SSL_get_SSL_CTX(ssl_));
    if (offered != nullptr && SSL_set_session(ssl_, offered) != 1) {
        offered = nullptr;
    }
    for (;;) {
        ERR_clear_error();
        const int r = SSL_do_handshake(ssl_);
        const int err = r == 1 ? SSL_ERROR_NONE : SSL_get_error(ssl_, r);
        error_code ec;
        if (err != SSL_ERROR_NONE && err != SSL_ERROR_WANT_READ) {
            ec = failure(err);
        }
        // What the handshake produced: its next flight, or the alert of a failure.
        error_code wec;
        send_now(wec);
        if (!wec && !out_.empty()) {
            auto [e, n] = co_await net::async_write(lower_, net::buffer(out_), nothrow_op);
            wec = e;
            if (!e) {
                out_.clear();
            }
        }
        if (!ec) {
            ec = wec;
        }
        if (!ec && err == SSL_ERROR_NONE) {
            co_return error_code{};
        }
        if (!ec) {
            auto [rec, n] = co_await lower_.async_read_some(in_room(), nothrow_op);
            if (!rec) {
                in_end_ += n;
                continue;
            }
            ec = rec == net::error::eof ? error_code(ssl::error::stream_truncated) : rec;
        }
        if (offered != nullptr) {
            sessions.forget(key); // (the next connection there offers none)
        }
        co_return ec;
    }
}

void tls_channel::encrypt(const void* data, std::size_t size, error_code& ec) {
    const char* p = static_cast<const char*>(data);
    while (size > 0) {
        const int r = SSL_write(ssl_, p, static_cast<int>(std::min<std::size_t>(size, INT_MAX)));
        if (r <= 0) {
            ec = failure(SSL_get_error(ssl_, r)); // (a write to memory fails only so)
            return;
        }
        p += r;
        size -= static_cast<std::size_t>(r);
    }
}

void tls_channel::send_now(error_code& ec) {
    if (out_.empty()) {
        return;
    }
    const std::array<net::const_buffer, 1> b{net::buffer(out_)};
    const std::size_t n = lower_.write_now(b, ec);
    if (n == out_.size()) {
        out_.clear();
    } else {
        out_.erase(0, n);
    }
}

std::size_t tls_channel::decrypt(net::mutable_buffer out, error_code& ec) {
    // (No ERR_clear_error() before the calls: reading the thread's error queue costs several
    // hundred instructions each time. A call that needs more records is told by
    // SSL_want_read() without it; SSL_get_error(), which looks at the queue, only for the rest.)
    const int r =
        SSL_read(ssl_, out.data(), static_cast<int>(std::min<std::size_t>(out.size(), INT_MAX)));
    const int err = r > 0                 ? SSL_ERROR_NONE
                    : SSL_want_read(ssl_) ? SSL_ERROR_WANT_READ
                                          : SSL_get_error(ssl_, r);
    if (!out_.empty()) {
        // A record the peer's messages called for (a key update's answer): sent with the
        // next write when the socket does not take it now.
        error_code ignored;
        send_now(ignored);
    }
    if (err == SSL_ERROR_NONE) {
        return static_cast<std::size_t>(r);
    }
    if (err == SSL_ERROR_WANT_READ) {
        return 0;
    }
    ec = failure(err);
    return 0;
}

net::mutable_buffer tls_channel::in_room() {
    if (in_begin_ == in_end_) {
        in_begin_ = in_end_ = 0;
    } else if (in_begin_ != 0) {
        std::memmove(in_.get(), in_.get() + in_begin_, in_end_ - in_begin_);
        in_end_ -= in_begin_;
        in_begin_ = 0;
    }
    return net::buffer(in_.get() + in_end_, in_capacity - in_end_);
}

error_code tls_channel::failure(int err) {
    if (err == SSL_ERROR_ZERO_RETURN) {
        return net::error::eof; // the peer's close_notify
    }
    const unsigned long e = ERR_peek_last_error(); // (the queue may hold older ones)
    ERR_clear_error();
    const long verify = SSL_get_verify_result(ssl_);
    if (ERR_GET_REASON(e) == SSL_R_CERTIFICATE_VERIFY_FAILED && verify != X509_V_OK) {
        return error_code(static_cast<int>(verify), tls_verify_category());
    }
    if (e != 0) {
        return error_code(static_cast<int>(e), net::error::get_ssl_category());
    }
    return ssl::error::stream_truncated; // (SSL_ERROR_SYSCALL: the peer went away)
}

int tls_channel::on_new_session(SSL* ssl, SSL_SESSION* session) {
    auto* self = static_cast<tls_channel*>(SSL_get_ex_data(ssl, channel_index()));
    if (self == nullptr || self->sessions_ == nullptr || !SSL_SESSION_is_resumable(session)) {
        return 0; // OpenSSL frees it
    }
    self->sessions_->put(self->session_key_, SSL_get_SSL_CTX(ssl), session);
    return 1; // the reference is the cache's
}

} // namespace michi::upstream
