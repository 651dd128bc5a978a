#include "michi/obs/log.hpp"

#include "michi/core/safe_text.hpp"

#include <nlohmann/json.hpp>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <cstdio>

namespace michi::obs {
namespace {

std::atomic<bool> json_format{false};

// The longest message a log line carries: a message quoting something from outside (an
// exception's text, a name read from Redis) cannot make a huge line.
constexpr std::size_t max_message = 4096;

// A message as it goes into a text line: control characters escaped (\n, \xNN: a line
// break in a message never starts a line of its own), invalid UTF-8 bytes as \xNN, and cut
// at max_message. Quotes and backslashes stay: the messages are the gateway's own sentences.
void append_message(std::string_view payload, spdlog::memory_buf_t& dest) {
    bool plain = payload.size() <= max_message;
    for (std::size_t i = 0; plain && i < payload.size(); ++i) {
        const auto c = static_cast<unsigned char>(payload[i]);
        plain = c >= 0x20 && c < 0x7F;
    }
    if (plain) {
        dest.append(payload.data(), payload.data() + payload.size());
        return;
    }
    std::string out;
    const std::string_view rest = payload;
    std::size_t from = 0;
    // Runs of quote- and backslash-free text go through escaped() whole; those two characters
    // are written as they are.
    const auto flush = [&](std::size_t to) {
        if (to > from) {
            safe_text::append_escaped(out, rest.substr(from, to - from), max_message);
        }
    };
    const std::string_view bounded = payload.substr(0, max_message);
    for (std::size_t i = 0; i < bounded.size(); ++i) {
        if (bounded[i] == '"' || bounded[i] == '\\') {
            flush(i);
            out += bounded[i];
            from = i + 1;
        }
    }
    flush(bounded.size());
    if (payload.size() > max_message) {
        out += "...[cut " + std::to_string(payload.size() - max_message) + " bytes]";
    }
    dest.append(out.data(), out.data() + out.size());
}

// The %* flag of the text pattern: the message, as append_message writes it.
class safe_message_flag final : public spdlog::custom_flag_formatter {
public:
    void format(const spdlog::details::log_msg& msg, const std::tm&,
                spdlog::memory_buf_t& dest) override {
        const std::string_view payload(msg.payload.data(), msg.payload.size());
        if (msg.logger_name == "access") {
            // (made of escaped values already: write_access_log)
            dest.append(payload.data(), payload.data() + payload.size());
            return;
        }
        append_message(payload, dest);
    }
    std::unique_ptr<custom_flag_formatter> clone() const override {
        return std::make_unique<safe_message_flag>();
    }
};

// A client-controlled value of the text access line: as it is when it is a plain token
// (no space, quote, backslash, control character or invalid UTF-8), else in double quotes
// with those escaped; "-" when empty; cut at safe_text::value_max bytes either way. A
// value can therefore never end the line or pass for another field. The quoted form is
// made in `storage`; a plain value is not copied.
std::string_view field(std::string_view v, std::string& storage) {
    if (v.empty()) {
        return "-";
    }
    if (v.size() <= safe_text::value_max && safe_text::is_plain(v)) {
        return v;
    }
    storage = "\"";
    safe_text::append_escaped(storage, v);
    storage += '"';
    return storage;
}

// A client-controlled value of the JSON access line: cut at safe_text::value_max bytes
// (invalid UTF-8 is replaced by U+FFFD when the line is serialised).
std::string cut(std::string_view v) {
    if (v.size() <= safe_text::value_max) {
        return std::string(v);
    }
    return std::string(v.substr(0, safe_text::value_max)) + "...[cut " +
           std::to_string(v.size() - safe_text::value_max) + " bytes]";
}
std::atomic<bool> access_enabled{true}; // the access logger's level lets info through

// Formats every record as one JSON object per line, message escaped.
class json_formatter final : public spdlog::formatter {
public:
    void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
        const auto t = std::chrono::system_clock::to_time_t(msg.time);
        const auto ms =
            std::chrono::duration_cast<std::chrono::milliseconds>(msg.time.time_since_epoch())
                .count() %
            1000;
        std::tm tm{};
        gmtime_r(&t, &tm);
        char stamp[96];
        std::snprintf(stamp, sizeof stamp, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                      tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                      static_cast<int>(ms));
        const std::string_view payload(msg.payload.data(), msg.payload.size());
        std::string line;
        if (msg.logger_name == "access") {
            // Access lines arrive as a JSON object already; add time and level.
            line = std::string(R"({"time":")") + stamp + R"(","level":"info",)" +
                   std::string(payload.substr(1));
        } else {
            nlohmann::json j = {{"time", stamp},
                                {"level", spdlog::level::to_string_view(msg.level).data()},
                                {"msg", std::string(payload.substr(0, max_message))}};
            line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
        }
        dest.append(line.data(), line.data() + line.size());
        dest.push_back('\n');
    }
    std::unique_ptr<formatter> clone() const override { return std::make_unique<json_formatter>(); }
};

std::string fixed(double v, int digits) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", digits, v);
    return buf;
}

} // namespace

void setup_logging(const config::log_config& cfg) {
    auto sink = std::make_shared<spdlog::sinks::stdout_sink_mt>();
    auto main_logger = std::make_shared<spdlog::logger>("michi", sink);
    auto access_logger = std::make_shared<spdlog::logger>("access", sink);
    json_format = cfg.format == "json";
    if (json_format) {
        sink->set_formatter(std::make_unique<json_formatter>());
    } else {
        auto text = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
        text->add_flag<safe_message_flag>('*').set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %l %n: %*");
        sink->set_formatter(std::move(text));
    }
    const auto level = spdlog::level::from_str(cfg.level);
    main_logger->set_level(level);
    access_logger->set_level(level);
    access_enabled = access_logger->should_log(spdlog::level::info);
    main_logger->flush_on(spdlog::level::warn);
    spdlog::drop("access");
    spdlog::register_logger(access_logger);
    spdlog::set_default_logger(main_logger);
}

void write_access_log(const access_entry& e) {
    if (!access_enabled.load(std::memory_order_relaxed)) {
        return; // below the level: no registry lookup (a lock) per request
    }
    auto logger = spdlog::get("access");
    if (!logger || !logger->should_log(spdlog::level::info)) {
        return;
    }
    if (json_format) {
        nlohmann::json j = {{"msg", "access"},
                            {"request_id", cut(e.request_id)},
                            {"method", cut(e.method)},
                            {"path", cut(e.path)},
                            {"key", cut(e.key_id)},
                            {"class", e.key_class},
                            {"route", cut(e.route)},
                            {"model", cut(e.model)},
                            {"status", e.status},
                            {"attempts", e.attempts},
                            {"stream", e.stream},
                            {"latency_ms", e.latency_ms},
                            {"ttfb_ms", e.ttfb_ms},
                            {"tokens_in", e.tokens_in},
                            {"tokens_out", e.tokens_out},
                            {"tokens_cache_read", e.tokens_cache_read},
                            {"tokens_cache_write", e.tokens_cache_write},
                            {"tokens_reasoning", e.tokens_reasoning},
                            {"cost_usd", e.cost_usd},
                            {"cache_saved_usd", e.cache_saved_usd},
                            {"error", e.error_code}};
        if (!e.response_cache.empty()) {
            j["response_cache"] = e.response_cache;
            j["response_cache_saved_usd"] = e.response_cache_saved_usd;
        }
        logger->info(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
        return;
    }
    std::string q[8]; // quoted forms of the fields that need them
    // Cache and reasoning fields only when there are some: most lines stay as short as before.
    std::string cache;
    if (e.tokens_cache_read != 0 || e.tokens_cache_write != 0 || e.tokens_reasoning != 0) {
        cache = fmt::format(" tokens_cache_read={} tokens_cache_write={} tokens_reasoning={} "
                            "cache_saved_usd={}",
                            e.tokens_cache_read, e.tokens_cache_write, e.tokens_reasoning,
                            fixed(e.cache_saved_usd, 9));
    }
    if (!e.response_cache.empty()) { // the response cache was asked: hit or miss
        cache += fmt::format(" response_cache={} response_cache_saved_usd={}", e.response_cache,
                             fixed(e.response_cache_saved_usd, 9));
    }
    logger->info("{} {} {} key={} class={} route={} model={} status={} attempts={} stream={} "
                 "latency_ms={} ttfb_ms={} tokens_in={} tokens_out={}{} cost_usd={} error={}",
                 field(e.request_id, q[0]), field(e.method, q[1]), field(e.path, q[2]),
                 field(e.key_id, q[3]), field(e.key_class, q[4]), field(e.route, q[5]),
                 field(e.model, q[6]), e.status, e.attempts, e.stream ? 1 : 0,
                 fixed(e.latency_ms, 2), fixed(e.ttfb_ms, 2), e.tokens_in, e.tokens_out, cache,
                 fixed(e.cost_usd, 9), field(e.error_code, q[7]));
}

} // namespace michi::obs
