#pragma once
// A provider adapter: everything that differs between provider types, as pure functions of
// the request and of the provider's answer (no I/O). The exchange asks the adapter of a
// target's provider to build the upstream request, to say whether a status falls back, and
// to read the answer: passed through as it came when the client's API is the provider's own,
// else turned into the pivot form (OpenAI chat completions and chunks) for the client's API.
// One adapter per provider type, in a registry (adapter_for).

#include "michi/config/config.hpp"
#include "michi/core/api.hpp"
#include "michi/core/result.hpp"
#include "michi/providers/outgoing_request.hpp"
#include "michi/providers/translate.hpp"
#include "michi/stream/body_source.hpp"
#include "michi/upstream/endpoint.hpp"

#include <nlohmann/json.hpp>

#include <array>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace michi::providers {

class adapter;

// What an adapter reads of an admitted request (filled by admission).
struct request_view {
    api_kind api = api_kind::chat;          // the API the client called
    std::string_view raw_body;              // the client's body as it was sent
    const nlohmann::json* parsed = nullptr; // the body in OpenAI form, when it was parsed
    std::size_t model_begin = 0;            // the "model" value's bytes in raw_body
    std::size_t model_end = 0;              // (0: not known; found again when needed)
    bool stream = false;
    bool wants_usage = false;        // the client asked for the stream's usage chunk
    bool has_stream_options = false; // the body has a stream_options member
    std::uint64_t prompt_tokens = 0; // estimate
    // The client's anthropic-version and anthropic-beta fields (forwarded to Anthropic).
    std::string_view anthropic_version;
    std::string_view anthropic_beta;
    std::size_t key_index = 0; // which of the provider's api_keys this attempt sends
};

// A configured provider as requests use it: its config, its adapter, where it lives, and
// what the adapter prepared for it once per config snapshot.
struct binding {
    const config::provider_config* config = nullptr;
    const adapter* impl = nullptr;
    std::optional<upstream::endpoint> endpoint; // none for a local provider (echo)
    // Request heads up to their Content-Length, by the provider key they send (one set when
    // the provider has none) and the API they call (prepare()).
    std::vector<std::array<std::string, 3>> heads;

    // The text of the provider key an attempt sends (request_view::key_index); empty when the
    // provider has none.
    const std::string& api_key(std::size_t index) const noexcept {
        static const std::string none;
        return index < config->api_keys.size() ? config->api_keys[index].key.reveal() : none;
    }
    // A hosted provider without its api key is off: not called, and why (the variable to set).
    bool configured = true;
    std::string off_reason;
};

// A local provider's answer (echo): a whole body, or a stream generated piece by piece.
struct local_answer {
    std::string whole;                           // a whole JSON answer, when not a stream
    std::unique_ptr<stream::body_source> stream; // the SSE body, when a stream
};

class adapter {
public:
    virtual ~adapter() = default;

    virtual config::provider_type type() const noexcept = 0;
    // Answered in-process (echo): no endpoint and no network.
    virtual bool local() const noexcept { return false; }
    // The client's API is one this provider speaks: the request goes as it was sent (model
    // swapped) and the answer comes back unchanged.
    virtual bool passthrough(const binding& b, api_kind client) const noexcept = 0;
    // Whether build() reads the parsed body for this request (else the raw bytes serve).
    virtual bool needs_parsed_body(const binding& b, const request_view& r) const = 0;
    // Work done once per snapshot for a provider (request heads that never change).
    virtual void prepare(binding&) const {}

    // The upstream request for `model` on `b`; 400 unsupported_parameter (naming it) when the
    // target cannot carry the request.
    virtual result<void> build(const binding& b, const config::model_config& model,
                               const request_view& r, outgoing_request& out) const = 0;

    // Whether an answer with this status goes to the next target (429, 5xx: Anthropic's
    // 529 too).
    virtual bool retryable(unsigned status) const noexcept {
        return status == 429 || status >= 500;
    }

    // Usage of a passed-through whole answer in `api`, read from its text; false when it
    // has none.
    virtual bool usage_of_body(api_kind api, std::string_view body, usage_info& u) const;
    // One passed-through stream event's data in `api`: notes usage (adding to what earlier
    // events reported where the API counts that way); true when the event carries only the
    // usage (dropped when the client did not ask for it).
    virtual bool inspect_event(api_kind api, std::string_view data, usage_info& u) const;
    // Characters of the answer's text in a passed-through body or event: the output's
    // estimate when no usage comes.
    virtual std::size_t content_chars(std::string_view text) const noexcept;
    // inspect_event, and content_chars added to chars, for one passed-through stream event:
    // in one pass over it where the adapter can (the default makes both calls).
    virtual bool read_event(api_kind api, std::string_view data, usage_info& u,
                            std::size_t& chars) const;

    // A whole success answer in pivot form (OpenAI chat.completion or embeddings list) with
    // its usage; nullopt when the body makes no sense.
    virtual std::optional<nlohmann::json> to_pivot(api_kind client, const nlohmann::json& body,
                                                   const std::string& model, const std::string& id,
                                                   usage_info& u) const = 0;
    // An error answer (any status) as an OpenAI error body.
    virtual nlohmann::json error_to_pivot(unsigned status, std::string_view body) const = 0;
    // A stream's events as OpenAI chunks (pivot form).
    virtual std::unique_ptr<chunk_translator> stream_to_pivot(std::string id, std::string model,
                                                              bool include_usage) const = 0;

    // A local provider's answer; null for network providers.
    virtual std::unique_ptr<local_answer> answer_locally(const config::model_config& model,
                                                         const request_view& r,
                                                         const std::string& id) const {
        (void)model, (void)r, (void)id;
        return nullptr;
    }
};

// The adapter of a provider type.
const adapter& adapter_for(config::provider_type type) noexcept;

// A binding for a configured provider: its adapter, endpoint (TLS context from ca_file, or
// shared_tls for every provider without one: made on first need) and prepared heads. An
// error naming the config path when its base_url or ca_file is bad.
result<binding> bind(const config::provider_config& p, std::shared_ptr<ssl::context>& shared_tls);

} // namespace michi::providers
