#include "michi/admin/admin_input.hpp"

#include "michi/core/safe_text.hpp"
#include "michi/core/url_text.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <ctime>

namespace michi::admin {

using json = nlohmann::json;

std::map<std::string, std::string> query_of(std::string_view target) {
    std::map<std::string, std::string> q;
    const auto qm = target.find('?');
    if (qm == std::string_view::npos) {
        return q;
    }
    std::string_view rest = target.substr(qm + 1);
    while (!rest.empty()) {
        const auto amp = rest.find('&');
        const auto pair = rest.substr(0, amp);
        const auto eq = pair.find('=');
        q[wire::percent_decode(pair.substr(0, eq), true)] =
            eq == std::string_view::npos ? "" : wire::percent_decode(pair.substr(eq + 1), true);
        rest = amp == std::string_view::npos ? std::string_view{} : rest.substr(amp + 1);
    }
    return q;
}

std::optional<std::int64_t> parse_time_ms(const std::string& s) {
    if (s.empty()) {
        return std::nullopt;
    }
    if (s.find_first_not_of("0123456789") == std::string::npos && s.size() <= 12) {
        return std::stoll(s) * 1000;
    }
    std::tm tm{};
    int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0;
    const int n = std::sscanf(s.c_str(), "%d-%d-%dT%d:%d:%d", &y, &mo, &d, &h, &mi, &sec);
    if (n != 3 && n != 6) {
        return std::nullopt;
    }
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    return static_cast<std::int64_t>(timegm(&tm)) * 1000;
}

std::string iso_ms(std::int64_t ms) {
    if (ms <= 0) {
        return {};
    }
    const std::time_t t = ms / 1000;
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

std::optional<gateway_error>
unknown_field(const json& body, std::initializer_list<std::string_view> allowed,
              std::initializer_list<std::pair<std::string_view, std::string_view>> refused) {
    for (const auto& [key, value] : body.items()) {
        if (std::find(allowed.begin(), allowed.end(), key) != allowed.end()) {
            continue;
        }
        for (const auto& [name, why] : refused) {
            if (key == name) {
                return errors::invalid_request(std::string(why), key);
            }
        }
        const auto shown = safe_text::printable(key, 64);
        return errors::invalid_request("Unknown field '" + shown + "'.", shown);
    }
    return std::nullopt;
}

std::optional<gateway_error> read_key_fields(const json& body, config::limits& lim,
                                             std::vector<std::string>& models) {
    if (const auto m = body.find("models"); m != body.end() && !m->is_null()) {
        if (!m->is_array()) {
            return errors::invalid_request("'models' must be an array of glob strings.", "models");
        }
        models.clear();
        for (const auto& g : *m) {
            if (!g.is_string() || g.get_ref<const std::string&>().empty()) {
                return errors::invalid_request("'models' must be an array of glob strings.",
                                               "models");
            }
            models.push_back(g.get<std::string>());
        }
    }
    for (const auto* field : {"daily_usd", "monthly_usd"}) {
        const auto v = body.find(field);
        if (v == body.end()) {
            continue;
        }
        auto& target = std::string_view(field) == "daily_usd" ? lim.daily_usd : lim.monthly_usd;
        if (v->is_null()) {
            target.reset();
        } else if (v->is_number() && std::isfinite(v->get<double>()) && v->get<double>() >= 0) {
            target = v->get<double>();
        } else {
            return errors::invalid_request(
                std::string("'") + field + "' must be a number of USD >= 0 or null.", field);
        }
    }
    for (const auto* field : {"rpm", "tpm"}) {
        const auto v = body.find(field);
        if (v == body.end()) {
            continue;
        }
        auto& target = std::string_view(field) == "rpm" ? lim.rpm : lim.tpm;
        if (v->is_null()) {
            target.reset();
        } else if (v->is_number_unsigned() && v->get<std::uint64_t>() >= 1 &&
                   v->get<std::uint64_t>() <= max_limit_value) {
            target = v->get<std::uint64_t>();
        } else {
            return errors::invalid_request(std::string("'") + field +
                                               "' must be an integer from 1 to " +
                                               std::to_string(max_limit_value) + ", or null.",
                                           field);
        }
    }
    return std::nullopt;
}

// A route name from the path of PUT /admin/routes/{name}: it is written into logs and the
// config snapshot, so it must be short and printable.
std::optional<gateway_error> read_route_balance(const json& body, config::route_config& r) {
    if (const auto s = body.find("strategy"); s != body.end()) {
        const auto strategy =
            s->is_string() ? config::parse_route_strategy(s->get<std::string>()) : std::nullopt;
        if (!strategy) {
            return errors::invalid_request(
                "'strategy' must be fallback, cheapest, weighted, least_busy or latency.",
                "strategy");
        }
        r.strategy = *strategy;
    }
    const auto w = body.find("weights");
    if (w == body.end()) {
        if (r.strategy != config::route_strategy::weighted) {
            r.weights.clear();
        }
        return std::nullopt;
    }
    if (!w->is_array() || w->empty()) {
        return errors::invalid_request("'weights' must be a non-empty array of numbers.",
                                       "weights");
    }
    r.weights.clear();
    for (const auto& x : *w) {
        if (!x.is_number()) {
            return errors::invalid_request("'weights' must hold numbers.", "weights");
        }
        r.weights.push_back(x.get<double>());
    }
    return std::nullopt;
}

gateway_error route_problem(const std::string& name, const std::vector<std::string>& problems) {
    const std::string own = "routes." + name + ".";
    const auto it = std::find_if(problems.begin(), problems.end(),
                                 [&](const std::string& p) { return p.starts_with(own); });
    const std::string& problem = it == problems.end() ? problems.front() : *it;
    return errors::invalid_request(problem,
                                   problem.starts_with(own + "weights") ? "weights" : "targets");
}

bool valid_route_name(const std::string& name) {
    return !name.empty() && name.size() <= 128 && safe_text::is_plain(name);
}

bool valid_id(const std::string& id) {
    if (id.empty() || id.size() > 64) {
        return false;
    }
    for (char c : id) {
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') {
            return false;
        }
    }
    return true;
}

std::string secret_prefix(config::key_class c) {
    switch (c) {
    case config::key_class::application: return "mk-app-";
    case config::key_class::agent: return "mk-agt-";
    case config::key_class::developer: break;
    }
    return "mk-dev-";
}

} // namespace michi::admin
