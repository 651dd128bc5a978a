#include "michi/upstream/endpoint.hpp"

#include "michi/core/url_text.hpp"
#include "michi/upstream/tls_channel.hpp"

namespace michi::upstream {

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
        ctx->load_verify_file(ca_file); // throws on a bad file
    }
    ctx->set_verify_mode(ssl::verify_peer);
    tls_channel::prepare_context(*ctx); // sessions kept per worker, to resume
    return ctx;
}

} // namespace michi::upstream
