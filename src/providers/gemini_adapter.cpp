// Google's Gemini API as a provider: chat and embeddings requests translated to it, its
// answers and stream events translated back to the pivot form.

#include "michi/providers/gemini.hpp"
#include "translated_request.hpp"

#include <ctime>

namespace michi::providers::gemini {
namespace {

class gemini_type final : public adapter {
public:
    config::provider_type type() const noexcept override { return config::provider_type::gemini; }
    bool passthrough(const binding&, api_kind) const noexcept override { return false; }
    bool needs_parsed_body(const binding&, const request_view&) const override { return true; }

    result<void> build(const binding& b, const config::model_config& model, const request_view& r,
                       outgoing_request& out) const override {
        const auto& key = b.api_key(r.key_index);
        if (r.api == api_kind::embeddings) {
            return detail::to_wire(b, build_embeddings(*r.parsed, model.upstream, key), out);
        }
        return detail::to_wire(b, build_chat(*r.parsed, model.upstream, key, r.stream), out);
    }

    std::optional<nlohmann::json> to_pivot(api_kind client, const nlohmann::json& body,
                                           const std::string& model, const std::string& id,
                                           usage_info& u) const override {
        if (!body.is_object()) {
            return std::nullopt;
        }
        if (client == api_kind::embeddings) {
            return embeddings_to_openai(body, model, u);
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

const gemini_type instance;

} // namespace

const providers::adapter& gemini_adapter() noexcept { return instance; }

} // namespace michi::providers::gemini
