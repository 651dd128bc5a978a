// Load spreading and the response cache through the real gateway: weights, least_busy and
// latency with fake upstreams of controllable delay, provider key pools on 429, and the cache's
// hits, misses, no-store, streams, expiry, and replicas sharing it through a real Redis.
#include "support/fake_upstream.hpp"
#include "support/gateway_harness.hpp"
#include "support/redis_server.hpp"
#include "support/temp_dir.hpp"

#include "michi/store/sqlite_db.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <future>

namespace michi::test {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

std::string provider_line(const std::string& name, const fake_upstream& up,
                          const std::string& key = "") {
    return "  " + name + ": { type: openai, base_url: \"" + up.base_url() + "/v1\", " +
           (key.empty() ? "api_key: \"k-" + name + "\"" : key) + " }\n";
}

std::string model_line(const std::string& name) {
    return "  " + name + "/m: { upstream: m, input_per_mtok: 1, output_per_mtok: 2 }\n";
}

std::string chat(const std::string& model, const std::string& text = "hello", bool stream = false) {
    return json{
        {"model", model}, {"stream", stream}, {"messages", {{{"role", "user"}, {"content", text}}}}}
        .dump();
}

http_reply post(gateway_harness& gw, const std::string& body,
                std::map<std::string, std::string> headers = {}) {
    headers.emplace("authorization", std::string("Bearer ") + test_secret);
    return gw.request(http::verb::post, "/v1/chat/completions", body, headers);
}

json balance(gateway_harness& gw) {
    const auto r = gw.request(http::verb::get, "/admin/balance", "", admin_auth());
    EXPECT_EQ(r.status, 200u) << r.body;
    return json::parse(r.body, nullptr, false);
}

// Three deployments of one model behind a route of the given strategy.
struct three_targets {
    fake_upstream a, b, c;
    std::string config(const std::string& route, const std::string& rest = "") {
        return basic_config(
            a.base_url(),
            {.providers = provider_line("a", a) + provider_line("b", b) + provider_line("c", c),
             .models = model_line("a") + model_line("b") + model_line("c"),
             .rest = admin_section() + "routes:\n  spread: " + route + "\n" + rest});
    }
};

TEST(BalanceTest, WeightsSpreadTheTrafficInTheirProportions) {
    three_targets t;
    gateway_harness gw(
        t.config("{ strategy: weighted, targets: [a/m, b/m, c/m], weights: [1, 2, 7] }"));
    constexpr int requests = 1000;
    for (int i = 0; i < requests; ++i) {
        const auto r = post(gw, chat("spread"));
        ASSERT_EQ(r.status, 200u) << r.body;
        if (i == 0) {
            EXPECT_EQ(r.headers.at("x-michi-route-reason").rfind("weighted: ", 0), 0u);
        }
    }
    // (±6% is more than four standard deviations of 1000 draws)
    EXPECT_NEAR(t.a.request_count() / double(requests), 0.1, 0.06);
    EXPECT_NEAR(t.b.request_count() / double(requests), 0.2, 0.06);
    EXPECT_NEAR(t.c.request_count() / double(requests), 0.7, 0.06);
}

http_reply put_route(gateway_harness& gw, const std::string& name, const json& body) {
    return gw.request(http::verb::put, "/admin/routes/" + name, body.dump(), admin_auth());
}

TEST(BalanceTest, TheAdminApiSetsARoutesStrategyAndWeights) {
    three_targets t;
    gateway_harness gw(t.config("{ targets: [a/m, b/m, c/m] }"));
    const json targets = {"a/m", "b/m", "c/m"};
    // Refused as the config loader refuses them, naming the field.
    const auto param = [&](const json& body) {
        const auto r = put_route(gw, "spread", body);
        EXPECT_EQ(r.status, 400u) << r.body;
        const auto err = json::parse(r.body, nullptr, false);
        return err.is_object() ? err["error"]["param"] : json();
    };
    EXPECT_EQ(param({{"targets", targets}, {"strategy", "weighted"}, {"weights", {1, 2}}}),
              "weights");
    EXPECT_EQ(param({{"targets", targets}, {"strategy", "weighted"}, {"weights", {1, 0, 2}}}),
              "weights");
    EXPECT_EQ(param({{"targets", targets}, {"strategy", "weighted"}, {"weights", {1, "2", 3}}}),
              "weights");
    EXPECT_EQ(param({{"targets", targets}, {"strategy", "fallback"}, {"weights", {1, 1, 1}}}),
              "weights");
    EXPECT_EQ(param({{"targets", targets}, {"strategy", "busiest"}}), "strategy");

    // Almost every request to a/m now (b and c: a chance in 500,000 each per request).
    const auto set =
        put_route(gw, "spread",
                  {{"targets", targets}, {"strategy", "weighted"}, {"weights", {1000000, 1, 1}}});
    ASSERT_EQ(set.status, 200u) << set.body;
    EXPECT_EQ(json::parse(set.body)["weights"], json({1000000, 1, 1}));
    for (int i = 0; i < 20; ++i) {
        ASSERT_EQ(post(gw, chat("spread")).status, 200u);
    }
    EXPECT_EQ(t.a.request_count(), 20u);
    const auto routes = gw.request(http::verb::get, "/admin/routes", "", admin_auth());
    const auto listed = json::parse(routes.body)["data"][0];
    EXPECT_EQ(listed["strategy"], "weighted");
    EXPECT_EQ(listed["weights"], json({1000000, 1, 1}));
    EXPECT_EQ(balance(gw)["routes"][0]["strategy"], "weighted");

    // Another strategy leaves the weights behind.
    const auto busy = put_route(gw, "spread", {{"targets", targets}, {"strategy", "least_busy"}});
    ASSERT_EQ(busy.status, 200u) << busy.body;
    EXPECT_EQ(json::parse(busy.body)["strategy"], "least_busy");
    EXPECT_FALSE(json::parse(busy.body).contains("weights"));
}

TEST(BalanceTest, AFailedTargetFallsBackToAnotherOfTheRoute) {
    three_targets t;
    t.c.set_handler([](const recorded_request&) { return json_response(503, "{}"); });
    gateway_harness gw(
        t.config("{ strategy: weighted, targets: [a/m, b/m, c/m], weights: [1, 1, 1000] }",
                 "cooldown_failures: 100\n"));
    for (int i = 0; i < 20; ++i) {
        const auto r = post(gw, chat("spread"));
        ASSERT_EQ(r.status, 200u) << r.body;
    }
    EXPECT_GE(t.c.request_count(), 15u); // tried first nearly always, then the next
    EXPECT_EQ(t.a.request_count() + t.b.request_count(), 20u);
}

TEST(BalanceTest, LeastBusyAvoidsATargetWithARequestInFlightAndComesBack) {
    three_targets t;
    std::atomic<bool> slow{true};
    t.a.set_handler([&](const recorded_request& req) {
        auto r = default_chat_completion(req);
        if (slow) {
            r.head_delay = 3s;
        }
        return r;
    });
    gateway_harness gw(t.config("{ strategy: least_busy, targets: [a/m, b/m] }"));
    // Until one request sits at the slow target (ties are broken at random).
    std::future<http_reply> stuck;
    for (int i = 0; i < 30 && t.a.request_count() == 0; ++i) {
        const auto seen = t.b.request_count();
        auto f = std::async(std::launch::async, [&] { return post(gw, chat("spread")); });
        ASSERT_TRUE(
            t.a.wait_until([&] { return t.a.request_count() > 0 || t.b.request_count() > seen; }));
        if (t.a.request_count() > 0) {
            stuck = std::move(f);
        } else {
            EXPECT_EQ(f.get().status, 200u);
        }
    }
    ASSERT_EQ(t.a.request_count(), 1u);
    const auto before_b = t.b.request_count();
    for (int i = 0; i < 10; ++i) {
        const auto r = post(gw, chat("spread"));
        EXPECT_EQ(r.headers.at("x-michi-model"), "b/m");
        EXPECT_EQ(r.headers.at("x-michi-route-reason"), "least_busy: b/m (0 in flight)");
    }
    EXPECT_EQ(t.b.request_count(), before_b + 10);
    const auto view = balance(gw);
    EXPECT_EQ(view["routes"][0]["targets"][0]["in_flight"], 1) << view.dump();
    slow = false;
    EXPECT_EQ(stuck.get().status, 200u);
    for (int i = 0; i < 40; ++i) {
        ASSERT_EQ(post(gw, chat("spread")).status, 200u);
    }
    EXPECT_GE(t.a.request_count(), 5u); // back among the choices
}

TEST(BalanceTest, LatencyPrefersTheFastestAndSeesARecoveredTargetAgain) {
    three_targets t;
    std::atomic<bool> slow{true};
    t.a.set_handler([&](const recorded_request& req) {
        auto r = default_chat_completion(req);
        if (slow) {
            r.head_delay = 150ms;
        }
        return r;
    });
    gateway_harness gw(t.config("{ strategy: latency, targets: [a/m, b/m] }"));
    for (int i = 0; i < 60; ++i) {
        ASSERT_EQ(post(gw, chat("spread")).status, 200u);
    }
    // Once each to measure them, then the slow one only when exploring (5%).
    EXPECT_LE(t.a.request_count(), 10u);
    const auto view = balance(gw);
    const auto& targets = view["routes"][0]["targets"];
    EXPECT_GT(targets[0]["ttfb_ms"].get<double>(), targets[1]["ttfb_ms"].get<double>());
    slow = false;
    const auto seen = t.a.request_count();
    bool back = false;
    for (int i = 0; i < 3000 && !back; ++i) {
        const auto r = post(gw, chat("spread"));
        ASSERT_EQ(r.status, 200u);
        back = t.a.request_count() >= seen + 20;
    }
    EXPECT_TRUE(back) << "the recovered target was not chosen again";
}

TEST(BalanceTest, A429OnOneProviderKeyMovesTheTrafficToTheOtherKey) {
    fake_upstream up;
    std::atomic<bool> limited{true};
    up.set_handler([&](const recorded_request& req) {
        if (req.headers.at("authorization") == "Bearer sk-one" && limited) {
            auto r = json_response(429, R"({"error":{"message":"slow down"}})");
            r.headers.emplace_back("retry-after", "1");
            return r;
        }
        return default_chat_completion(req);
    });
    gateway_harness gw(basic_config(
        up.base_url(), {.providers = provider_line("pool", up, R"(api_keys: ["sk-one", "sk-two"])"),
                        .models = model_line("pool"),
                        .rest = admin_section()}));
    std::map<std::string, int> keys;
    for (int i = 0; i < 8; ++i) {
        const auto r = post(gw, chat("pool/m"));
        ASSERT_EQ(r.status, 200u) << r.body;
    }
    for (const auto& req : up.requests()) {
        ++keys[req.headers.at("authorization")];
    }
    EXPECT_EQ(keys["Bearer sk-one"], 1); // once, then cooling
    EXPECT_EQ(keys["Bearer sk-two"], 8);
    const auto view = balance(gw);
    ASSERT_EQ(view["providers"].size(), 1u) << view.dump();
    const auto& pool = view["providers"][0]["keys"];
    EXPECT_GT(pool[0]["cooling_ms"].get<int>(), 0);
    EXPECT_EQ(pool[0]["digest"].get<std::string>().size(), 8u);
    EXPECT_EQ(view.dump().find("sk-one"), std::string::npos);
    // Its cool-down ends on time (retry-after: 1): the key takes requests again.
    limited = false;
    EXPECT_TRUE(eventually(
        [&] {
            post(gw, chat("pool/m"));
            return up.requests().back().headers.at("authorization") == "Bearer sk-one";
        },
        5s));
}

// --- the response cache ------------------------------------------------------------------

struct cached_route {
    fake_upstream up;
    std::string config(const std::string& cache = "{ ttl: 10m }", const std::string& store = "") {
        return basic_config(
            up.base_url(),
            {.rest = admin_section() +
                     "routes:\n  cached: { targets: [fake/gpt-test], cache: " + cache + " }\n",
             .store = store});
    }
};

TEST(ResponseCacheTest, TheSameRequestIsAnsweredOnceAndOthersMiss) {
    cached_route t;
    t.up.set_handler(usage_echoing);
    gateway_harness gw(t.config());
    const auto first = post(gw, chat("cached"));
    ASSERT_EQ(first.status, 200u) << first.body;
    EXPECT_EQ(first.headers.at("x-michi-cache"), "miss");
    // The same question, spaced and ordered otherwise: a hit, charged nothing.
    const auto same = post(gw, R"({ "messages": [{"content":"hello","role":"user"}],
                                    "stream": false, "model": "cached" })");
    ASSERT_EQ(same.status, 200u);
    EXPECT_EQ(same.headers.at("x-michi-cache"), "hit");
    EXPECT_EQ(same.body, first.body);
    EXPECT_EQ(same.headers.at("x-michi-model"), "fake/gpt-test");
    EXPECT_EQ(same.headers.at("x-michi-cost-usd"), "0");
    EXPECT_EQ(t.up.request_count(), 1u);

    EXPECT_EQ(post(gw, chat("cached", "another")).headers.at("x-michi-cache"), "miss");
    EXPECT_EQ(t.up.request_count(), 2u);

    const auto view = balance(gw)["cache"];
    EXPECT_EQ(view["hits"], 1);
    EXPECT_EQ(view["misses"], 2);
    EXPECT_GT(view["saved_usd"].get<double>(), 0);
    const auto metrics = gw.request(http::verb::get, "/metrics", "", {}).body;
    EXPECT_NE(metrics.find("michi_cache_requests_total{result=\"hit\"} 1"), std::string::npos);
    EXPECT_NE(metrics.find("michi_cache_saved_usd_total"), std::string::npos);
}

TEST(ResponseCacheTest, AHitCountsAgainstTheKeysRpmAndHoldsNoTokens) {
    fake_upstream up;
    up.set_handler(usage_echoing);
    gateway_harness gw(
        basic_config(up.base_url(), {.keys = key_entry("limited", "developer", limited,
                                                       "    rpm: 3\n    tpm: 1000000\n"
                                                       "    cache: { ttl: 10m }\n"),
                                     .rest = admin_section()}));
    const auto body = priced_chat(10);
    const auto miss = gw.chat(body, limited);
    ASSERT_EQ(miss.status, 200u) << miss.body;
    EXPECT_EQ(miss.headers.at("x-michi-cache"), "miss");
    EXPECT_EQ(miss.headers.at("x-ratelimit-remaining-requests"), "2");
    // Hits are requests of the key (its RPM), with the same rate headers as any request; they
    // use no tokens: the second hit sees as many tokens left as the first.
    const auto hit = gw.chat(body, limited);
    ASSERT_EQ(hit.status, 200u) << hit.body;
    EXPECT_EQ(hit.headers.at("x-michi-cache"), "hit");
    EXPECT_EQ(hit.headers.at("x-ratelimit-remaining-requests"), "1");
    EXPECT_EQ(hit.headers.at("x-ratelimit-limit-tokens"), "1000000");
    const auto again = gw.chat(body, limited);
    ASSERT_EQ(again.status, 200u) << again.body;
    EXPECT_EQ(again.headers.at("x-michi-cache"), "hit");
    EXPECT_EQ(again.headers.at("x-ratelimit-remaining-requests"), "0");
    EXPECT_EQ(again.headers.at("x-ratelimit-remaining-tokens"),
              hit.headers.at("x-ratelimit-remaining-tokens"));
    EXPECT_EQ(again.body, miss.body);
    // The fourth is refused by the RPM limit before the cache answers: no hit is counted.
    const auto refused = gw.chat(body, limited);
    EXPECT_EQ(refused.status, 429u);
    EXPECT_FALSE(refused.headers.contains("x-michi-cache"));
    EXPECT_EQ(up.request_count(), 1u);
    EXPECT_EQ(balance(gw)["cache"]["hits"], 2);
    EXPECT_EQ(balance(gw)["cache"]["misses"], 1);
}

TEST(ResponseCacheTest, TheClientsCacheControlAndTemperatureAreHonoured) {
    cached_route t;
    gateway_harness gw(t.config());
    ASSERT_EQ(post(gw, chat("cached")).status, 200u);
    // no-store: not looked up, not kept.
    const auto bypass = post(gw, chat("cached"), {{"cache-control", "no-store"}});
    EXPECT_EQ(bypass.headers.count("x-michi-cache"), 0u);
    EXPECT_EQ(t.up.request_count(), 2u);
    // no-cache: asked upstream again, and the fresh answer kept.
    const auto fresh = post(gw, chat("cached"), {{"cache-control", "max-age=0, No-Cache"}});
    EXPECT_EQ(fresh.headers.at("x-michi-cache"), "miss");
    EXPECT_EQ(t.up.request_count(), 3u);
    EXPECT_EQ(post(gw, chat("cached")).headers.at("x-michi-cache"), "hit");
    // temperature > 0: not cached unless the route says so.
    auto sampled = json::parse(chat("cached", "poem"));
    sampled["temperature"] = 0.8;
    for (int i = 0; i < 2; ++i) {
        EXPECT_EQ(post(gw, sampled.dump()).headers.count("x-michi-cache"), 0u);
    }
    EXPECT_EQ(t.up.request_count(), 5u);

    cached_route n;
    gateway_harness nd(n.config("{ ttl: 10m, nondeterministic: true }"));
    post(nd, sampled.dump());
    EXPECT_EQ(post(nd, sampled.dump()).headers.at("x-michi-cache"), "hit");
    EXPECT_EQ(n.up.request_count(), 1u);
}

TEST(ResponseCacheTest, AnAnswerExpiresAfterItsTtlAndFailuresAreNotKept) {
    cached_route t;
    std::atomic<std::int64_t> now_s{1'800'000'000};
    const auto clock = [&] {
        return std::chrono::system_clock::time_point(std::chrono::seconds(now_s.load()));
    };
    std::atomic<bool> failing{true};
    t.up.set_handler([&](const recorded_request& req) {
        return failing ? json_response(400, R"({"error":{"message":"no"}})")
                       : default_chat_completion(req);
    });
    gateway_harness gw(t.config("{ ttl: 30s }"), clock);
    EXPECT_EQ(post(gw, chat("cached")).status, 400u);
    EXPECT_EQ(post(gw, chat("cached")).status, 400u); // an error is not kept
    EXPECT_EQ(t.up.request_count(), 2u);
    failing = false;
    post(gw, chat("cached"));
    now_s += 29;
    EXPECT_EQ(post(gw, chat("cached")).headers.at("x-michi-cache"), "hit");
    now_s += 1;
    EXPECT_EQ(post(gw, chat("cached")).headers.at("x-michi-cache"), "miss");
    EXPECT_EQ(t.up.request_count(), 4u);
}

TEST(ResponseCacheTest, AStreamIsReplayedByteForByteAndABrokenOneIsNotKept) {
    cached_route t;
    const std::vector<std::string> events = {
        R"({"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"Hel"}}]})",
        R"({"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"lo"},"finish_reason":"stop"}]})",
        R"({"id":"c1","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}})",
        "[DONE]"};
    std::atomic<bool> cut{true};
    t.up.set_handler([&](const recorded_request&) {
        auto r = sse_response(events);
        if (cut) {
            r.chunks.resize(1);
            r.cut_after_chunks = true;
        }
        return r;
    });
    gateway_harness gw(t.config());
    const auto broken = post(gw, chat("cached", "hello", true));
    EXPECT_EQ(broken.headers.at("x-michi-cache"), "miss");
    cut = false;
    const auto first = post(gw, chat("cached", "hello", true));
    EXPECT_EQ(first.headers.at("x-michi-cache"), "miss");
    EXPECT_EQ(t.up.request_count(), 2u);
    const auto replayed = post(gw, chat("cached", "hello", true));
    ASSERT_EQ(replayed.status, 200u);
    EXPECT_EQ(replayed.headers.at("x-michi-cache"), "hit");
    EXPECT_EQ(replayed.headers.at("content-type"), "text/event-stream");
    EXPECT_EQ(replayed.body, first.body);
    EXPECT_NE(first.body.find("data: [DONE]"), std::string::npos);
    EXPECT_EQ(t.up.request_count(), 2u);
    // The same question not streamed is another answer.
    EXPECT_EQ(post(gw, chat("cached", "hello", false)).headers.at("x-michi-cache"), "miss");
}

TEST(ResponseCacheTest, TheSameBytesFromTwoKeysOfPerKeyCachesAreKeptApart) {
    fake_upstream up;
    up.set_handler(usage_echoing);
    const std::string other = "mk-dev-OtherOtherOtherOtherOtherOtherOther1";
    const auto cached = "    cache: { ttl: 10m, per_key: true }\n";
    // (the test key "tester" is the harness's; these two keep answers of their own)
    gateway_harness gw(
        basic_config(up.base_url(), {.keys = key_entry("mine", "developer", limited, cached) +
                                             key_entry("theirs", "developer", other, cached)}));
    const auto ask = [&](const std::string& secret) {
        return gw.chat(chat("fake/gpt-test"), secret).headers["x-michi-cache"];
    };
    EXPECT_EQ(ask(limited), "miss");
    EXPECT_EQ(ask(limited), "hit");
    EXPECT_EQ(ask(other), "miss"); // the same bytes, another key's cache
    EXPECT_EQ(ask(other), "hit");
    EXPECT_EQ(ask(test_secret), ""); // a key without a cache
    EXPECT_EQ(up.request_count(), 3u);
}

TEST(ResponseCacheTest, HitsAreInTheRequestLogOfAnOlderFileAndTheUsageView) {
    // A request log from before the response cache's columns, with one row.
    temp_dir dir;
    const auto path = dir.file("michi.db");
    {
        auto db = store::sqlite::open(path, "old log");
        ASSERT_EQ(store::sqlite::exec(db.get(), R"sql(
            CREATE TABLE requests (id TEXT, ts_ms INTEGER, key_id TEXT, key_class TEXT,
                route TEXT, model TEXT, status INTEGER, attempts INTEGER, fallbacks INTEGER,
                latency_ms REAL, ttfb_ms REAL, tokens_in INTEGER, tokens_out INTEGER,
                cost_usd REAL, error TEXT);
            INSERT INTO requests VALUES ('old', 1700000000000, 'tester', 'developer', 'cached',
                'fake/gpt-test', 200, 1, 0, 5, 4, 10, 10, 0.001, NULL);)sql"),
                  "");
    }
    cached_route t;
    t.up.set_handler(usage_echoing);
    auto parts = config_parts{.rest = admin_section() +
                                      "routes:\n  cached: { targets: [fake/gpt-test], cache: "
                                      "{ ttl: 10m } }\n",
                              .sqlite = path};
    gateway_harness gw(basic_config(t.up.base_url(), parts));
    ASSERT_EQ(post(gw, chat("cached")).headers.at("x-michi-cache"), "miss");
    ASSERT_EQ(post(gw, chat("cached")).headers.at("x-michi-cache"), "hit");
    ASSERT_EQ(post(gw, chat("cached")).headers.at("x-michi-cache"), "hit");

    // (a request's row is added once its answer went out)
    http_reply r;
    json row;
    ASSERT_TRUE(eventually([&] {
        r = gw.request(http::verb::get, "/admin/usage?group_by=key", "", admin_auth());
        row = json::parse(r.body, nullptr, false)["data"][0];
        return row["requests"] == 4; // the old row, the miss and two hits
    })) << r.body;
    EXPECT_EQ(row["response_cache_hits"], 2) << r.body;
    const double saved = row["response_cache_saved_usd"].get<double>();
    EXPECT_GT(saved, 0) << r.body;
    // Each hit saved what the miss cost.
    const auto by_day = json::parse(
        gw.request(http::verb::get, "/admin/usage?group_by=day", "", admin_auth()).body)["data"];
    double miss_cost = 0;
    for (const auto& d : by_day) {
        if (d["response_cache_hits"] == 2) {
            miss_cost = d["cost_usd"].get<double>();
        }
    }
    EXPECT_NEAR(saved, 2 * miss_cost, 1e-12) << by_day;

    // The column itself: one row per hit marked.
    auto db = store::sqlite::open(path, "log", true);
    std::string error;
    EXPECT_EQ(store::sqlite::query_text(
                  db.get(), "SELECT COUNT(*) FROM requests WHERE response_cache_hit = 1", error),
              "2");
    EXPECT_EQ(error, "");
}

TEST(ResponseCacheTest, TwoReplicasShareAnswersThroughRedis) {
    redis_server redis;
    cached_route t;
    const auto cfg = t.config("{ ttl: 10m }", ", redis: \"" + redis.url() + "\"");
    gateway_harness a(cfg);
    gateway_harness b(cfg);
    const auto first = post(a, chat("cached"));
    ASSERT_EQ(first.headers.at("x-michi-cache"), "miss");
    // Written to Redis in the background after the answer went out.
    ASSERT_TRUE(eventually([&] {
        return redis.cli({"KEYS", "michi:cache:*"}).find("michi:cache:") != std::string::npos;
    }));
    const auto shared = post(b, chat("cached"));
    EXPECT_EQ(shared.headers.at("x-michi-cache"), "hit");
    EXPECT_EQ(shared.body, first.body);
    EXPECT_EQ(t.up.request_count(), 1u);
    auto key = redis.cli({"KEYS", "michi:cache:*"});
    key = key.substr(0, key.find('\n'));
    const auto ttl = std::stoll(redis.cli({"PTTL", key}));
    EXPECT_GT(ttl, 500000);
    EXPECT_LE(ttl, 600000);
}

} // namespace
} // namespace michi::test
