// Anthropic's Messages API as a provider: a Messages client's request (and its token count)
// goes as it was sent, the model swapped and the client's anthropic-version and
// anthropic-beta forwarded; other clients' requests are translated from the pivot form and
// the answers and stream events translated back to it.

#include "michi/core/http_wire.hpp"
#include "michi/core/json_scan.hpp"
#include "michi/core/json_parse.hpp"
#include "michi/providers/anthropic.hpp"
#include "michi/providers/usage.hpp"
#include "translated_request.hpp"

#include <algorithm>
#include <ctime>

namespace michi::providers::anthropic {
namespace {

// The usage object of a message (a whole answer, or message_start's message) as text.
bool read_message_usage(std::string_view message, usage_info& u) {
    const auto usage = json_scan::find_unique_near_end(message, "usage");
    if (!usage) {
        return false;
    }
    const auto read = read_anthropic_usage(*usage); // (from the text: no DOM on the relay)
    if (read) {
        u = usage_info::from(*read);
    }
    return read.has_value();
}

class anthropic_type final : public adapter {
public:
    config::provider_type type() const noexcept override {
        return config::provider_type::anthropic;
    }
    bool passthrough(const binding&, api_kind client) const noexcept override {
        return client == api_kind::messages || client == api_kind::count_tokens;
    }
    bool needs_parsed_body(const binding& b, const request_view& r) const override {
        return !passthrough(b, r.api);
    }

    result<void> build(const binding& b, const config::model_config& model, const request_view& r,
                       outgoing_request& out) const override {
        if (r.api == api_kind::embeddings) {
            return errors::invalid_request("Anthropic has no embeddings API.", "model");
        }
        if (!passthrough(b, r.api)) {
            return detail::to_wire(
                b, build_chat(*r.parsed, model.upstream, b.api_key(r.key_index), r.stream), out);
        }
        if (!splice_model(r.raw_body, r.model_begin, r.model_end, model.upstream, {}, out.body)) {
            return errors::invalid_request("The request body's model cannot be read.", "model");
        }
        // The prepared head, then the client's version and beta (unless configured headers
        // set them: those win, as they do over every field of the gateway's own).
        const auto& heads = b.heads[std::min(r.key_index, b.heads.size() - 1)];
        const std::string& prefix = heads[r.api == api_kind::count_tokens ? 1 : 0];
        out.head.reserve(prefix.size() + r.anthropic_beta.size() + 80);
        out.head.append(prefix);
        const auto configured = [&](std::string_view name) {
            return std::any_of(b.config->headers.begin(), b.config->headers.end(),
                               [&](const auto& h) { return beast::iequals(h.first, name); });
        };
        if (!configured("anthropic-version")) {
            wire::append_field(out.head, "anthropic-version",
                               r.anthropic_version.empty() ? api_version : r.anthropic_version);
        }
        if (!r.anthropic_beta.empty() && !configured("anthropic-beta")) {
            wire::append_field(out.head, "anthropic-beta", r.anthropic_beta);
        }
        finish_head(out.head, out.body.size());
        return ok();
    }

    // The passthrough heads up to their version field, once per snapshot: messages (0) and
    // count_tokens (1).
    void prepare(binding& b) const override {
        // One set per provider key.
        b.heads.assign(std::max<std::size_t>(1, b.config->api_keys.size()), {});
        for (std::size_t key = 0; key < b.heads.size(); ++key) {
            for (const auto& [i, path] :
                 {std::pair{0, "/v1/messages"}, std::pair{1, "/v1/messages/count_tokens"}}) {
                field_list fields(*b.endpoint);
                fields.set("x-api-key", b.api_key(key));
                head_prefix(b.heads[key][i], *b.config, b.endpoint->base_path + path,
                            std::move(fields));
            }
        }
    }

    // 529 (overloaded) is a 5xx: it falls back like the others.

    bool usage_of_body(api_kind api, std::string_view body, usage_info& u) const override {
        return api == api_kind::messages && read_message_usage(body, u);
    }

    // message_start's message has the input side; each message_delta the counts so far.
    bool inspect_event(api_kind, std::string_view data, usage_info& u) const override {
        if (json_scan::find_text(data, "\"usage\"") == std::string_view::npos) {
            return false;
        }
        if (json_scan::find_text(data, "\"message_start\"") != std::string_view::npos) {
            if (const auto message = json_scan::find_unique(data, "message")) {
                read_message_usage(*message, u);
            }
            return false;
        }
        const auto usage = json_scan::find_unique(data, "usage");
        if (!usage) {
            return false;
        }
        auto tally = u.known ? anthropic_usage_tally::of(u.tokens()) : anthropic_usage_tally{};
        tally.add(*usage);
        if (tally.known()) {
            u = usage_info::from(tally.tokens());
        }
        return false;
    }

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
