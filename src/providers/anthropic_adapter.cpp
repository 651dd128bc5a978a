// Anthropic's Messages API as a provider: chat requests translated to it, its answers and
// stream events translated back to the pivot form.

#include "michi/providers/anthropic.hpp"
#include "translated_request.hpp"

#include <ctime>

namespace michi::providers::anthropic {
namespace {

class anthropic_type final : public adapter {
public:
    config::provider_type type() const noexcept override {
        return config::provider_type::anthropic;
    }
    bool passthrough(api_kind) const noexcept override { return false; }
    bool needs_parsed_body(const request_view&) const override { return true; }

    result<void> build(const binding& b, const config::model_config& model,
                       const request_view& r, outgoing_request& out) const override {
        if (r.api == api_kind::embeddings) {
            return errors::invalid_request("Anthropic has no embeddings API.", "model");
        }
        return detail::to_wire(
            b, build_chat(*r.parsed, model.upstream, b.config->api_key.reveal(), r.stream), out);
    }

    // 529 (overloaded) is a 5xx: it falls back like the others.

    std::optional<nlohmann::json> to_pivot(api_kind, const nlohmann::json& body,
                                           const std::string& model, const std::string& id,
                                           usage_info& u) const override {
        if (!body.is_object()) {
            return std::nullopt;
        }
        return to_openai(body, model, id, detail::unix_now(), u);
    }
    nlohmann::json error_to_pivot(unsigned status, std::string_view body) const override {
        return error_to_openai(status, body);
    }
    std::unique_ptr<chunk_translator> stream_to_pivot(std::string id, std::string model,
                                                      bool include_usage) const override {
        return make_stream(std::move(id), std::move(model), detail::unix_now(), include_usage);
    }
};

const anthropic_type instance;

} // namespace

const providers::adapter& anthropic_adapter() noexcept { return instance; }

} // namespace michi::providers::anthropic
