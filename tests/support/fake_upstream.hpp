#pragma once
// A scriptable fake upstream HTTP(S) server for integration tests: it records every request,
// counts connections and aborted streams, and answers with plain, streamed (chunked/SSE), cut
// or delayed responses. Listens on 127.0.0.1 port 0 and runs on its own thread.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace michi::test {

// One request as the fake upstream received it.
struct recorded_request {
    std::string method;
    std::string target;
    std::map<std::string, std::string> headers; // lower-cased names; repeated fields joined by ", "
    std::string body;
};

// What the fake upstream answers to one request.
struct fake_response {
    unsigned status = 200;
    // e.g. {"content-type", "application/json"}
    std::vector<std::pair<std::string, std::string>> headers;
    // Non-stream body (content-length).
    std::string body;
    // If non-empty: chunked transfer-encoding, one HTTP chunk each (empty strings are skipped).
    std::vector<std::string> chunks;
    // Delay before each chunk (a timer, not a sleep).
    std::chrono::milliseconds chunk_delay{0};
    // Close the socket after the chunks, without the final 0-chunk (no TLS close_notify either).
    bool cut_after_chunks = false;
    std::chrono::milliseconds end_delay{
        0}; // silence after the last chunk, before the end (a stall)
    // Delay before sending the response head (for timeouts).
    std::chrono::milliseconds head_delay{0};
    // Send Connection: close and close after responding.
    bool close_connection = false;
    // No Content-Length: the body ends where the connection closes (implies close_connection).
    bool body_until_close = false;
};

// A complete JSON response with content-type application/json.
fake_response json_response(unsigned status, std::string body);

// A 200 text/event-stream response with one chunk "data: <x>\n\n" per element.
fake_response sse_response(std::vector<std::string> events_data,
                           std::chrono::milliseconds delay = std::chrono::milliseconds{0});

// The default answer: a 200 OpenAI chat completion echoing the request's "model" (or "fake-model").
fake_response default_chat_completion(const recorded_request& req);

// An upstream that reports prompt_tokens 10 and completion_tokens = the request's
// max_tokens, so a request's cost is exactly what the client asks for; streams carry the
// usage chunk only when asked for it.
fake_response usage_echoing(const recorded_request& req);
// A chat request body asking for max_tokens (fake/gpt-test costs $2 per million output
// tokens: 100000 is $0.20).
std::string priced_chat(int max_tokens, bool stream = false,
                        const std::string& model = "fake/gpt-test");

// Paths of a throwaway CA certificate and a server certificate/key signed by it (all PEM).
struct tls_files {
    std::string ca_file;
    std::string cert_file;
    std::string key_file;
};

// Makes a throwaway CA and a server certificate for `dns_name` (SAN DNS:<dns_name> only, no IP
// SAN) signed by it, written under `dir` (created if missing) as ca.pem, server.pem and
// server-key.pem. Throws std::runtime_error on failure.
tls_files make_test_certs(const std::string& dir, const std::string& dns_name = "localhost");

// The fake upstream server. Thread-safe: every accessor may be called from any thread, and the
// handler may call the accessors too (it runs on the fake's own thread, without its lock held).
class fake_upstream {
public:
    using handler = std::function<fake_response(const recorded_request&)>;

    // Listens on 127.0.0.1:0 (TLS when `tls` is given; the files are read here, the pointer need
    // not outlive the call) and serves on its own thread with its own io_context.
    explicit fake_upstream(const tls_files* tls = nullptr);
    // Stops the thread and drops every connection.
    ~fake_upstream();

    fake_upstream(const fake_upstream&) = delete;
    fake_upstream& operator=(const fake_upstream&) = delete;

    std::uint16_t port() const;
    // "http://host:port" or "https://host:port".
    std::string base_url(const std::string& host = "127.0.0.1") const;

    // Replaces the handler (default: default_chat_completion). Exceptions thrown by it become
    // a 500 response.
    void set_handler(handler h);

    std::vector<recorded_request> requests() const;
    std::size_t request_count() const;
    // TCP connections accepted (counted before any TLS handshake).
    std::size_t connections_opened() const;
    // Connections that have ended (peer close, close_connection, cut, error, failed handshake).
    std::size_t connections_closed() const;
    // Chunked responses that failed because the peer went away (write error, or EOF/error seen
    // by the concurrent read while streaming; a client half-close counts too). A peer leaving
    // during head_delay is not counted: nothing is streaming yet.
    std::size_t streams_aborted() const;
    // TLS handshakes completed, and how many of them resumed an earlier session.
    std::size_t tls_handshakes() const;
    std::size_t tls_resumed() const;
    // The next n TLS connections wait before their handshake (the client's hello unread)
    // until release_handshakes(); tls_held() says how many are waiting now.
    void hold_handshakes(std::size_t n);
    void release_handshakes();
    std::size_t tls_held() const;

    // Blocks until pred() is true or timeout passes; re-checks whenever the fake records
    // anything (request, connection, close, abort) and at least every 50 ms. pred() is called
    // without the fake's lock held, so it may use the accessors. Returns pred().
    bool wait_until(const std::function<bool()>& pred,
                    std::chrono::milliseconds timeout = std::chrono::seconds(10)) const;

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

} // namespace michi::test
