#pragma once
// The one domain error value: what went wrong (its kind), the HTTP status, the OpenAI error
// type/code, a message, and a fixed low-cardinality code for metrics and logs. Every error is
// made by one of the named constructors in `errors::`.

#include <nlohmann/json.hpp>

#include <string>

namespace michi {

enum class error_kind {
    invalid_request,    // 400: the request cannot be served as written
    authentication,     // 401
    permission,         // 403: not allowed for this key (model, budget, price)
    not_found,          // 404
    method_not_allowed, // 405
    conflict,           // 409
    too_large,          // 413, 431
    rate_limited,       // 429
    internal,           // 500
    upstream,           // 502: every target failed
    unavailable,        // 503: the gateway cannot serve it now (draining, ledger, provider)
    timeout,            // 504
};

struct gateway_error {
    error_kind kind = error_kind::internal;
    unsigned status = 500;
    std::string type = "api_error";
    std::string code = "internal_error";
    std::string message;
    std::string param; // empty -> null

    // Whether the same request may succeed if sent again later (429, 502, 503, 504).
    bool retryable() const noexcept;

    // {"error":{"message","type","code","param"}}
    nlohmann::json openai_body() const;
    // {"type":"error","error":{"type","message"}} for /v1/messages
    nlohmann::json anthropic_body() const;
};

namespace errors {
gateway_error invalid_request(std::string message, std::string param = {});
// 400: a parameter the target cannot honour (named), never dropped in silence.
gateway_error unsupported_parameter(std::string message, std::string param);
gateway_error malformed_http(std::string message);
// 400: a JSON body nested deeper than server.max_json_depth (json_parse::failure::too_deep).
gateway_error json_too_deep(std::size_t limit);
gateway_error invalid_api_key(std::string message = "Invalid API key provided.");
// The same for a key that was revoked (found revoked here, or by the shared ledger).
gateway_error revoked_api_key();
gateway_error invalid_admin_key();
gateway_error model_not_allowed(const std::string& model);
gateway_error model_not_found(const std::string& model);
gateway_error model_not_priced(const std::string& model);
// 403 for a budget window, 429 for rpm/tpm and the loop guard: the guard's own message.
gateway_error budget_exceeded(std::string message);
gateway_error rate_limit_exceeded(std::string message);
gateway_error loop_detected(std::string message);
gateway_error not_found(const std::string& path);
gateway_error not_found_named(std::string code, std::string message, std::string param);
gateway_error method_not_allowed(const std::string& method, const std::string& path);
gateway_error conflict(std::string code, std::string message, std::string param);
gateway_error request_too_large(std::size_t limit);
gateway_error headers_too_large(std::size_t limit);
gateway_error internal(std::string message = "Internal error while handling the request.");
gateway_error upstream_error(std::string message);
gateway_error upstream_timeout(std::string message);
gateway_error unavailable(std::string message);
// 503: the providers that could serve the request are off (their api key is not set).
gateway_error provider_not_configured(std::string message);
// 503: the shared ledger (Redis) cannot answer, so a guarded request is not let through.
gateway_error ledger_unavailable(std::string message);
} // namespace errors

} // namespace michi
