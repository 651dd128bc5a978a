// Price tables: lookup by name, reading a price file from disk, the shipped table.

#include "michi/config/price_table.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iterator>
#include <utility>

namespace michi::config {
namespace {

// "YYYY-MM-DD" of a Unix time, in UTC.
std::string utc_date(std::time_t t) {
    std::tm tm{};
    if (::gmtime_r(&t, &tm) == nullptr) {
        return {};
    }
    char buf[16];
    const auto n = std::strftime(buf, sizeof buf, "%Y-%m-%d", &tm);
    return std::string(buf, n);
}

std::string today_utc() { return utc_date(std::time(nullptr)); }

} // namespace

price_table::price_table(price_source source, price_format format, std::string path,
                         std::vector<price_entry> entries)
    : source_(source), format_(format), path_(std::move(path)), entries_(std::move(entries)) {
    by_name_.reserve(entries_.size());
    for (std::size_t i = 0; i < entries_.size(); ++i) {
        by_name_.insert_or_assign(entries_[i].name, i); // a name given twice: the last wins
        if (entries_[i].as_of > newest_as_of_) {
            newest_as_of_ = entries_[i].as_of;
        }
    }
}

const price_entry* price_table::find_exact(std::string_view name) const {
    const auto it = by_name_.find(std::string(name));
    return it == by_name_.end() ? nullptr : &entries_[it->second];
}

const price_entry* price_table::find(std::string_view provider, std::string_view type_name,
                                     std::string_view model) const {
    if (format_ == price_format::litellm) {
        std::string key;
        for (const std::string_view prefix : {provider, type_name}) {
            if (prefix.empty()) {
                continue;
            }
            key.assign(prefix).append("/").append(model);
            if (const price_entry* e = find_exact(key)) {
                return e;
            }
        }
    }
    return find_exact(model);
}

std::string_view litellm_provider_name(provider_type t) {
    switch (t) {
    case provider_type::openai: return "openai";
    case provider_type::anthropic: return "anthropic";
    case provider_type::gemini: return "gemini";
    case provider_type::azure: return "azure";
    case provider_type::echo: break;
    }
    return {};
}

price_load_result parse_price_file(std::string_view text, const std::string& name,
                                   price_source source, const std::string& litellm_as_of) {
    const auto first = text.find_first_not_of(" \t\r\n");
    if (first != std::string_view::npos && text[first] == '{') {
        return parse_litellm_prices(text, name, source, litellm_as_of);
    }
    return parse_michi_prices(text, name, source);
}

price_load_result load_price_file(const std::string& path) {
    price_load_result out;
    const auto fail = [&](const std::string& why) {
        out.errors.push_back(path + ": cannot read the price file: " + why);
        return out;
    };
    try {
        struct stat st {};
        if (::stat(path.c_str(), &st) != 0) {
            return fail(std::strerror(errno));
        }
        if (!S_ISREG(st.st_mode)) {
            return fail("not a regular file");
        }
        if (static_cast<std::uint64_t>(st.st_size) > max_price_file_bytes) {
            return fail("larger than " + std::to_string(max_price_file_bytes >> 20) + " MiB");
        }
        std::ifstream in(path, std::ios::binary);
        if (!in) {
            return fail(std::strerror(errno));
        }
        std::string text;
        text.reserve(static_cast<std::size_t>(st.st_size));
        // Read at most one byte past the bound: a file that grew since stat() is refused too.
        std::istreambuf_iterator<char> it(in);
        const std::istreambuf_iterator<char> end;
        for (; it != end && text.size() <= max_price_file_bytes; ++it) {
            text.push_back(*it);
        }
        if (in.bad()) {
            return fail(std::strerror(errno));
        }
        if (text.size() > max_price_file_bytes) {
            return fail("larger than " + std::to_string(max_price_file_bytes >> 20) + " MiB");
        }
        // LiteLLM's file carries no dates: its entries were true when the file was written.
        const std::string as_of = utc_date(st.st_mtim.tv_sec);
        return parse_price_file(text, path, price_source::file,
                                as_of.empty() ? today_utc() : as_of);
    } catch (const std::exception& e) {
        out = {};
        return fail(e.what());
    }
}

namespace {

struct shipped {
    price_table table;
    std::vector<std::string> errors;
};

const shipped& shipped_once() {
    static const shipped s = [] {
        auto r = parse_michi_prices(shipped_prices_text(), "config/prices.yaml (built in)",
                                    price_source::table);
        if (!r.table) {
            return shipped{price_table(price_source::table, price_format::michi, {}, {}),
                           std::move(r.errors)};
        }
        return shipped{*r.table, {}};
    }();
    return s;
}

} // namespace

const price_table& shipped_price_table() { return shipped_once().table; }
const std::vector<std::string>& shipped_price_errors() { return shipped_once().errors; }

} // namespace michi::config
