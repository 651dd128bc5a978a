#include "michi/redis/redis_url.hpp"

#include "michi/core/url_text.hpp"

#include <charconv>

namespace michi::redis {
namespace {

bool parse_db(std::string_view text, int& db, std::string& error) {
    if (text.empty()) {
        return true;
    }
    const auto r = std::from_chars(text.data(), text.data() + text.size(), db);
    if (r.ec != std::errc{} || r.ptr != text.data() + text.size() || db < 0) {
        error = "the database after '/' must be a number";
        return false;
    }
    return true;
}

std::optional<redis_endpoint> parse_endpoint(std::string_view text, std::string& error) {
    auto parts = wire::split_authority(text, error);
    if (!parts) {
        return std::nullopt;
    }
    redis_endpoint out;
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

bool parse_params(std::string_view query, redis_url& out, std::string& error) {
    while (!query.empty()) {
        const auto amp = query.find('&');
        const std::string_view item = query.substr(0, amp);
        query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
        if (item.empty()) {
            continue;
        }
        const auto eq = item.find('=');
        const std::string_view name = item.substr(0, eq);
        const std::string value = eq == std::string_view::npos
                                      ? std::string{}
                                      : wire::percent_decode(item.substr(eq + 1), true);
        if (name == "ca_file") {
            out.ca_file = value;
        } else if (name == "sentinel_username") {
            out.sentinel_username = value;
        } else if (name == "sentinel_password") {
            out.sentinel_password = value;
        } else {
            error = "unknown parameter \"" + std::string(name).substr(0, 40) +
                    "\" (known: ca_file, sentinel_username, sentinel_password)";
            return false;
        }
    }
    if (!out.ca_file.empty() && !out.tls) {
        error = "ca_file is for rediss:// (TLS) URLs";
        return false;
    }
    return true;
}

} // namespace

std::string redis_endpoint::where() const {
    const bool v6 = host.find(':') != std::string::npos;
    return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

std::optional<redis_url> redis_url::parse(std::string_view url, std::string& error) {
    redis_url out;
    const auto sep = url.find("://");
    const std::string_view scheme = sep == std::string_view::npos ? "" : url.substr(0, sep);
    if (scheme == "redis" || scheme == "rediss") {
        out.mode = redis_mode::single;
    } else if (scheme == "redis+sentinel" || scheme == "rediss+sentinel") {
        out.mode = redis_mode::sentinel;
    } else if (scheme == "redis+cluster" || scheme == "rediss+cluster") {
        out.mode = redis_mode::cluster;
    } else {
        error = "expected a redis://, rediss://, redis+sentinel:// or redis+cluster:// URL";
        return std::nullopt;
    }
    out.tls = scheme.starts_with("rediss");
    std::string_view rest = url.substr(sep + 3);
    if (const auto q = rest.find('?'); q != std::string_view::npos) {
        if (!parse_params(rest.substr(q + 1), out, error)) {
            return std::nullopt;
        }
        rest = rest.substr(0, q);
    } else if (!parse_params({}, out, error)) {
        return std::nullopt;
    }
    std::string_view path;
    if (const auto slash = rest.find('/'); slash != std::string_view::npos) {
        path = rest.substr(slash + 1);
        rest = rest.substr(0, slash);
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
    // One address, or (Sentinel, Cluster) several separated by commas.
    if (out.mode == redis_mode::single && rest.find(',') != std::string_view::npos) {
        error = "several servers need redis+sentinel:// or redis+cluster://";
        return std::nullopt;
    }
    for (;;) {
        const auto comma = out.mode == redis_mode::single ? std::string_view::npos : rest.find(',');
        auto ep = parse_endpoint(rest.substr(0, comma), error);
        if (!ep) {
            return std::nullopt;
        }
        out.nodes.push_back(std::move(*ep));
        if (comma == std::string_view::npos) {
            break;
        }
        rest = rest.substr(comma + 1);
    }
    if (out.mode == redis_mode::sentinel) {
        const auto slash = path.find('/');
        out.primary_name = wire::percent_decode(path.substr(0, slash), false);
        if (out.primary_name.empty()) {
            error = "a redis+sentinel:// URL names the primary after the Sentinels: "
                    "redis+sentinel://host:26379/mymaster[/db]";
            return std::nullopt;
        }
        if (slash != std::string_view::npos && !parse_db(path.substr(slash + 1), out.db, error)) {
            return std::nullopt;
        }
    } else if (out.mode == redis_mode::cluster) {
        if (!path.empty()) {
            error = "a Redis Cluster has only database 0: no '/db' in a redis+cluster:// URL";
            return std::nullopt;
        }
    } else if (!parse_db(path, out.db, error)) {
        return std::nullopt;
    }
    out.host = out.nodes.front().host;
    out.port = out.nodes.front().port;
    return out;
}

std::string redis_url::where() const {
    std::string list;
    for (const auto& n : nodes) {
        if (!list.empty()) {
            list += ',';
        }
        list += n.where();
    }
    switch (mode) {
    case redis_mode::sentinel:
        return "primary \"" + primary_name + "\" of the Sentinels at " + list;
    case redis_mode::cluster: return "the cluster at " + list;
    case redis_mode::single: break;
    }
    return list;
}

} // namespace michi::redis
