#include "michi/obs/metrics.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace michi::obs {
namespace {

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
        out.push_back(line);
    }
    return out;
}

// Asserts that `text` has `line` as one whole line.
::testing::AssertionResult has_line(const std::string& text, const std::string& line) {
    const auto lines = lines_of(text);
    if (std::find(lines.begin(), lines.end(), line) != lines.end()) {
        return ::testing::AssertionSuccess();
    }
    return ::testing::AssertionFailure() << "missing line: " << line << "\nin:\n" << text;
}

std::size_t count_prefixed(const std::string& text, const std::string& prefix) {
    std::size_t n = 0;
    for (const auto& l : lines_of(text)) {
        if (l.rfind(prefix, 0) == 0) {
            ++n;
        }
    }
    return n;
}

// The michi_requests_total line for these labels and value.
std::string requests_line(const std::string& key_class, const std::string& model,
                          const std::string& status, const std::string& value) {
    return "michi_requests_total{key_class=\"" + key_class + "\",model=\"" + model +
           "\",status=\"" + status + "\"} " + value;
}

access_entry entry(std::string key_class, std::string model, unsigned status, double latency_ms,
                   double ttfb_ms = 0) {
    access_entry e;
    e.key_class = std::move(key_class);
    e.model = std::move(model);
    e.status = status;
    e.latency_ms = latency_ms;
    e.ttfb_ms = ttfb_ms;
    return e;
}

TEST(MetricsTest, EmptyRenderHasEveryFamilyWithHelpAndType) {
    metrics m;
    const auto text = m.render(0);
    for (const char* name :
         {"michi_requests_total", "michi_upstream_attempts_total", "michi_fallbacks_total",
          "michi_tokens_total", "michi_spend_usd_total", "michi_rate_limited_total"}) {
        EXPECT_TRUE(has_line(text, std::string("# TYPE ") + name + " counter"));
        EXPECT_EQ(count_prefixed(text, std::string("# HELP ") + name + " "), 1u) << name;
    }
    EXPECT_TRUE(has_line(text, "# TYPE michi_request_duration_seconds histogram"));
    EXPECT_TRUE(has_line(text, "# TYPE michi_time_to_first_byte_seconds histogram"));
    EXPECT_TRUE(has_line(text, "# TYPE michi_inflight_requests gauge"));
    EXPECT_TRUE(has_line(text, "michi_fallbacks_total 0"));
    EXPECT_TRUE(has_line(text, "michi_tokens_total{direction=\"in\"} 0"));
    EXPECT_TRUE(has_line(text, "michi_tokens_total{direction=\"out\"} 0"));
    EXPECT_TRUE(has_line(text, "michi_request_duration_seconds_bucket{le=\"+Inf\"} 0"));
    EXPECT_TRUE(has_line(text, "michi_request_duration_seconds_count 0"));
    EXPECT_TRUE(has_line(text, "michi_request_duration_seconds_sum 0"));
    EXPECT_TRUE(has_line(text, "michi_rate_limited_total{guard=\"budget\"} 0"));
    EXPECT_TRUE(has_line(text, "michi_inflight_requests 0"));
    EXPECT_EQ(count_prefixed(text, "michi_requests_total{"), 0u);
    EXPECT_EQ(count_prefixed(text, "michi_spend_usd_total{"), 0u);
    EXPECT_EQ(text.back(), '\n');
}

TEST(MetricsTest, RequestsCountedByClassModelAndStatusWithNoneForEmpty) {
    metrics m;
    m.on_request(entry("developer", "openai/gpt-4o-mini", 200, 10));
    m.on_request(entry("developer", "openai/gpt-4o-mini", 200, 10));
    m.on_request(entry("developer", "openai/gpt-4o-mini", 429, 10));
    m.on_request(entry("agent", "echo/echo-1", 200, 10));
    m.on_request(entry("", "", 401, 1));
    const auto text = m.render(3);
    EXPECT_TRUE(has_line(text, requests_line("developer", "openai/gpt-4o-mini", "200", "2")));
    EXPECT_TRUE(has_line(text, requests_line("developer", "openai/gpt-4o-mini", "429", "1")));
    EXPECT_TRUE(has_line(text, requests_line("agent", "echo/echo-1", "200", "1")));
    EXPECT_TRUE(has_line(text, requests_line("none", "none", "401", "1")));
    EXPECT_EQ(count_prefixed(text, "michi_requests_total{"), 4u);
    EXPECT_TRUE(has_line(text, "michi_inflight_requests 3"));
}

TEST(MetricsTest, AModelTheFilterDoesNotKnowCountsAsOther) {
    metrics m;
    m.set_model_filter([](std::string_view model) { return model == "openai/gpt-4o-mini"; });
    m.on_request(entry("developer", "openai/gpt-4o-mini", 200, 10));
    for (int i = 0; i < 100; ++i) {
        m.on_request(entry("developer", "echo/made-up-" + std::to_string(i), 200, 10));
    }
    m.on_request(entry("", "", 401, 1)); // none stays none
    const auto text = m.render(0);
    EXPECT_TRUE(has_line(text, requests_line("developer", "openai/gpt-4o-mini", "200", "1")));
    EXPECT_TRUE(has_line(text, requests_line("developer", "other", "200", "100")));
    EXPECT_TRUE(has_line(text, requests_line("none", "none", "401", "1")));
    EXPECT_EQ(count_prefixed(text, "michi_requests_total{"), 3u);
    EXPECT_EQ(text.find("made-up"), std::string::npos);
}

TEST(MetricsTest, ConfiguredModelsAreTheConfigsNamesNotAnEchoWildcard) {
    config::config cfg;
    cfg.providers["openai"].type = config::provider_type::openai;
    cfg.providers["echo"].type = config::provider_type::echo;
    cfg.models["echo/echo-1"].provider = "echo";
    cfg.routes["auto"].targets = {"echo/echo-1"};
    EXPECT_TRUE(config::is_configured_model(cfg, "echo/echo-1"));
    EXPECT_TRUE(config::is_configured_model(cfg, "auto"));
    EXPECT_TRUE(config::is_configured_model(cfg, "openai/gpt-4o-mini")); // built-in on a provider
    EXPECT_FALSE(config::is_configured_model(cfg, "echo/anything"));
    EXPECT_FALSE(config::is_configured_model(cfg, "openai/made-up"));
    EXPECT_FALSE(config::is_configured_model(cfg, "nope/gpt-4o-mini"));
}

TEST(MetricsTest, DurationHistogramIsCumulativeWithSumAndCount) {
    metrics m;
    m.on_request(entry("developer", "m", 200, 3));      // 0.003 s
    m.on_request(entry("developer", "m", 200, 7));      // 0.007 s
    m.on_request(entry("developer", "m", 500, 300));    // 0.3 s
    m.on_request(entry("developer", "m", 200, 200000)); // 200 s: only +Inf
    m.on_request(entry("developer", "m", 200, 5));      // exactly on the 0.005 bound
    const auto text = m.render(0);
    const std::string b = "michi_request_duration_seconds_bucket{le=\"";
    EXPECT_TRUE(has_line(text, b + "0.005\"} 2"));
    EXPECT_TRUE(has_line(text, b + "0.01\"} 3"));
    EXPECT_TRUE(has_line(text, b + "0.025\"} 3"));
    EXPECT_TRUE(has_line(text, b + "0.05\"} 3"));
    EXPECT_TRUE(has_line(text, b + "0.1\"} 3"));
    EXPECT_TRUE(has_line(text, b + "0.25\"} 3"));
    EXPECT_TRUE(has_line(text, b + "0.5\"} 4"));
    EXPECT_TRUE(has_line(text, b + "1\"} 4"));
    EXPECT_TRUE(has_line(text, b + "2.5\"} 4"));
    EXPECT_TRUE(has_line(text, b + "5\"} 4"));
    EXPECT_TRUE(has_line(text, b + "10\"} 4"));
    EXPECT_TRUE(has_line(text, b + "30\"} 4"));
    EXPECT_TRUE(has_line(text, b + "60\"} 4"));
    EXPECT_TRUE(has_line(text, b + "120\"} 4"));
    EXPECT_TRUE(has_line(text, b + "+Inf\"} 5"));
    EXPECT_EQ(count_prefixed(text, b), 15u);
    EXPECT_TRUE(has_line(text, "michi_request_duration_seconds_count 5"));
    EXPECT_TRUE(has_line(text, "michi_request_duration_seconds_sum 200.315"));
}

TEST(MetricsTest, TimeToFirstByteOnlyFor2xx) {
    metrics m;
    m.on_request(entry("developer", "m", 200, 100, 40)); // 0.04 s
    m.on_request(entry("developer", "m", 204, 100, 2));  // 0.002 s
    m.on_request(entry("developer", "m", 502, 100, 90)); // not counted
    m.on_request(entry("developer", "m", 429, 100, 1));  // not counted
    const auto text = m.render(0);
    const std::string b = "michi_time_to_first_byte_seconds_bucket{le=\"";
    EXPECT_TRUE(has_line(text, b + "0.005\"} 1"));
    EXPECT_TRUE(has_line(text, b + "0.025\"} 1"));
    EXPECT_TRUE(has_line(text, b + "0.05\"} 2"));
    EXPECT_TRUE(has_line(text, b + "+Inf\"} 2"));
    EXPECT_TRUE(has_line(text, "michi_time_to_first_byte_seconds_count 2"));
    EXPECT_TRUE(has_line(text, "michi_time_to_first_byte_seconds_sum 0.042"));
    EXPECT_TRUE(has_line(text, "michi_request_duration_seconds_count 4"));
}

TEST(MetricsTest, TokensAndSpendByKeySkippingAnonymous) {
    metrics m;
    auto e = entry("developer", "openai/gpt-4o-mini", 200, 10);
    e.key_id = "alice-laptop";
    e.tokens_in = 100;
    e.tokens_out = 20;
    e.cost_usd = 0.25;
    m.on_request(e);
    e.tokens_in = 1;
    e.tokens_out = 2;
    e.cost_usd = 0.5;
    m.on_request(e);
    e.key_id = "bob";
    e.cost_usd = 0.000123456789;
    m.on_request(e);
    e.key_id.clear();
    e.cost_usd = 7;
    e.tokens_in = 1000;
    m.on_request(e);
    const auto text = m.render(0);
    EXPECT_TRUE(has_line(text, "michi_tokens_total{direction=\"in\"} 1102"));
    EXPECT_TRUE(has_line(text, "michi_tokens_total{direction=\"out\"} 26"));
    EXPECT_TRUE(has_line(text, "michi_spend_usd_total{key=\"alice-laptop\"} 0.75"));
    EXPECT_TRUE(has_line(text, "michi_spend_usd_total{key=\"bob\"} 0.000123456789"));
    EXPECT_EQ(count_prefixed(text, "michi_spend_usd_total{"), 2u);
}

// A worker compares each request's labels with the series it counted last before looking
// the series up: requests that differ from the one before in any one label, or come back
// to an earlier series, each count under their own labels.
TEST(MetricsTest, EachLabelOfTheSeriesCountedLastIsCompared) {
    metrics m;
    const std::vector<access_entry> order{
        entry("developer", "openai/gpt-4o", 200, 1), entry("developer", "openai/gpt-4o", 200, 1),
        entry("agent", "openai/gpt-4o", 200, 1),     entry("agent", "openai/gpt-4o-mini", 200, 1),
        entry("agent", "openai/gpt-4o-mini", 20, 1), entry("developer", "openai/gpt-4o", 200, 1),
    };
    for (const auto& e : order) {
        m.on_request(e);
    }
    m.on_attempt("openai", "ok");
    m.on_attempt("openai", "http_429");
    m.on_attempt("openai", "ok");
    m.on_attempt("claude", "ok");
    const auto text = m.render(0);
    EXPECT_TRUE(has_line(text, requests_line("developer", "openai/gpt-4o", "200", "3")));
    EXPECT_TRUE(has_line(text, requests_line("agent", "openai/gpt-4o", "200", "1")));
    EXPECT_TRUE(has_line(text, requests_line("agent", "openai/gpt-4o-mini", "200", "1")));
    EXPECT_TRUE(has_line(text, requests_line("agent", "openai/gpt-4o-mini", "20", "1")));
    EXPECT_EQ(count_prefixed(text, "michi_requests_total{"), 4u);
    EXPECT_TRUE(
        has_line(text, R"(michi_upstream_attempts_total{provider="openai",outcome="ok"} 2)"));
    EXPECT_TRUE(
        has_line(text, R"(michi_upstream_attempts_total{provider="openai",outcome="http_429"} 1)"));
    EXPECT_TRUE(
        has_line(text, R"(michi_upstream_attempts_total{provider="claude",outcome="ok"} 1)"));
}

TEST(MetricsTest, AttemptsFallbacksAndRateLimits) {
    metrics m;
    m.on_attempt("openai", "http_429");
    m.on_attempt("openai", "http_429");
    m.on_attempt("claude", "ok");
    m.on_fallback();
    m.on_fallback();
    m.on_rate_limited("rpm");
    m.on_rate_limited("rpm");
    m.on_rate_limited("budget");
    const auto text = m.render(0);
    EXPECT_TRUE(
        has_line(text, R"(michi_upstream_attempts_total{provider="openai",outcome="http_429"} 2)"));
    EXPECT_TRUE(
        has_line(text, R"(michi_upstream_attempts_total{provider="claude",outcome="ok"} 1)"));
    EXPECT_EQ(count_prefixed(text, "michi_upstream_attempts_total{"), 2u);
    EXPECT_TRUE(has_line(text, "michi_fallbacks_total 2"));
    EXPECT_TRUE(has_line(text, R"(michi_rate_limited_total{guard="rpm"} 2)"));
    EXPECT_TRUE(has_line(text, R"(michi_rate_limited_total{guard="budget"} 1)"));
    EXPECT_TRUE(has_line(text, R"(michi_rate_limited_total{guard="tpm"} 0)"));
    EXPECT_TRUE(has_line(text, R"(michi_rate_limited_total{guard="loop"} 0)"));
    EXPECT_TRUE(has_line(text, R"(michi_rate_limited_total{guard="auth"} 0)"));
    EXPECT_TRUE(has_line(text, R"(michi_rate_limited_total{guard="model_not_allowed"} 0)"));
}

TEST(MetricsTest, LabelValuesAreEscaped) {
    metrics m;
    auto e = entry("dev\"x", "a\"b\\c\nd", 200, 1);
    e.key_id = "k\\\"\n";
    e.cost_usd = 1;
    m.on_request(e);
    const auto text = m.render(0);
    EXPECT_TRUE(has_line(
        text, R"(michi_requests_total{key_class="dev\"x",model="a\"b\\c\nd",status="200"} 1)"));
    EXPECT_TRUE(has_line(text, R"(michi_spend_usd_total{key="k\\\"\n"} 1)"));
}

TEST(MetricsTest, MergesShardsAcrossThreadsExactly) {
    metrics m;
    constexpr int threads = 4;
    constexpr int per_thread = 10000;
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t) {
        workers.emplace_back([&m, t] {
            for (int i = 0; i < per_thread; ++i) {
                auto e = entry("application", i % 2 == 0 ? "openai/gpt-4o-mini" : "echo/echo-1",
                               200, 20, 5);
                e.key_id = "key-" + std::to_string(t);
                e.tokens_in = 3;
                e.tokens_out = 1;
                e.cost_usd = 0.5;
                m.on_request(e);
                m.on_attempt("openai", "ok");
                if (i % 10 == 0) {
                    m.on_fallback();
                }
            }
        });
    }
    for (auto& w : workers) {
        w.join();
    }
    const auto text = m.render(7);
    EXPECT_TRUE(has_line(text, requests_line("application", "openai/gpt-4o-mini", "200", "20000")));
    EXPECT_TRUE(has_line(text, requests_line("application", "echo/echo-1", "200", "20000")));
    EXPECT_TRUE(has_line(text, "michi_request_duration_seconds_count 40000"));
    EXPECT_TRUE(has_line(text, "michi_request_duration_seconds_bucket{le=\"0.01\"} 0"));
    EXPECT_TRUE(has_line(text, "michi_request_duration_seconds_bucket{le=\"0.025\"} 40000"));
    EXPECT_TRUE(has_line(text, "michi_time_to_first_byte_seconds_count 40000"));
    EXPECT_TRUE(has_line(text, "michi_tokens_total{direction=\"in\"} 120000"));
    EXPECT_TRUE(has_line(text, "michi_tokens_total{direction=\"out\"} 40000"));
    EXPECT_TRUE(
        has_line(text, R"(michi_upstream_attempts_total{provider="openai",outcome="ok"} 40000)"));
    EXPECT_TRUE(has_line(text, "michi_fallbacks_total 4000"));
    for (int t = 0; t < threads; ++t) {
        EXPECT_TRUE(
            has_line(text, "michi_spend_usd_total{key=\"key-" + std::to_string(t) + "\"} 5000"));
    }
    EXPECT_TRUE(has_line(text, "michi_inflight_requests 7"));
}

TEST(MetricsTest, RenderWhileWorkersCountIsConsistentAtTheEnd) {
    metrics m;
    std::atomic<bool> stop{false};
    std::thread scraper([&] {
        while (!stop.load()) {
            const auto text = m.render(1);
            ASSERT_FALSE(text.empty());
        }
    });
    std::vector<std::thread> workers;
    for (int t = 0; t < 2; ++t) {
        workers.emplace_back([&m] {
            for (int i = 0; i < 5000; ++i) {
                m.on_request(entry("agent", "m" + std::to_string(i % 50), 200, 1));
                m.on_rate_limited("loop");
            }
        });
    }
    for (auto& w : workers) {
        w.join();
    }
    stop.store(true);
    scraper.join();
    const auto text = m.render(0);
    EXPECT_TRUE(has_line(text, "michi_request_duration_seconds_count 10000"));
    EXPECT_TRUE(has_line(text, R"(michi_rate_limited_total{guard="loop"} 10000)"));
    EXPECT_EQ(count_prefixed(text, "michi_requests_total{"), 50u);
}

TEST(MetricsTest, InstancesInOneThreadStaySeparate) {
    metrics a;
    metrics b;
    a.on_fallback();
    b.on_fallback();
    a.on_fallback();
    EXPECT_TRUE(has_line(a.render(0), "michi_fallbacks_total 2"));
    EXPECT_TRUE(has_line(b.render(-1), "michi_fallbacks_total 1"));
    EXPECT_TRUE(has_line(b.render(-1), "michi_inflight_requests -1"));
    metrics c; // a fresh instance, possibly at a reused address, starts from zero
    EXPECT_TRUE(has_line(c.render(0), "michi_fallbacks_total 0"));
}

TEST(MetricsTest, CardinalityIsBoundedAndTheRestFoldsIntoOther) {
    metrics m;
    const std::size_t extra = 5;
    // Spread over two threads so the bound is shared, not per shard.
    auto feed = [&m](std::size_t from, std::size_t to) {
        for (std::size_t i = from; i < to; ++i) {
            auto e = entry("developer", "model-" + std::to_string(i), 200, 1);
            e.key_id = "key-" + std::to_string(i);
            e.cost_usd = 1;
            m.on_request(e);
        }
    };
    std::thread t1(feed, 0, metrics::max_request_series / 2);
    t1.join();
    std::thread t2(feed, metrics::max_request_series / 2, metrics::max_request_series + extra);
    t2.join();
    // A series admitted before the bound keeps counting under its own labels.
    feed(0, 1);
    const auto text = m.render(0);
    EXPECT_EQ(count_prefixed(text, "michi_requests_total{"), metrics::max_request_series + 1);
    EXPECT_TRUE(has_line(text, requests_line("developer", "model-0", "200", "2")));
    EXPECT_TRUE(has_line(text, requests_line("developer", "other", "200", "5")));
    EXPECT_EQ(count_prefixed(text, "michi_spend_usd_total{"), metrics::max_spend_keys + 1);
    EXPECT_TRUE(has_line(text, R"(michi_spend_usd_total{key="other"} 5)"));
    EXPECT_TRUE(has_line(text, R"(michi_spend_usd_total{key="key-0"} 2)"));
    EXPECT_TRUE(has_line(text, "michi_request_duration_seconds_count 10006"));
}

} // namespace
} // namespace michi::obs
