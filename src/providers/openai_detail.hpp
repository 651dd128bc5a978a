#pragma once
// The OpenAI-type adapter's class, for the adapters built on it (Azure, echo): not a public
// interface.

#include "michi/providers/openai.hpp"

namespace michi::providers::openai::detail {

class openai_type : public adapter {
public:
    config::provider_type type() const noexcept override { return config::provider_type::openai; }
    bool passthrough(const binding& b, api_kind client) const noexcept override {
        return client == api_kind::responses
                   ? b.config->responses_api
                   : (client == api_kind::chat || client == api_kind::embeddings) &&
                         b.config->chat_api;
    }
    bool needs_parsed_body(const binding& b, const request_view& r) const override;
    void prepare(binding& b) const override;
    result<void> build(const binding& b, const config::model_config& model, const request_view& r,
                       outgoing_request& out) const override;
    bool usage_of_body(api_kind api, std::string_view body, usage_info& u) const override;
    bool inspect_event(api_kind api, std::string_view data, usage_info& u) const override;
    bool read_event(api_kind api, std::string_view data, usage_info& u,
                    std::size_t& chars) const override;
    std::size_t content_chars(std::string_view text) const noexcept override {
        return openai::content_chars(text);
    }
    std::optional<nlohmann::json> to_pivot(api_kind client, const nlohmann::json& body,
                                           const std::string& model, const std::string& id,
                                           usage_info& u) const override;
    nlohmann::json error_to_pivot(unsigned status, std::string_view body) const override;
    std::unique_ptr<chunk_translator> stream_to_pivot(std::string id, std::string model,
                                                      bool include_usage) const override;

protected:
    // The client's body re-serialised with the model and stream options set (the path for a
    // body the splice cannot take), into out.body.
    static void rewrite_body(const request_view& r, const std::string* upstream_model,
                             outgoing_request& out);
};

// The upstream path of an API ("chat/completions", "embeddings", "responses"), and the index
// of its prepared head in binding::heads.
std::string_view operation(api_kind api) noexcept;
std::size_t head_index(api_kind api) noexcept;

} // namespace michi::providers::openai::detail
