#pragma once
// The one domain error value of the data plane: HTTP status, OpenAI error type/code,
// message, and a fixed low-cardinality label for metrics and logs.

#include <nlohmann/json.hpp>

#include <string>

namespace michi {

struct gateway_error {
    unsigned status = 500;
    std::string type = "api_error";
    std::string code = "internal_error";
    std::string message;
    std::string param; // empty -> null

    // {"error":{"message","type","code","param"}}
    nlohmann::json openai_body() const;
    // {"type":"error","error":{"type","message"}} for /v1/messages
    nlohmann::json anthropic_body() const;
};

namespace errors {
gateway_error invalid_request(std::string message, std::string param = {});
// 400: a JSON body nested deeper than server.max_json_depth (json_parse::failure::too_deep).
gateway_error json_too_deep(std::size_t limit);
gateway_error invalid_api_key(std::string message = "Invalid API key provided.");
// The same for a key that was revoked (found revoked here, or by the shared ledger).
gateway_error revoked_api_key();
gateway_error model_not_allowed(const std::string& model);
gateway_error model_not_found(const std::string& model);
gateway_error model_not_priced(const std::string& model);
gateway_error not_found(const std::string& path);
gateway_error method_not_allowed(const std::string& method, const std::string& path);
gateway_error request_too_large(std::size_t limit);
gateway_error upstream_error(std::string message);
gateway_error upstream_timeout(std::string message);
gateway_error unavailable(std::string message);
// 503: the shared ledger (Redis) cannot answer, so a guarded request is not let through.
gateway_error ledger_unavailable(std::string message);
} // namespace errors

} // namespace michi
