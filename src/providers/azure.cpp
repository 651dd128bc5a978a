// Azure OpenAI deployments: OpenAI's API behind a deployment path and an `api-key` field;
// the deployment names the model, so a Chat Completions body carries none. A deployment
// with `apis: [.., responses]` takes Responses requests as they were sent (its v1 path).

#include "michi/providers/request_head.hpp"
#include "openai_detail.hpp"

namespace michi::providers::openai {
namespace {

class azure_type final : public detail::openai_type {
public:
    config::provider_type type() const noexcept override { return config::provider_type::azure; }
    bool needs_parsed_body(const binding& b, const request_view& r) const override {
        return !(r.api == api_kind::responses && passthrough(b, r.api));
    }
    void prepare(binding&) const override {}

    result<void> build(const binding& b, const config::model_config& model, const request_view& r,
                       outgoing_request& out) const override {
        const auto& p = *b.config;
        field_list fields(*b.endpoint);
        if (const auto& key = b.api_key(r.key_index); !key.empty()) {
            fields.set("api-key", key);
        }
        if (r.api == api_kind::responses && passthrough(b, r.api) &&
            splice_model(r.raw_body, r.model_begin, r.model_end, model.upstream, {}, out.body)) {
            head_prefix(out.head, p, b.endpoint->base_path + "/openai/v1/responses",
                        std::move(fields));
        } else {
            const auto api = r.api == api_kind::embeddings ? api_kind::embeddings : api_kind::chat;
            const auto target = b.endpoint->base_path + "/openai/deployments/" + model.upstream +
                                "/" + std::string(detail::operation(api)) +
                                "?api-version=" + p.api_version;
            head_prefix(out.head, p, target, std::move(fields));
            rewrite_body(r, nullptr, out);
        }
        finish_head(out.head, out.body.size());
        return ok();
    }
};

const azure_type azure_instance;

} // namespace

const adapter& azure_adapter() noexcept { return azure_instance; }

} // namespace michi::providers::openai
