// The adapter of each provider type, and a configured provider bound to its adapter and
// endpoint for a config snapshot.

#include "michi/providers/adapter.hpp"
#include "michi/providers/openai.hpp"

namespace michi::providers {

namespace anthropic {
const adapter& anthropic_adapter() noexcept;
}
namespace gemini {
const adapter& gemini_adapter() noexcept;
}

const adapter& adapter_for(config::provider_type type) noexcept {
    switch (type) {
    case config::provider_type::anthropic: return anthropic::anthropic_adapter();
    case config::provider_type::gemini: return gemini::gemini_adapter();
    case config::provider_type::azure: return openai::azure_adapter();
    case config::provider_type::echo: return openai::echo_adapter();
    case config::provider_type::openai: break;
    }
    return openai::openai_adapter();
}

namespace {

// A host on this machine or a private network (a local model server such as Ollama or
// vLLM, often without a key), rather than a hosted service that needs one.
bool is_local_host(const std::string& host) {
    if (host == "localhost" || host.ends_with(".localhost") || host == "::1" || host == "0.0.0.0" ||
        host.ends_with(".local") || host.ends_with(".internal") ||
        host.find('.') == std::string::npos) {
        return true;
    }
    error_code ec;
    const auto addr = net::ip::make_address(host, ec);
    if (ec) {
        return false;
    }
    if (addr.is_loopback()) {
        return true;
    }
    if (addr.is_v4()) {
        const auto b = addr.to_v4().to_bytes();
        return b[0] == 10 || (b[0] == 172 && b[1] >= 16 && b[1] < 32) ||
               (b[0] == 192 && b[1] == 168) || (b[0] == 169 && b[1] == 254);
    }
    return addr.to_v6().is_link_local() || (addr.to_v6().to_bytes()[0] & 0xfe) == 0xfc;
}

} // namespace

result<binding> bind(const config::provider_config& p, std::shared_ptr<ssl::context>& shared_tls) {
    binding b;
    b.config = &p;
    b.impl = &adapter_for(p.type);
    if (b.impl->local()) {
        return b;
    }
    auto ep = upstream::parse_base_url(p.base_url);
    if (!ep) {
        return errors::invalid_request("providers." + p.name + ".base_url: cannot parse \"" +
                                       p.base_url + "\"");
    }
    if (ep->tls) {
        try {
            if (!p.ca_file.empty()) {
                ep->tls_ctx = upstream::make_client_tls_context(p.ca_file);
            } else {
                if (!shared_tls) {
                    shared_tls = upstream::make_client_tls_context({});
                }
                ep->tls_ctx = shared_tls;
            }
        } catch (const std::exception& e) {
            return errors::invalid_request("providers." + p.name + ".ca_file: " + e.what());
        }
    }
    ep->pool_key = (ep->tls ? "https://" : "http://") + ep->host + ":" + ep->port + "#" + p.name;
    // A hosted provider without its key would only answer 401: it is off until the key is set.
    if (!is_local_host(ep->host) && p.api_keys.empty()) {
        b.configured = false;
        b.off_reason = p.api_key_env.empty() ? "providers." + p.name + ".api_key is empty"
                                             : p.api_key_env + " is not set";
    }
    b.endpoint = std::move(*ep);
    b.impl->prepare(b);
    return b;
}

} // namespace michi::providers

namespace michi::providers {

bool adapter::usage_of_body(api_kind, std::string_view, usage_info&) const { return false; }
bool adapter::inspect_event(api_kind, std::string_view, usage_info&) const { return false; }
std::size_t adapter::content_chars(std::string_view) const noexcept { return 0; }
bool adapter::read_event(api_kind api, std::string_view data, usage_info& u,
                         std::size_t& chars) const {
    chars += content_chars(data);
    return inspect_event(api, data, u);
}

} // namespace michi::providers
