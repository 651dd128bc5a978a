#include "michi/app/runtime.hpp"

#include "michi/core/url_text.hpp"

namespace michi {

std::optional<endpoint> parse_base_url(const std::string& url) {
    endpoint ep;
    std::string_view rest(url);
    if (rest.starts_with("https://")) {
        ep.tls = true;
        rest.remove_prefix(8);
    } else if (rest.starts_with("http://")) {
        rest.remove_prefix(7);
    } else {
        return std::nullopt;
    }
    const auto slash = rest.find('/');
    const std::string_view authority = rest.substr(0, slash);
    ep.base_path = slash == std::string_view::npos ? "" : std::string(rest.substr(slash));
    while (!ep.base_path.empty() && ep.base_path.back() == '/') {
        ep.base_path.pop_back();
    }
    std::string why;
    auto parts = wire::split_authority(authority, why);
    if (!parts) {
        return std::nullopt;
    }
    ep.host = std::move(parts->host);
    const std::string_view port = parts->port.value_or(std::string_view{});
    if (ep.host.empty()) {
        return std::nullopt;
    }
    if (port.empty()) {
        ep.port = ep.tls ? "443" : "80";
    } else {
        for (char c : port) {
            if (c < '0' || c > '9') {
                return std::nullopt;
            }
        }
        ep.port = std::string(port);
    }
    return ep;
}

std::shared_ptr<ssl::context> make_client_tls_context(const std::string& ca_file) {
    auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
    ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                     ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
    ctx->set_default_verify_paths();
    if (!ca_file.empty()) {
        ctx->load_verify_file(ca_file); // throws on a bad file: caught by build()
    }
    ctx->set_verify_mode(ssl::verify_peer);
    return ctx;
}

runtime::runtime(std::shared_ptr<const config::config> c) : cfg(std::move(c)), keys(*cfg) {}

std::shared_ptr<const runtime> runtime::build(std::shared_ptr<const config::config> c,
                                              std::string& error) {
    auto rt = std::make_shared<runtime>(std::move(c));
    std::shared_ptr<ssl::context> shared_tls;
    for (const auto& [name, p] : rt->cfg->providers) {
        if (p.type == config::provider_type::echo) {
            continue;
        }
        auto ep = parse_base_url(p.base_url);
        if (!ep) {
            error = "providers." + name + ".base_url: cannot parse \"" + p.base_url + "\"";
            return nullptr;
        }
        if (ep->tls) {
            try {
                if (!p.ca_file.empty()) {
                    ep->tls_ctx = make_client_tls_context(p.ca_file);
                } else {
                    if (!shared_tls) {
                        shared_tls = make_client_tls_context({});
                    }
                    ep->tls_ctx = shared_tls;
                }
            } catch (const std::exception& e) {
                error = "providers." + name + ".ca_file: " + e.what();
                return nullptr;
            }
        }
        ep->pool_key = (ep->tls ? "https://" : "http://") + ep->host + ":" + ep->port + "#" + name;
        if (p.type == config::provider_type::openai) {
            ep->chat_head = pipeline::openai_head_prefix(p, *ep, "chat/completions");
            ep->embeddings_head = pipeline::openai_head_prefix(p, *ep, "embeddings");
        }
        rt->endpoints.emplace(name, std::move(*ep));
    }
    return rt;
}

} // namespace michi
