#include "support/fake_upstream.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <nlohmann/json.hpp>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>
#include <variant>

namespace michi::test {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr std::uint64_t request_body_limit = 64ULL * 1024 * 1024;
constexpr std::uint32_t request_header_limit = 64 * 1024;
constexpr auto tls_shutdown_grace = std::chrono::milliseconds(500);

// How a chunked response ended.
enum class stream_result { completed, cut, aborted };

// How the request loop of a connection ended.
enum class connection_end { drop, close_gracefully };

std::string to_lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

std::string hex_size(std::size_t n) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    do {
        out.insert(out.begin(), digits[n % 16]);
        n /= 16;
    } while (n != 0);
    return out;
}

recorded_request to_recorded(const http::request<http::string_body>& msg) {
    recorded_request req;
    req.method = std::string(msg.method_string());
    req.target = std::string(msg.target());
    for (const auto& field : msg) {
        auto name = to_lower(field.name_string());
        auto [it, inserted] = req.headers.emplace(name, std::string(field.value()));
        if (!inserted) {
            it->second += ", ";
            it->second += std::string(field.value());
        }
    }
    req.body = msg.body();
    return req;
}

template <class Message>
void apply_head(Message& msg, const fake_response& res, bool keep_alive) {
    msg.version(11);
    msg.result(res.status);
    for (const auto& [name, value] : res.headers) {
        msg.insert(name, value);
    }
    msg.keep_alive(keep_alive);
}

void close_socket(tcp::socket& socket) {
    error_code ec;
    socket.shutdown(tcp::socket::shutdown_both, ec);
    socket.close(ec);
}

// ---- OpenSSL helpers for make_test_certs ----

struct pkey_deleter {
    void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct x509_deleter {
    void operator()(X509* p) const { X509_free(p); }
};
struct bignum_deleter {
    void operator()(BIGNUM* p) const { BN_free(p); }
};
struct file_closer {
    void operator()(std::FILE* f) const { std::fclose(f); }
};
using pkey_ptr = std::unique_ptr<EVP_PKEY, pkey_deleter>;
using x509_ptr = std::unique_ptr<X509, x509_deleter>;

[[noreturn]] void throw_openssl(const std::string& what) {
    std::string detail;
    while (unsigned long err = ERR_get_error()) {
        std::array<char, 256> buf{};
        ERR_error_string_n(err, buf.data(), buf.size());
        detail += "; ";
        detail += buf.data();
    }
    throw std::runtime_error("make_test_certs: " + what + detail);
}

pkey_ptr make_key() {
    pkey_ptr key(EVP_EC_gen("P-256"));
    if (!key) {
        throw_openssl("EC key generation failed");
    }
    return key;
}

void add_ext(X509* cert, X509* issuer, int nid, const std::string& value) {
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
    if (ext == nullptr) {
        throw_openssl("bad extension " + std::string(OBJ_nid2sn(nid)) + "=" + value);
    }
    int ok = X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
    if (ok != 1) {
        throw_openssl("X509_add_ext failed");
    }
}

// Builds a certificate for `key`; self-signed when issuer is null.
x509_ptr make_cert(EVP_PKEY* key, const std::string& common_name, X509* issuer,
                   EVP_PKEY* issuer_key, const std::string& dns_name) {
    x509_ptr cert(X509_new());
    if (!cert) {
        throw_openssl("X509_new failed");
    }
    X509* c = cert.get();
    X509_set_version(c, 2); // v3

    std::unique_ptr<BIGNUM, bignum_deleter> serial(BN_new());
    if (!serial || BN_rand(serial.get(), 63, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1 ||
        BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(c)) == nullptr) {
        throw_openssl("serial number generation failed");
    }
    X509_gmtime_adj(X509_getm_notBefore(c), -60L * 60);
    X509_gmtime_adj(X509_getm_notAfter(c), 30L * 24 * 60 * 60);
    if (X509_set_pubkey(c, key) != 1) {
        throw_openssl("X509_set_pubkey failed");
    }

    X509_NAME* name = X509_get_subject_name(c);
    auto add_name = [&](const char* field, const std::string& value) {
        if (X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8,
                                       reinterpret_cast<const unsigned char*>(value.c_str()), -1,
                                       -1, 0) != 1) {
            throw_openssl("X509_NAME_add_entry_by_txt failed");
        }
    };
    add_name("O", "Michi tests");
    add_name("CN", common_name);
    X509_set_issuer_name(c, issuer != nullptr ? X509_get_subject_name(issuer) : name);

    X509* ext_issuer = issuer != nullptr ? issuer : c;
    if (issuer == nullptr) {
        add_ext(c, ext_issuer, NID_basic_constraints, "critical,CA:TRUE,pathlen:0");
        add_ext(c, ext_issuer, NID_key_usage, "critical,keyCertSign,cRLSign");
        add_ext(c, ext_issuer, NID_subject_key_identifier, "hash");
    } else {
        add_ext(c, ext_issuer, NID_basic_constraints, "critical,CA:FALSE");
        add_ext(c, ext_issuer, NID_key_usage, "critical,digitalSignature,keyEncipherment");
        add_ext(c, ext_issuer, NID_ext_key_usage, "serverAuth");
        add_ext(c, ext_issuer, NID_subject_alt_name, "DNS:" + dns_name);
        add_ext(c, ext_issuer, NID_subject_key_identifier, "hash");
        add_ext(c, ext_issuer, NID_authority_key_identifier, "keyid:always");
    }

    if (X509_sign(c, issuer_key, EVP_sha256()) == 0) {
        throw_openssl("X509_sign failed");
    }
    return cert;
}

std::unique_ptr<std::FILE, file_closer> open_for_write(const std::string& path) {
    std::unique_ptr<std::FILE, file_closer> f(std::fopen(path.c_str(), "wb"));
    if (!f) {
        throw std::runtime_error("make_test_certs: cannot write " + path);
    }
    return f;
}

void write_cert(const std::string& path, X509* cert) {
    auto f = open_for_write(path);
    if (PEM_write_X509(f.get(), cert) != 1) {
        throw_openssl("PEM_write_X509 failed for " + path);
    }
}

void write_key(const std::string& path, EVP_PKEY* key) {
    auto f = open_for_write(path);
    if (PEM_write_PrivateKey(f.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
        throw_openssl("PEM_write_PrivateKey failed for " + path);
    }
}

} // namespace

// ---- response helpers ----

fake_response json_response(unsigned status, std::string body) {
    fake_response res;
    res.status = status;
    res.headers.emplace_back("content-type", "application/json");
    res.body = std::move(body);
    return res;
}

fake_response sse_response(std::vector<std::string> events_data, std::chrono::milliseconds delay) {
    fake_response res;
    res.headers.emplace_back("content-type", "text/event-stream");
    res.headers.emplace_back("cache-control", "no-cache");
    res.chunks.reserve(events_data.size());
    for (auto& data : events_data) {
        res.chunks.push_back("data: " + std::move(data) + "\n\n");
    }
    res.chunk_delay = delay;
    return res;
}

fake_response usage_echoing(const recorded_request& req) {
    using json = nlohmann::json;
    const auto body = json::parse(req.body);
    const auto out = body.value("max_tokens", 100);
    const json usage = {
        {"prompt_tokens", 10}, {"completion_tokens", out}, {"total_tokens", 10 + out}};
    if (body.value("stream", false)) {
        std::vector<std::string> events = {
            R"({"id":"s","object":"chat.completion.chunk",)"
            R"("choices":[{"index":0,"delta":{"content":"hi"}}]})",
            R"({"id":"s","object":"chat.completion.chunk",)"
            R"("choices":[{"index":0,"delta":{},"finish_reason":"stop"}]})"};
        const auto opts = body.find("stream_options");
        if (opts != body.end() && opts->value("include_usage", false)) {
            events.push_back(json{
                {"id", "s"},
                {"object", "chat.completion.chunk"},
                {"choices", json::array()},
                {"usage", usage}}.dump());
        }
        events.emplace_back("[DONE]");
        return sse_response(events);
    }
    const json message = {{"role", "assistant"}, {"content", "hi"}};
    return json_response(
        200, json{{"id", "c"},
                  {"object", "chat.completion"},
                  {"choices", {{{"index", 0}, {"message", message}, {"finish_reason", "stop"}}}},
                  {"usage", usage}}
                 .dump());
}

std::string priced_chat(int max_tokens, bool stream, const std::string& model) {
    return nlohmann::json{{"model", model},
                          {"max_tokens", max_tokens},
                          {"stream", stream},
                          {"messages", {{{"role", "user"}, {"content", "hi"}}}}}
        .dump();
}

fake_response default_chat_completion(const recorded_request& req) {
    std::string model = "fake-model";
    auto parsed = nlohmann::json::parse(req.body, nullptr, false);
    if (parsed.is_object()) {
        auto it = parsed.find("model");
        if (it != parsed.end() && it->is_string()) {
            model = it->get<std::string>();
        }
    }
    nlohmann::json body = {
        {"id", "chatcmpl-fake"},
        {"object", "chat.completion"},
        {"created", 1700000000},
        {"model", model},
        {"choices", nlohmann::json::array({{
                        {"index", 0},
                        {"message", {{"role", "assistant"}, {"content", "hello from fake"}}},
                        {"finish_reason", "stop"},
                    }})},
        {"usage", {{"prompt_tokens", 5}, {"completion_tokens", 3}, {"total_tokens", 8}}},
    };
    return json_response(200, body.dump());
}

// ---- certificates ----

tls_files make_test_certs(const std::string& dir, const std::string& dns_name) {
    std::filesystem::create_directories(dir);
    auto ca_key = make_key();
    auto ca_cert = make_cert(ca_key.get(), "Michi Test CA", nullptr, ca_key.get(), "");
    auto server_key = make_key();
    auto server_cert = make_cert(server_key.get(), dns_name, ca_cert.get(), ca_key.get(), dns_name);

    std::filesystem::path base(dir);
    tls_files files{(base / "ca.pem").string(), (base / "server.pem").string(),
                    (base / "server-key.pem").string()};
    write_cert(files.ca_file, ca_cert.get());
    write_cert(files.cert_file, server_cert.get());
    write_key(files.key_file, server_key.get());
    return files;
}

// ---- server ----

// The server's state and coroutines. Everything below the lock is touched only on the io thread.
struct fake_upstream::impl {
    mutable std::mutex mutex_;
    mutable std::condition_variable cv_;
    std::uint64_t generation_ = 0; // bumped on every recorded event, for wait_until
    handler handler_;
    std::vector<recorded_request> requests_;
    std::size_t connections_opened_ = 0;
    std::size_t connections_closed_ = 0;
    std::size_t streams_aborted_ = 0;
    std::size_t tls_handshakes_ = 0;
    std::size_t tls_resumed_ = 0;
    std::size_t to_hold_ = 0; // handshakes still to hold
    std::size_t held_ = 0;    // handshakes waiting now

    std::uint16_t port_ = 0;
    bool tls_enabled_ = false;
    std::unique_ptr<ssl::context> tls_;
    // Declared last and reset explicitly before the members above go away: destroying it
    // destroys the suspended connection coroutines, whose guards still record closes.
    std::optional<asio::io_context> ioc_;
    std::optional<asio::steady_timer> gate_; // held handshakes wait on it until cancelled
    std::thread thread_;

    // Applies `f` under the lock and wakes every wait_until.
    template <class F>
    void record(F&& f) {
        {
            std::lock_guard lock(mutex_);
            f();
            ++generation_;
        }
        cv_.notify_all();
    }

    fake_response call_handler(const recorded_request& req) {
        handler h;
        {
            std::lock_guard lock(mutex_);
            h = handler_;
        }
        try {
            return h ? h(req) : default_chat_completion(req);
        } catch (const std::exception& e) {
            return json_response(500, nlohmann::json{{"error", e.what()}}.dump());
        } catch (...) {
            return json_response(500, R"({"error":"handler threw"})");
        }
    }

    asio::awaitable<void> accept_loop(tcp::acceptor acceptor) {
        for (;;) {
            auto [ec, socket] = co_await acceptor.async_accept(use_tuple);
            if (ec) {
                if (ec == asio::error::operation_aborted || !acceptor.is_open()) {
                    co_return;
                }
                continue;
            }
            record([&] { ++connections_opened_; });
            asio::co_spawn(acceptor.get_executor(), serve_connection(std::move(socket)),
                           asio::detached);
        }
    }

    asio::awaitable<void> serve_connection(tcp::socket socket) {
        // Counts the close however the coroutine ends, including destruction at shutdown.
        struct close_guard {
            impl& self;
            ~close_guard() {
                self.record([this] { ++self.connections_closed_; });
            }
        } guard{*this};

        error_code ec;
        socket.set_option(tcp::no_delay(true), ec);
        try {
            if (!tls_) {
                co_await serve_requests(socket);
                close_socket(socket);
                co_return;
            }
            bool hold = false;
            record([&] {
                if (to_hold_ > 0) {
                    --to_hold_;
                    ++held_;
                    hold = true;
                }
            });
            if (hold) {
                co_await gate_->async_wait(use_tuple);
                record([&] { --held_; });
            }
            ssl::stream<tcp::socket> stream(std::move(socket), *tls_);
            auto [hec] = co_await stream.async_handshake(ssl::stream_base::server, use_tuple);
            if (!hec) {
                const bool resumed = SSL_session_reused(stream.native_handle()) == 1;
                record([&] {
                    ++tls_handshakes_;
                    tls_resumed_ += resumed ? 1 : 0;
                });
                if (co_await serve_requests(stream) == connection_end::close_gracefully) {
                    co_await tls_shutdown(stream);
                }
            }
            close_socket(stream.next_layer());
        } catch (...) {
            // A throwing write or serialisation just ends this connection.
        }
    }

    // Sends close_notify; waits briefly for the peer's, since clients often just close.
    asio::awaitable<void> tls_shutdown(ssl::stream<tcp::socket>& stream) {
        using namespace asio::experimental::awaitable_operators;
        asio::steady_timer timer(co_await asio::this_coro::executor, tls_shutdown_grace);
        co_await (shutdown_op(stream) || wait_op(timer));
    }

    static asio::awaitable<void> shutdown_op(ssl::stream<tcp::socket>& stream) {
        co_await stream.async_shutdown(use_tuple);
    }

    static asio::awaitable<void> wait_op(asio::steady_timer& timer) {
        co_await timer.async_wait(use_tuple);
    }

    template <class Stream>
    asio::awaitable<connection_end> serve_requests(Stream& stream) {
        beast::flat_buffer buffer;
        for (;;) {
            http::request_parser<http::string_body> parser;
            parser.header_limit(request_header_limit);
            parser.body_limit(request_body_limit);
            auto [ec, n] = co_await http::async_read(stream, buffer, parser, use_tuple);
            if (ec) {
                // Peer closed (end_of_stream), reset, or a bad / oversized request.
                co_return connection_end::drop;
            }
            const auto& msg = parser.get();
            bool keep_alive = msg.keep_alive();
            auto req = to_recorded(msg);
            record([&] { requests_.push_back(req); });

            fake_response res = call_handler(req);
            keep_alive = keep_alive && !res.close_connection && !res.body_until_close;

            if (res.head_delay.count() > 0) {
                asio::steady_timer timer(co_await asio::this_coro::executor, res.head_delay);
                co_await timer.async_wait(use_tuple);
            }

            if (res.chunks.empty()) {
                http::response<http::string_body> out;
                apply_head(out, res, keep_alive);
                out.body() = res.body;
                if (!res.body_until_close) {
                    out.prepare_payload();
                }
                auto [wec, wn] = co_await http::async_write(stream, out, use_tuple);
                if (wec) {
                    co_return connection_end::drop;
                }
            } else {
                switch (co_await stream_chunks(stream, buffer, res, keep_alive)) {
                case stream_result::completed: break;
                case stream_result::cut: co_return connection_end::drop;
                case stream_result::aborted:
                    record([&] { ++streams_aborted_; });
                    co_return connection_end::drop;
                }
            }
            if (!keep_alive) {
                co_return connection_end::close_gracefully;
            }
        }
    }

    // Writes the chunked response while a concurrent read watches the peer: a peer close is
    // seen even while every chunk still fits into kernel buffers, or during a chunk delay.
    template <class Stream>
    asio::awaitable<stream_result> stream_chunks(Stream& stream, beast::flat_buffer& buffer,
                                                 const fake_response& res, bool keep_alive) {
        using namespace asio::experimental::awaitable_operators;
        auto outcome =
            co_await (write_chunks(stream, res, keep_alive) || watch_peer(stream, buffer));
        if (outcome.index() == 1) {
            co_return stream_result::aborted;
        }
        co_return std::get<0>(outcome);
    }

    template <class Stream>
    static asio::awaitable<stream_result> write_chunks(Stream& stream, const fake_response& res,
                                                       bool keep_alive) {
        http::response<http::empty_body> head;
        apply_head(head, res, keep_alive);
        head.chunked(true);
        http::response_serializer<http::empty_body> serializer(head);
        auto [hec, hn] = co_await http::async_write_header(stream, serializer, use_tuple);
        if (hec) {
            co_return stream_result::aborted;
        }

        asio::steady_timer timer(co_await asio::this_coro::executor);
        static constexpr std::string_view crlf = "\r\n";
        for (const auto& chunk : res.chunks) {
            if (res.chunk_delay.count() > 0) {
                timer.expires_after(res.chunk_delay);
                auto [tec] = co_await timer.async_wait(use_tuple);
                if (tec) {
                    co_return stream_result::aborted;
                }
            }
            if (chunk.empty()) {
                continue; // a zero-size chunk would end the body
            }
            // Raw chunk framing: hex size CRLF data CRLF.
            std::string size_line = hex_size(chunk.size()) + "\r\n";
            std::array<asio::const_buffer, 3> buffers{asio::buffer(size_line), asio::buffer(chunk),
                                                      asio::buffer(crlf.data(), crlf.size())};
            auto [wec, wn] = co_await asio::async_write(stream, buffers, use_tuple);
            if (wec) {
                co_return stream_result::aborted;
            }
        }
        if (res.end_delay.count() > 0) {
            timer.expires_after(res.end_delay);
            auto [tec] = co_await timer.async_wait(use_tuple);
            if (tec) {
                co_return stream_result::aborted;
            }
        }
        if (res.cut_after_chunks) {
            co_return stream_result::cut;
        }
        static constexpr std::string_view last_chunk = "0\r\n\r\n";
        auto [eec, en] = co_await asio::async_write(
            stream, asio::buffer(last_chunk.data(), last_chunk.size()), use_tuple);
        if (eec) {
            co_return stream_result::aborted;
        }
        co_return stream_result::completed;
    }

    // Completes only when the peer closes or errors; pipelined bytes go to `buffer` for the
    // next request. Cancelled by the || above once the writer finishes.
    template <class Stream>
    static asio::awaitable<void> watch_peer(Stream& stream, beast::flat_buffer& buffer) {
        for (;;) {
            auto [ec, n] = co_await stream.async_read_some(buffer.prepare(16 * 1024), use_tuple);
            if (ec) {
                co_return;
            }
            buffer.commit(n);
        }
    }
};

fake_upstream::fake_upstream(const tls_files* tls) : impl_(std::make_unique<impl>()) {
    impl& self = *impl_;
    self.ioc_.emplace(1);
    self.gate_.emplace(*self.ioc_, asio::steady_timer::time_point::max());
    if (tls != nullptr) {
        self.tls_ = std::make_unique<ssl::context>(ssl::context::tls_server);
        self.tls_->use_certificate_chain_file(tls->cert_file);
        self.tls_->use_private_key_file(tls->key_file, ssl::context::pem);
        self.tls_enabled_ = true;
    }

    tcp::acceptor acceptor(*self.ioc_);
    tcp::endpoint endpoint(asio::ip::make_address_v4("127.0.0.1"), 0);
    acceptor.open(endpoint.protocol());
    acceptor.set_option(tcp::acceptor::reuse_address(true));
    acceptor.bind(endpoint);
    acceptor.listen();
    self.port_ = acceptor.local_endpoint().port();

    asio::co_spawn(*self.ioc_, self.accept_loop(std::move(acceptor)), asio::detached);
    self.thread_ = std::thread([&self] {
        for (;;) {
            try {
                self.ioc_->run();
                return;
            } catch (...) {
                // A handler threw; keep serving.
            }
        }
    });
}

fake_upstream::~fake_upstream() {
    impl_->ioc_->stop();
    impl_->thread_.join();
    impl_->gate_.reset();
    impl_->ioc_.reset();
}

std::uint16_t fake_upstream::port() const { return impl_->port_; }

std::string fake_upstream::base_url(const std::string& host) const {
    return std::string(impl_->tls_enabled_ ? "https://" : "http://") + host + ":" +
           std::to_string(impl_->port_);
}

void fake_upstream::set_handler(handler h) {
    std::lock_guard lock(impl_->mutex_);
    impl_->handler_ = std::move(h);
}

std::vector<recorded_request> fake_upstream::requests() const {
    std::lock_guard lock(impl_->mutex_);
    return impl_->requests_;
}

std::size_t fake_upstream::request_count() const {
    std::lock_guard lock(impl_->mutex_);
    return impl_->requests_.size();
}

std::size_t fake_upstream::connections_opened() const {
    std::lock_guard lock(impl_->mutex_);
    return impl_->connections_opened_;
}

std::size_t fake_upstream::connections_closed() const {
    std::lock_guard lock(impl_->mutex_);
    return impl_->connections_closed_;
}

std::size_t fake_upstream::streams_aborted() const {
    std::lock_guard lock(impl_->mutex_);
    return impl_->streams_aborted_;
}

std::size_t fake_upstream::tls_handshakes() const {
    std::lock_guard lock(impl_->mutex_);
    return impl_->tls_handshakes_;
}

std::size_t fake_upstream::tls_resumed() const {
    std::lock_guard lock(impl_->mutex_);
    return impl_->tls_resumed_;
}

void fake_upstream::hold_handshakes(std::size_t n) {
    std::lock_guard lock(impl_->mutex_);
    impl_->to_hold_ = n;
}

void fake_upstream::release_handshakes() {
    {
        std::lock_guard lock(impl_->mutex_);
        impl_->to_hold_ = 0;
    }
    asio::post(*impl_->ioc_, [this] { impl_->gate_->cancel(); });
}

std::size_t fake_upstream::tls_held() const {
    std::lock_guard lock(impl_->mutex_);
    return impl_->held_;
}

bool fake_upstream::wait_until(const std::function<bool()>& pred,
                               std::chrono::milliseconds timeout) const {
    using clock = std::chrono::steady_clock;
    const auto deadline = clock::now() + timeout;
    constexpr auto recheck = std::chrono::milliseconds(50);
    for (;;) {
        std::uint64_t seen = 0;
        {
            std::lock_guard lock(impl_->mutex_);
            seen = impl_->generation_;
        }
        // Evaluated unlocked: pred usually calls the accessors above.
        if (pred()) {
            return true;
        }
        const auto now = clock::now();
        if (now >= deadline) {
            return false;
        }
        std::unique_lock lock(impl_->mutex_);
        impl_->cv_.wait_until(lock, std::min(deadline, now + recheck),
                              [&] { return impl_->generation_ != seen; });
    }
}

} // namespace michi::test
