#include "michi/obs/log.hpp"

#include <nlohmann/json.hpp>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <cstdio>

namespace michi::obs {
namespace {

std::atomic<bool> json_format{false};
std::atomic<bool> access_enabled{true}; // the access logger's level lets info through

// Formats every record as one JSON object per line, message escaped.
class json_formatter final : public spdlog::formatter {
public:
    void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
        const auto t = std::chrono::system_clock::to_time_t(msg.time);
        const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                            msg.time.time_since_epoch()).count() % 1000;
        std::tm tm{};
        gmtime_r(&t, &tm);
        char stamp[96];
        std::snprintf(stamp, sizeof stamp, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                      tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                      tm.tm_sec, static_cast<int>(ms));
        const std::string_view payload(msg.payload.data(), msg.payload.size());
        std::string line;
        if (msg.logger_name == "access") {
            // Access lines arrive as a JSON object already; add time and level.
            line = std::string(R"({"time":")") + stamp + R"(","level":"info",)" +
                   std::string(payload.substr(1));
        } else {
            nlohmann::json j = {{"time", stamp},
                                {"level", spdlog::level::to_string_view(msg.level).data()},
                                {"msg", std::string(payload)}};
            line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
        }
        dest.append(line.data(), line.data() + line.size());
        dest.push_back('\n');
    }
    std::unique_ptr<formatter> clone() const override {
        return std::make_unique<json_formatter>();
    }
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
        sink->set_formatter(std::make_unique<spdlog::pattern_formatter>(
            "%Y-%m-%dT%H:%M:%S.%eZ %l %n: %v", spdlog::pattern_time_type::utc));
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
                            {"request_id", e.request_id},
                            {"method", e.method},
                            {"path", e.path},
                            {"key", e.key_id},
                            {"class", e.key_class},
                            {"route", e.route},
                            {"model", e.model},
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
    auto dash = [](const std::string& s) -> const std::string& {
        static const std::string d = "-";
        return s.empty() ? d : s;
    };
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
                 e.request_id, e.method, e.path, dash(e.key_id), dash(e.key_class), dash(e.route),
                 dash(e.model), e.status, e.attempts, e.stream ? 1 : 0, fixed(e.latency_ms, 2),
                 fixed(e.ttfb_ms, 2), e.tokens_in, e.tokens_out, cache, fixed(e.cost_usd, 9),
                 dash(e.error_code));
}

} // namespace michi::obs
