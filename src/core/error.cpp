#include "michi/core/error.hpp"

#include "michi/core/safe_text.hpp"

namespace michi {

bool gateway_error::retryable() const noexcept {
    switch (kind) {
    case error_kind::rate_limited:
    case error_kind::upstream:
    case error_kind::unavailable:
    case error_kind::timeout: return true;
    default: return false;
    }
}

nlohmann::json gateway_error::openai_body() const {
    nlohmann::json err = {{"message", message}, {"type", type}, {"code", code}};
    err["param"] = param.empty() ? nlohmann::json(nullptr) : nlohmann::json(param);
    return {{"error", std::move(err)}};
}

nlohmann::json gateway_error::anthropic_body() const {
    // Anthropic's error types, by status.
    std::string t = "api_error";
    switch (status) {
    case 400: t = "invalid_request_error"; break;
    case 401: t = "authentication_error"; break;
    case 403: t = "permission_error"; break;
    case 404: t = "not_found_error"; break;
    case 413: t = "request_too_large"; break;
    case 429: t = "rate_limit_error"; break;
    case 529: t = "overloaded_error"; break;
    default: t = status / 100 == 4 ? "invalid_request_error" : t; break; // 405, 409, 431
    }
    return {{"type", "error"}, {"error", {{"type", t}, {"message", message}}}};
}

namespace errors {
namespace {

gateway_error make(error_kind kind, unsigned status, std::string type, std::string code,
                   std::string message, std::string param = {}) {
    return {kind, status, std::move(type), std::move(code), std::move(message), std::move(param)};
}

// A client's value quoted in a message: valid UTF-8 (the body is JSON), bounded.
std::string quote_value(std::string_view v) { return "\"" + safe_text::printable(v) + "\""; }
} // namespace

gateway_error invalid_request(std::string message, std::string param) {
    return make(error_kind::invalid_request, 400, "invalid_request_error", "invalid_request_error",
                std::move(message), std::move(param));
}
gateway_error unsupported_parameter(std::string message, std::string param) {
    return make(error_kind::invalid_request, 400, "invalid_request_error", "unsupported_parameter",
                std::move(message), std::move(param));
}
gateway_error malformed_http(std::string message) {
    return make(error_kind::invalid_request, 400, "invalid_request_error", "malformed_request",
                std::move(message));
}
gateway_error json_too_deep(std::size_t limit) {
    return invalid_request("The request body is nested deeper than the limit of " +
                           std::to_string(limit) + " levels (server.max_json_depth).");
}
gateway_error invalid_api_key(std::string message) {
    return make(error_kind::authentication, 401, "invalid_request_error", "invalid_api_key",
                std::move(message));
}
gateway_error revoked_api_key() { return invalid_api_key("This API key has been revoked."); }
gateway_error invalid_admin_key() {
    return make(error_kind::permission, 403, "permission_error", "invalid_admin_key",
                "The admin key is not valid.");
}
gateway_error model_not_allowed(const std::string& model) {
    return make(error_kind::permission, 403, "permission_error", "model_not_allowed",
                "This key may not use model " + quote_value(model) + ".", "model");
}
gateway_error model_not_found(const std::string& model) {
    return make(error_kind::not_found, 404, "invalid_request_error", "model_not_found",
                "The model " + quote_value(model) + " does not exist or is not configured.",
                "model");
}
gateway_error model_not_priced(const std::string& model) {
    return make(error_kind::permission, 403, "permission_error", "model_not_priced",
                "The model " + quote_value(model) +
                    " has no known price, and this key has a USD budget: "
                    "add input_per_mtok and output_per_mtok for it under models: in the config.",
                "model");
}
gateway_error budget_exceeded(std::string message) {
    return make(error_kind::permission, 403, "insufficient_quota", "budget_exceeded",
                std::move(message));
}
gateway_error rate_limit_exceeded(std::string message) {
    return make(error_kind::rate_limited, 429, "rate_limit_error", "rate_limit_exceeded",
                std::move(message));
}
gateway_error loop_detected(std::string message) {
    return make(error_kind::rate_limited, 429, "rate_limit_error", "loop_detected",
                std::move(message));
}
gateway_error not_found(const std::string& path) {
    return make(error_kind::not_found, 404, "invalid_request_error", "not_found",
                "Unknown path " + safe_text::printable(path) + ".");
}
gateway_error not_found_named(std::string code, std::string message, std::string param) {
    return make(error_kind::not_found, 404, "invalid_request_error", std::move(code),
                std::move(message), std::move(param));
}
gateway_error method_not_allowed(const std::string& method, const std::string& path) {
    return make(error_kind::method_not_allowed, 405, "invalid_request_error", "method_not_allowed",
                "Method " + safe_text::printable(method, 32) + " is not allowed on " +
                    safe_text::printable(path) + ".");
}
gateway_error conflict(std::string code, std::string message, std::string param) {
    return make(error_kind::conflict, 409, "invalid_request_error", std::move(code),
                std::move(message), std::move(param));
}
gateway_error request_too_large(std::size_t limit) {
    return make(error_kind::too_large, 413, "invalid_request_error", "request_too_large",
                "Request body exceeds the limit of " + std::to_string(limit) + " bytes.");
}
gateway_error headers_too_large(std::size_t limit) {
    return make(error_kind::too_large, 431, "invalid_request_error", "headers_too_large",
                "Request headers exceed " + std::to_string(limit) + " bytes.");
}
gateway_error internal(std::string message) {
    return make(error_kind::internal, 500, "api_error", "internal_error", std::move(message));
}
gateway_error upstream_error(std::string message) {
    return make(error_kind::upstream, 502, "api_error", "upstream_error", std::move(message));
}
gateway_error upstream_timeout(std::string message) {
    return make(error_kind::timeout, 504, "api_error", "upstream_timeout", std::move(message));
}
gateway_error unavailable(std::string message) {
    return make(error_kind::unavailable, 503, "api_error", "unavailable", std::move(message));
}
gateway_error provider_not_configured(std::string message) {
    return make(error_kind::unavailable, 503, "api_error", "provider_not_configured",
                std::move(message), "model");
}
gateway_error ledger_unavailable(std::string message) {
    return make(error_kind::unavailable, 503, "api_error", "ledger_unavailable",
                std::move(message));
}

} // namespace errors
} // namespace michi
