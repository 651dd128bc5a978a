#pragma once
// Builds the upstream HTTP request for one candidate in its provider's dialect.

#include "michi/pipeline/exchange.hpp"
#include "michi/providers/translate.hpp"

namespace michi::pipeline {

struct prepared_request {
    prepared_request() = default;
    prepared_request(prepared_request&&) = default;
    prepared_request& operator=(prepared_request&&) = default;
    // Hands the strings' storage to the next request built on this thread.
    ~prepared_request() { recycle(); }
    // The same once the request has been sent: a stream need not hold its request (often
    // the longest part of what a stream keeps) while it lasts. The strings are left empty.
    void recycle();

    std::string head; // "POST … HTTP/1.1", the fields and the blank line, as sent
    std::string body;
    bool translated = false; // the response needs translating back (anthropic, gemini)
    std::optional<providers::translate_error> error; // the request cannot be expressed
};

prepared_request prepare_request(const candidate& c, const request_context& ctx);

} // namespace michi::pipeline
