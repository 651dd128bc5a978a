// The ledger shared through Redis (store.redis): two gateways on one real Redis hold one
// budget, one RPM window and one loop guard between them, in every way of reaching it (plain,
// TLS, a primary found through Sentinel, a three-node cluster); holds of a replica that died
// lapse; Redis down refuses guarded requests with a 503 instead of letting them through.
#include "michi/guard/redis_ledger.hpp"
#include "support/fake_upstream.hpp"
#include "support/gateway_harness.hpp"
#include "support/redis_server.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <map>
#include <thread>

namespace michi::test {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

// A gateway config on the ledger at redis_url: the "limited" key with its limit lines, the
// "agent" key with a loop guard, the admin key.
std::string ledger_config(const fake_upstream& up, const std::string& redis_url,
                          const std::string& limits, const std::string& server) {
    return basic_config(
        up.base_url(),
        {.server = server,
         .keys = key_entry("limited", "developer", limited, limits) +
                 key_entry("agent", "agent", agent, "    loop_max: 2\n    loop_window: 60s\n"),
         .rest = admin_section(),
         .store = ", redis: \"" + redis_url + "\""});
}

// A real redis-server and a fake upstream for each test; config() makes a gateway config on
// the shared ledger, with the "limited" key's limit lines.
class RedisLedgerTest : public ::testing::Test {
protected:
    std::string config(const std::string& limits, const std::string& server = "") {
        return config_at(redis.url(), limits, server);
    }
    std::string config_at(const std::string& url, const std::string& limits,
                          const std::string& server = "") {
        return ledger_config(up, url, limits, server);
    }

    redis_server redis;
    fake_upstream up;
};

// One way of reaching the shared Redis, started for a test: the servers it needs and its URL.
enum class mode { plain, tls, sentinel, cluster };

std::string mode_name(const ::testing::TestParamInfo<mode>& info) {
    switch (info.param) {
    case mode::plain: return "Plain";
    case mode::tls: return "Tls";
    case mode::sentinel: return "Sentinel";
    case mode::cluster: return "Cluster";
    }
    return "?";
}

struct redis_env {
    explicit redis_env(mode m) {
        switch (m) {
        case mode::plain: plain = std::make_unique<redis_server>(); break;
        case mode::tls:
            certs = std::make_unique<scratch_dir>();
            files = make_test_certs(certs->path);
            plain = std::make_unique<redis_server>(std::vector<std::string>{}, files);
            break;
        case mode::sentinel: sentinel = std::make_unique<redis_sentinel_set>(); break;
        case mode::cluster: cluster = std::make_unique<redis_cluster>(); break;
        }
    }
    std::string url() const {
        if (sentinel) {
            return sentinel->url();
        }
        if (cluster) {
            return cluster->url();
        }
        return plain->url() + (certs ? "?ca_file=" + files.ca_file : "");
    }
    std::unique_ptr<scratch_dir> certs;
    tls_files files;
    std::unique_ptr<redis_server> plain;
    std::unique_ptr<redis_sentinel_set> sentinel;
    std::unique_ptr<redis_cluster> cluster;
};

// The two-replica tests, in every mode.
class SharedLedgerTest : public ::testing::TestWithParam<mode> {
protected:
    std::string config(const std::string& limits, const std::string& server = "") {
        return ledger_config(up, env.url(), limits, server);
    }

    redis_env env{GetParam()};
    fake_upstream up;
};

INSTANTIATE_TEST_SUITE_P(EveryMode, SharedLedgerTest,
                         ::testing::Values(mode::plain, mode::tls, mode::sentinel, mode::cluster),
                         mode_name);

json admin_key_view(gateway_harness& gw, const std::string& id) {
    const auto r = gw.request(http::verb::get, "/admin/keys/" + id, "", admin_auth());
    EXPECT_EQ(r.status, 200u) << r.body;
    return json::parse(r.body);
}

TEST_P(SharedLedgerTest, TwoReplicasShareOneDailyBudget) {
    up.set_handler(usage_echoing);
    const auto cfg = config("    daily_usd: 0.5\n");
    auto a = std::make_unique<gateway_harness>(cfg);
    gateway_harness b(cfg);
    // $0.20 each: A, B, A are admitted ($0.40 < $0.50, the last may cross); each replica alone
    // has seen at most two, so only a ledger they share refuses the fourth.
    ASSERT_EQ(a->chat(priced_chat(100000), limited).status, 200u);
    ASSERT_EQ(b.chat(priced_chat(100000), limited).status, 200u);
    ASSERT_EQ(a->chat(priced_chat(100000), limited).status, 200u);
    const auto refused = b.chat(priced_chat(10), limited);
    ASSERT_EQ(refused.status, 403u) << refused.body;
    const auto err = json::parse(refused.body)["error"];
    EXPECT_EQ(err["code"], "budget_exceeded");
    const auto msg = err["message"].get<std::string>();
    EXPECT_NE(msg.find("Daily budget of $0.50 for key \"limited\" is used up"), std::string::npos)
        << msg;
    EXPECT_NE(msg.find("T00:00:00Z"), std::string::npos) << msg;
    EXPECT_EQ(up.request_count(), 3u);
    // A clean stop of A sends its last charge; B reads all three from Redis.
    a.reset();
    const auto view = admin_key_view(b, "limited");
    EXPECT_NEAR(view["spend"]["today"].get<double>(), 3 * 0.20001, 1e-9) << view.dump();
    EXPECT_NEAR(view["spend"]["month"].get<double>(), 3 * 0.20001, 1e-9) << view.dump();
}

// The key list asks Redis for every key's figures at once; each lands on its own key.
TEST_F(RedisLedgerTest, TheKeyListShowsEachKeysFiguresFromRedis) {
    up.set_handler(usage_echoing);
    const auto cfg = config("    daily_usd: 5\n");
    gateway_harness a(cfg);
    gateway_harness b(cfg);
    ASSERT_EQ(a.chat(priced_chat(100000), limited).status, 200u);
    ASSERT_EQ(a.chat(priced_chat(100000), limited).status, 200u);
    ASSERT_EQ(a.chat(priced_chat(10)).status, 200u);
    const auto made = b.request(http::verb::post, "/admin/keys",
                                R"({"id":"zz-new","class":"developer"})", admin_auth());
    ASSERT_EQ(made.status, 201u) << made.body;
    const auto r = b.request(http::verb::get, "/admin/keys", "", admin_auth());
    ASSERT_EQ(r.status, 200u) << r.body;
    std::map<std::string, json> by_id;
    const auto list = json::parse(r.body);
    for (const auto& k : list["data"]) {
        by_id[k["id"].get<std::string>()] = k;
    }
    ASSERT_EQ(by_id.size(), 4u) << r.body; // tester, limited, agent, zz-new
    EXPECT_NEAR(by_id["limited"]["spend"]["today"].get<double>(), 2 * 0.20001, 1e-9);
    EXPECT_EQ(by_id["limited"]["live"]["rpm"], 2);
    EXPECT_GT(by_id["tester"]["spend"]["today"].get<double>(), 0.0);
    EXPECT_LT(by_id["tester"]["spend"]["today"].get<double>(), 0.2);
    EXPECT_EQ(by_id["tester"]["live"]["rpm"], 1);
    EXPECT_EQ(by_id["agent"]["live"]["rpm"], 0);
    EXPECT_EQ(by_id["zz-new"]["spend"]["today"], 0.0);
    EXPECT_EQ(by_id["zz-new"]["source"], "admin");
}

TEST_P(SharedLedgerTest, RpmWindowIsSharedWithItsHeaders) {
    const auto cfg = config("    rpm: 3\n");
    gateway_harness a(cfg);
    gateway_harness b(cfg);
    gateway_harness* order[] = {&a, &b, &a};
    for (int i = 0; i < 3; ++i) {
        const auto r = order[i]->chat(priced_chat(10), limited);
        ASSERT_EQ(r.status, 200u) << r.body;
        EXPECT_EQ(r.headers.at("x-ratelimit-limit-requests"), "3");
        EXPECT_EQ(r.headers.at("x-ratelimit-remaining-requests"), std::to_string(2 - i));
        EXPECT_GE(std::stoi(r.headers.at("x-ratelimit-reset-requests")), 1);
    }
    const auto refused = b.chat(priced_chat(10), limited);
    ASSERT_EQ(refused.status, 429u) << refused.body;
    EXPECT_EQ(json::parse(refused.body)["error"]["code"], "rate_limit_exceeded");
    EXPECT_EQ(json::parse(refused.body)["error"]["message"],
              "Rate limit reached for key \"limited\": 3 requests per minute.");
    EXPECT_GE(std::stoi(refused.headers.at("retry-after")), 1);
    EXPECT_LE(std::stoi(refused.headers.at("retry-after")), 60);
    EXPECT_EQ(refused.headers.at("x-ratelimit-remaining-requests"), "0");
    EXPECT_EQ(up.request_count(), 3u);
    EXPECT_EQ(admin_key_view(a, "limited")["live"]["rpm"], 3);
    // Another key has its own window.
    EXPECT_EQ(a.chat(priced_chat(10)).status, 200u);
}

TEST_P(SharedLedgerTest, ConcurrentRequestsOnTwoReplicasOverspendAtMostOneRequest) {
    up.set_handler([](const recorded_request& req) {
        auto r = usage_echoing(req);
        r.head_delay = 50ms; // keep them in flight together
        return r;
    });
    const auto cfg = config("    daily_usd: 2.0\n", "  threads: 2\n");
    auto a = std::make_unique<gateway_harness>(cfg);
    auto b = std::make_unique<gateway_harness>(cfg);
    constexpr int n = 40; // each $0.20001: the budget is worth 10 (the tenth crosses it)
    std::atomic<int> ok{0};
    std::atomic<int> refused{0};
    std::vector<std::thread> clients;
    for (int i = 0; i < n; ++i) {
        gateway_harness& gw = i % 2 == 0 ? *a : *b;
        clients.emplace_back([&] {
            const auto r = gw.chat(priced_chat(100000), limited);
            (r.status == 200 ? ok : refused)++;
        });
    }
    for (auto& t : clients) {
        t.join();
    }
    EXPECT_EQ(ok + refused, n);
    EXPECT_EQ(ok.load(), 10);
    EXPECT_EQ(up.request_count(), 10u);
    a.reset();
    const auto view = admin_key_view(*b, "limited");
    EXPECT_NEAR(view["spend"]["today"].get<double>(), 10 * 0.20001, 1e-9) << view.dump();
}

TEST_P(SharedLedgerTest, LoopGuardCountsTheSameBodyOnEveryReplica) {
    const auto cfg = config("");
    gateway_harness a(cfg);
    gateway_harness b(cfg);
    const auto body = priced_chat(10);
    EXPECT_EQ(a.chat(body, agent).status, 200u);
    EXPECT_EQ(b.chat(body, agent).status, 200u);
    const auto looped = a.chat(body, agent);
    ASSERT_EQ(looped.status, 429u) << looped.body;
    const auto err = json::parse(looped.body)["error"];
    EXPECT_EQ(err["code"], "loop_detected");
    EXPECT_EQ(err["message"],
              "Loop detected for key \"agent\": the same request was sent 3 times within 60s.");
    EXPECT_GE(std::stoi(looped.headers.at("retry-after")), 1);
    // A different body passes.
    EXPECT_EQ(b.chat(priced_chat(11), agent).status, 200u);
}

TEST_F(RedisLedgerTest, RedisDownRefusesWith503AndRecovers) {
    gateway_harness gw(config("    rpm: 100\n"));
    ASSERT_EQ(gw.chat(priced_chat(10), limited).status, 200u);
    redis.kill();
    const auto down = gw.chat(priced_chat(10), limited);
    ASSERT_EQ(down.status, 503u) << down.body;
    const auto err = json::parse(down.body)["error"];
    EXPECT_EQ(err["code"], "ledger_unavailable");
    const auto msg = err["message"].get<std::string>();
    EXPECT_NE(msg.find("Redis at 127.0.0.1:" + std::to_string(redis.port())), std::string::npos)
        << msg;
    EXPECT_EQ(up.request_count(), 1u); // nothing went upstream unguarded
    EXPECT_EQ(gw.request(http::verb::get, "/healthz").status, 200u);
    // A new Redis on the same address: the gateway reconnects on its own once its back-off
    // (one second after a failed connect) has passed.
    redis.start();
    unsigned status = 0;
    eventually([&] { return (status = gw.chat(priced_chat(10), limited).status) == 200; }, 5s);
    EXPECT_EQ(status, 200u);
}

// Each worker connects to the ledger when the gateway starts: a gateway whose Redis is not up
// yet is alive but not ready, and becomes ready once Redis is, before any request needs it.
TEST_F(RedisLedgerTest, NotReadyUntilTheLedgerHasAnswered) {
    redis_server later;
    later.kill();
    gateway_harness gw(config_at(later.url(), "    rpm: 100\n"));
    EXPECT_EQ(gw.request(http::verb::get, "/healthz").status, 200u);
    const auto waiting = gw.request(http::verb::get, "/readyz");
    EXPECT_EQ(waiting.status, 503u) << waiting.body;
    later.start();
    EXPECT_TRUE(
        eventually([&] { return gw.request(http::verb::get, "/readyz").status == 200; }, 5s));
    // Connected, and the ledger's script loaded, before any request was sent.
    EXPECT_EQ(up.request_count(), 0u);
    EXPECT_NE(later.cli({"INFO", "commandstats"}).find("cmdstat_script"), std::string::npos);
    EXPECT_EQ(gw.chat(priced_chat(10), limited).status, 200u);
    // Once ready, it stays ready while Redis goes away (guarded requests get a 503 meanwhile).
    later.kill();
    EXPECT_EQ(gw.request(http::verb::get, "/readyz").status, 200u);
}

TEST_F(RedisLedgerTest, PasswordAndDatabaseFromTheUrl) {
    redis_server locked({"--requirepass", "s3cret"});
    const std::string base = "redis://:s3cret@127.0.0.1:" + std::to_string(locked.port());
    gateway_harness gw(config_at(base + "/3", "    rpm: 5\n"));
    const auto r = gw.chat(priced_chat(10), limited);
    EXPECT_EQ(r.status, 200u) << r.body;
    EXPECT_EQ(r.headers.at("x-ratelimit-remaining-requests"), "4");
    const std::string wrong = "redis://:nope@127.0.0.1:" + std::to_string(locked.port());
    gateway_harness bad(config_at(wrong, "    rpm: 5\n"));
    const auto refused = bad.chat(priced_chat(10), limited);
    ASSERT_EQ(refused.status, 503u) << refused.body;
    const auto msg = json::parse(refused.body)["error"]["message"].get<std::string>();
    EXPECT_NE(msg.find("Redis refused the connection's set-up"), std::string::npos) << msg;
    EXPECT_EQ(msg.find("nope"), std::string::npos) << msg; // never the password
}

// The shared ledger driven directly on one event loop, with a clock the test moves.
class ledger_driver {
public:
    explicit ledger_driver(const std::string& url)
        : ledger_(ioc_.get_executor(), parse(url), [this] { return now; }) {}

    // Admits a request estimated at cost USD and 10 tokens; its x-ratelimit-* in headers.
    guard::redis_ledger::admission admit(double cost, const config::limits& limits) {
        guard::admission_request req;
        req.key_id = "k";
        req.limits = limits;
        req.est_cost_usd = cost;
        req.est_tokens = 10;
        std::optional<guard::redis_ledger::admission> out;
        net::co_spawn(ioc_, ledger_.admit(req, headers), [&](std::exception_ptr e, auto v) {
            if (e) {
                std::rethrow_exception(e);
            }
            out = std::move(v);
        });
        while (!out) { // the client's watchdog ends every call within its timeout
            ioc_.run_one();
        }
        return *out;
    }

    // n admissions made in the same turn of the event loop, all in flight together.
    std::vector<guard::redis_ledger::admission> admit_together(int n, double cost,
                                                               const config::limits& limits) {
        std::vector<std::optional<guard::redis_ledger::admission>> out(static_cast<std::size_t>(n));
        std::vector<guard::rate_headers> heads(out.size());
        std::vector<guard::admission_request> reqs(out.size());
        int left = n;
        for (std::size_t i = 0; i < out.size(); ++i) {
            reqs[i].key_id = "k";
            reqs[i].limits = limits;
            reqs[i].est_cost_usd = cost;
            reqs[i].est_tokens = 10;
            net::co_spawn(ioc_, ledger_.admit(reqs[i], heads[i]),
                          [&out, &left, i](std::exception_ptr e, auto v) {
                              if (e) {
                                  std::rethrow_exception(e);
                              }
                              out[i] = std::move(v);
                              --left;
                          });
        }
        while (left > 0) {
            ioc_.run_one();
        }
        std::vector<guard::redis_ledger::admission> all;
        for (auto& o : out) {
            all.push_back(std::move(*o));
        }
        return all;
    }

    // Settles them all at once (coalesced into the key's next batch) and waits for Redis.
    void settle_together(std::vector<guard::reservation> rs, double cost,
                         std::uint64_t tokens = 10) {
        for (auto& r : rs) {
            ledger_.settle(r, cost, tokens);
        }
        while (ledger_.unsettled() > 0) {
            ioc_.run_one();
        }
    }

    std::uint64_t calls() const { return ledger_.calls(); }

    void settle(guard::reservation r, double cost, std::uint64_t tokens = 10) {
        ledger_.settle(r, cost, tokens);
        while (ledger_.unsettled() > 0) {
            ioc_.run_one();
        }
    }

    guard::key_usage usage() {
        std::optional<std::optional<guard::key_usage>> out;
        net::co_spawn(ioc_, ledger_.usage("k"), [&](std::exception_ptr e, auto v) {
            if (e) {
                std::rethrow_exception(e);
            }
            out = v;
        });
        while (!out) {
            ioc_.run_one();
        }
        EXPECT_TRUE(out->has_value());
        return out->value_or(guard::key_usage{});
    }

    std::chrono::system_clock::time_point now =
        std::chrono::sys_days(std::chrono::year{2026} / 12 / 5) + 10h;
    guard::rate_headers headers;

private:
    static redis::redis_url parse(const std::string& url) {
        std::string why;
        return *redis::redis_url::parse(url, why);
    }
    net::io_context ioc_;
    guard::redis_ledger ledger_;
};

TEST_F(RedisLedgerTest, HoldsOfAReplicaThatDiedLapseAndALateSettlementIsChargedOnce) {
    ledger_driver d(redis.url());
    const config::limits budget{.daily_usd = 1.0};
    auto first = d.admit(1.0, budget);
    ASSERT_TRUE(std::holds_alternative<guard::reservation>(first));
    // Its replica dies: the hold is never settled. It blocks the budget while it lasts ...
    const auto blocked = d.admit(0.1, budget);
    ASSERT_TRUE(std::holds_alternative<guard::refusal>(blocked));
    EXPECT_NE(std::get<guard::refusal>(blocked).message.find("$1.00 in flight"), std::string::npos)
        << std::get<guard::refusal>(blocked).message;
    EXPECT_NEAR(d.usage().reserved, 1.0, 1e-12);
    d.now += guard::hold_lease - 1s;
    EXPECT_TRUE(std::holds_alternative<guard::refusal>(d.admit(0.1, budget)));
    // ... and lapses with its lease.
    d.now += 2s;
    auto second = d.admit(0.1, budget);
    ASSERT_TRUE(std::holds_alternative<guard::reservation>(second));
    EXPECT_NEAR(d.usage().reserved, 0.1, 1e-12);
    // A settlement that comes after its hold lapsed is still charged, and only once however
    // often it is sent (a retry after a lost reply).
    const auto late = std::get<guard::reservation>(first);
    d.settle(late, 0.25);
    d.settle(late, 0.25);
    d.settle(std::get<guard::reservation>(second), 0.05);
    d.settle(std::get<guard::reservation>(second), 0.05);
    const auto u = d.usage();
    EXPECT_NEAR(u.spent_today, 0.30, 1e-12);
    EXPECT_NEAR(u.spent_this_month, 0.30, 1e-12);
    EXPECT_NEAR(u.reserved, 0.0, 1e-12);
    // The next day starts from nothing; the month carries on.
    d.now += 24h;
    const auto next_day = d.usage();
    EXPECT_NEAR(next_day.spent_today, 0.0, 1e-12);
    EXPECT_NEAR(next_day.spent_this_month, 0.30, 1e-12);
}

TEST_F(RedisLedgerTest, RollingWindowsMoveWithTheClock) {
    ledger_driver d(redis.url());
    const config::limits limits{.rpm = 3, .tpm = 1000};
    const auto t0 = d.now;
    const auto admitted_at = [&](std::chrono::seconds after, std::uint64_t remaining,
                                 std::int64_t reset) {
        d.now = t0 + after;
        EXPECT_TRUE(std::holds_alternative<guard::reservation>(d.admit(0, limits)))
            << after.count();
        EXPECT_EQ(d.headers.remaining_requests, remaining) << after.count();
        EXPECT_EQ(d.headers.reset_requests.count(), reset) << after.count();
    };
    admitted_at(0s, 2, 60);
    admitted_at(30s, 1, 30);
    admitted_at(40s, 0, 20);
    d.now = t0 + 50s;
    const auto refused = d.admit(0, limits);
    ASSERT_TRUE(std::holds_alternative<guard::refusal>(refused));
    EXPECT_EQ(std::get<guard::refusal>(refused).kind, guard::refusal_kind::rpm);
    EXPECT_EQ(std::get<guard::refusal>(refused).retry_after, 10s); // when the first leaves
    // A minute after the first, it has left the window; the oldest is the one at 30 s.
    admitted_at(61s, 0, 29);
    // Idle for minutes: the window starts again.
    admitted_at(300s, 2, 60);
    // Tokens: the estimate (10) counted at admission becomes the actual usage once settled.
    d.now = t0 + 310s;
    auto counted = d.admit(0, limits);
    ASSERT_TRUE(std::holds_alternative<guard::reservation>(counted));
    EXPECT_EQ(d.usage().tokens_last_minute, 20u);
    d.settle(std::get<guard::reservation>(counted), 0, 250);
    EXPECT_EQ(d.usage().tokens_last_minute, 260u);
    EXPECT_EQ(d.usage().requests_last_minute, 2u);
    d.now = t0 + 371s; // both have left
    EXPECT_EQ(d.usage().tokens_last_minute, 0u);
    EXPECT_EQ(d.usage().requests_last_minute, 0u);
}

// Admissions in flight together go to Redis as one batch; each is still checked against the
// holds of those before it: at a limit worth ten, exactly ten of forty are admitted, and the
// settlements, coalesced too, charge exactly what they carry.
TEST_F(RedisLedgerTest, BatchedAdmissionsAtALimitAdmitExactlyUpToIt) {
    ledger_driver d(redis.url());
    const config::limits budget{.daily_usd = 1.0};
    auto answers = d.admit_together(40, 0.1, budget);
    std::vector<guard::reservation> held;
    int refused = 0;
    for (auto& a : answers) {
        if (auto* r = std::get_if<guard::reservation>(&a)) {
            held.push_back(*r);
        } else {
            ASSERT_TRUE(std::holds_alternative<guard::refusal>(a));
            EXPECT_EQ(std::get<guard::refusal>(a).kind, guard::refusal_kind::budget_daily);
            ++refused;
        }
    }
    EXPECT_EQ(held.size(), 10u);
    EXPECT_EQ(refused, 30);
    EXPECT_LE(d.calls(), 3u) << "forty admissions in one turn were not batched";
    EXPECT_NEAR(d.usage().reserved, 1.0, 1e-12);
    const auto before = d.calls();
    d.settle_together(held, 0.07);
    EXPECT_LE(d.calls() - before, 2u) << "ten settlements were not coalesced";
    const auto u = d.usage();
    EXPECT_NEAR(u.spent_today, 0.70, 1e-12);
    EXPECT_NEAR(u.reserved, 0.0, 1e-12);
    // What the settlements freed counts at once: three more fit ($0.70 + 3 x $0.10 reaches
    // the $1 limit).
    auto more = d.admit_together(40, 0.1, budget);
    EXPECT_EQ(
        std::count_if(more.begin(), more.end(),
                      [](const auto& a) { return std::holds_alternative<guard::reservation>(a); }),
        3);
}

TEST_F(RedisLedgerTest, BatchedAdmissionsHoldAnExactRpmWindow) {
    ledger_driver d(redis.url());
    const config::limits limits{.rpm = 10};
    auto answers = d.admit_together(40, 0, limits);
    int ok = 0;
    for (auto& a : answers) {
        if (std::holds_alternative<guard::reservation>(a)) {
            ++ok;
        } else {
            ASSERT_TRUE(std::holds_alternative<guard::refusal>(a));
            EXPECT_EQ(std::get<guard::refusal>(a).kind, guard::refusal_kind::rpm);
            EXPECT_EQ(std::get<guard::refusal>(a).retry_after, std::chrono::seconds(60));
        }
    }
    EXPECT_EQ(ok, 10);
    EXPECT_EQ(d.usage().requests_last_minute, 10u);
}

// A batch's settlements are summed up by the gateway as if every hold were still held; the
// script takes out those that are not. One batch settles two holds that lapsed (charged, not
// released again) and two still held; the same batch sent again (a retry) changes nothing;
// then the budget admits exactly what is left of it.
TEST_F(RedisLedgerTest, ABatchOfLiveAndLapsedSettlementsChargesEachOnce) {
    ledger_driver d(redis.url());
    const config::limits budget{.tpm = 100000, .daily_usd = 10.0};
    auto early = d.admit_together(2, 1.0, budget);
    d.now += guard::hold_lease - 10s;
    auto late = d.admit_together(2, 1.0, budget);
    std::vector<guard::reservation> all;
    for (auto* group : {&early, &late}) {
        for (auto& a : *group) {
            ASSERT_TRUE(std::holds_alternative<guard::reservation>(a));
            all.push_back(std::get<guard::reservation>(a));
        }
    }
    EXPECT_NEAR(d.usage().reserved, 4.0, 1e-12);
    d.now += 11s; // the early two have lapsed (their replica died, say); the late two are held
    const auto before = d.calls();
    d.settle_together(all, 0.5, 25);
    EXPECT_EQ(d.calls() - before, 1u) << "the four settlements were not one batch";
    auto u = d.usage();
    EXPECT_NEAR(u.spent_today, 2.0, 1e-12);
    EXPECT_NEAR(u.reserved, 0.0, 1e-12);
    EXPECT_EQ(u.tokens_last_minute, 50u); // the late two's estimates (10) became their 25
    EXPECT_EQ(u.requests_last_minute, 2u);
    d.settle_together(all, 0.5, 25);
    u = d.usage();
    EXPECT_NEAR(u.spent_today, 2.0, 1e-12);
    EXPECT_NEAR(u.reserved, 0.0, 1e-12);
    EXPECT_EQ(u.tokens_last_minute, 50u);
    auto more = d.admit_together(40, 1.0, budget);
    EXPECT_EQ(
        std::count_if(more.begin(), more.end(),
                      [](const auto& a) { return std::holds_alternative<guard::reservation>(a); }),
        8);
    EXPECT_NEAR(d.usage().reserved, 8.0, 1e-12);
}

} // namespace
} // namespace michi::test
