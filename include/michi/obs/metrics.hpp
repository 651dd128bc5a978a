#pragma once
// Prometheus metrics: per-thread shards updated on the hot path, merged when /metrics is scraped.

#include "michi/obs/log.hpp"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace michi::obs {

// The gateway's counters and histograms; every method is safe to call from any thread.
class metrics {
public:
    // The Content-Type of render()'s output.
    static constexpr std::string_view content_type = "text/plain; version=0.0.4; charset=utf-8";
    // Distinct (key_class,model,status) series kept; beyond, new ones count under model="other".
    static constexpr std::size_t max_request_series = 10000;
    // Distinct spend keys kept; beyond, new ones count under key="other".
    static constexpr std::size_t max_spend_keys = 10000;
    // Distinct providers kept in michi_upstream_attempts_total; beyond, provider="other".
    static constexpr std::size_t max_providers = 1000;
    // Distinct guards kept in michi_rate_limited_total; beyond, guard="other".
    static constexpr std::size_t max_guards = 100;

    metrics();
    ~metrics();
    metrics(const metrics&) = delete;
    metrics& operator=(const metrics&) = delete;

    // Which model names michi_requests_total labels a series with: a name the filter does not
    // know (a client's own, such as any echo/<name>) counts under model="other", so the
    // exposition stays bounded whatever names clients send. Unset, every name is kept (up
    // to max_request_series). Called under a lock, only for a series a thread has not
    // counted before.
    void set_model_filter(std::function<bool(std::string_view)> known);

    // One finished request (called once per request from the worker threads).
    void on_request(const access_entry& e);
    // One upstream attempt; outcome is one of "ok", "http_4xx", "http_429", "http_5xx",
    // "connect_error", "timeout", "stream_error", "translate_error".
    void on_attempt(std::string_view provider, std::string_view outcome);
    // The router moved on to the next target.
    void on_fallback();
    // A guard refusal: "budget", "rpm", "tpm", "loop", "auth", "model_not_allowed".
    void on_rate_limited(std::string_view guard);

    // Prometheus text exposition format 0.0.4, with HELP and TYPE lines.
    std::string render(std::int64_t inflight) const;

private:
    struct shard;
    struct impl;

    shard& local_shard();

    std::unique_ptr<impl> impl_;
};

} // namespace michi::obs
