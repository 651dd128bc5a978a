#include "michi/store/redis_url.hpp"

#include "michi/core/url_text.hpp"

#include <charconv>

namespace michi::store {

std::optional<redis_url> redis_url::parse(std::string_view url, std::string& error) {
    constexpr std::string_view scheme = "redis://";
    if (!url.starts_with(scheme)) {
        error = "expected a redis:// URL";
        return std::nullopt;
    }
    std::string_view rest = url.substr(scheme.size());
    redis_url out;
    if (const auto slash = rest.find('/'); slash != std::string_view::npos) {
        const std::string_view db = rest.substr(slash + 1);
        rest = rest.substr(0, slash);
        if (!db.empty()) {
            const auto r = std::from_chars(db.data(), db.data() + db.size(), out.db);
            if (r.ec != std::errc{} || r.ptr != db.data() + db.size() || out.db < 0) {
                error = "the database after '/' must be a number";
                return std::nullopt;
            }
        }
    }
    if (const auto at = rest.rfind('@'); at != std::string_view::npos) {
        const std::string_view cred = rest.substr(0, at);
        rest = rest.substr(at + 1);
        const auto colon = cred.find(':');
        if (colon == std::string_view::npos) {
            out.password = wire::percent_decode(cred, false);
        } else {
            out.username = wire::percent_decode(cred.substr(0, colon), false);
            out.password = wire::percent_decode(cred.substr(colon + 1), false);
        }
    }
    auto parts = wire::split_authority(rest, error);
    if (!parts) {
        return std::nullopt;
    }
    out.host = std::move(parts->host);
    if (out.host.empty()) {
        error = "no host";
        return std::nullopt;
    }
    if (parts->port) {
        const std::string_view port = *parts->port;
        unsigned p = 0;
        const auto r = std::from_chars(port.data(), port.data() + port.size(), p);
        if (r.ec != std::errc{} || r.ptr != port.data() + port.size() || p == 0 || p > 65535) {
            error = "the port must be a number from 1 to 65535";
            return std::nullopt;
        }
        out.port = static_cast<std::uint16_t>(p);
    }
    return out;
}

std::string redis_url::where() const {
    const bool v6 = host.find(':') != std::string::npos;
    return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

} // namespace michi::store
