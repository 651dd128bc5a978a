// The ways of reaching the shared ledger's Redis beyond a plain server (store.redis): TLS with
// a verified certificate (a wrong CA refused, never a hang), ACL users and databases over it;
// a primary found through Sentinel and followed through a failover under load, never admitting
// above a limit; and a Redis Cluster, on which admin keys and revocations travel as they do on
// one server. (The two-replica ledger tests run in every mode: redis_ledger_test.cpp.)
#include "support/fake_upstream.hpp"
#include "support/gateway_harness.hpp"
#include "support/redis_server.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <mutex>
#include <thread>

namespace michi::test {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

std::string config_on(const fake_upstream& up, const std::string& url, const std::string& limits,
                      const std::string& sqlite = ":memory:") {
    return basic_config(up.base_url(), {.keys = key_entry("limited", "developer", limited, limits),
                                        .rest = admin_section(),
                                        .store = ", redis: \"" + url + "\"",
                                        .sqlite = sqlite});
}

class RedisTlsTest : public ::testing::Test {
protected:
    scratch_dir dir;
    tls_files certs = make_test_certs(dir.path + "/good");
    fake_upstream up;
};

TEST_F(RedisTlsTest, AnAclUserAndADatabaseOverVerifiedTls) {
    redis_server redis(
        {"--user", "default", "off", "--user", "ledger", "on", ">s3cret", "~*", "&*", "+@all"},
        certs);
    const std::string base = "rediss://ledger:s3cret@localhost:" + std::to_string(redis.port());
    const std::string ca = "?ca_file=" + certs.ca_file;
    gateway_harness a(config_on(up, base + "/2" + ca, "    rpm: 2\n"));
    gateway_harness b(config_on(up, base + "/2" + ca, "    rpm: 2\n"));
    const auto first = a.chat(priced_chat(10), limited);
    ASSERT_EQ(first.status, 200u) << first.body;
    EXPECT_EQ(first.headers.at("x-ratelimit-remaining-requests"), "1");
    EXPECT_EQ(b.chat(priced_chat(10), limited).status, 200u);
    EXPECT_EQ(a.chat(priced_chat(10), limited).status, 429u);
    // Another database is another ledger.
    gateway_harness other_db(config_on(up, base + "/3" + ca, "    rpm: 2\n"));
    EXPECT_EQ(other_db.chat(priced_chat(10), limited).status, 200u);
    // A wrong password is refused by Redis, and said so without the password.
    const std::string wrong = "rediss://ledger:nope@localhost:" + std::to_string(redis.port()) + ca;
    gateway_harness bad(config_on(up, wrong, "    rpm: 2\n"));
    const auto refused = bad.chat(priced_chat(10), limited);
    ASSERT_EQ(refused.status, 503u) << refused.body;
    const auto msg = json::parse(refused.body)["error"]["message"].get<std::string>();
    EXPECT_NE(msg.find("refused the connection's set-up"), std::string::npos) << msg;
    EXPECT_EQ(msg.find("nope"), std::string::npos) << msg;
}

TEST_F(RedisTlsTest, ACertificateFromAnotherCaIsRefusedWith503) {
    redis_server redis({}, certs);
    const tls_files stranger = make_test_certs(dir.path + "/other");
    const std::string url = redis.url() + "?ca_file=" + stranger.ca_file;
    gateway_harness gw(config_on(up, url, "    rpm: 5\n"));
    const auto started = std::chrono::steady_clock::now();
    const auto r = gw.chat(priced_chat(10), limited);
    EXPECT_LT(std::chrono::steady_clock::now() - started, 5s); // refused, not hung
    ASSERT_EQ(r.status, 503u) << r.body;
    const auto err = json::parse(r.body)["error"];
    EXPECT_EQ(err["code"], "ledger_unavailable");
    const auto msg = err["message"].get<std::string>();
    EXPECT_NE(msg.find("TLS handshake failed"), std::string::npos) << msg;
    EXPECT_NE(msg.find("certificate"), std::string::npos) << msg;
    EXPECT_EQ(up.request_count(), 0u); // nothing went upstream unguarded
    // Nor does a server whose certificate names another host pass (127.0.0.1 is not
    // "localhost" to the certificate).
    const std::string by_ip =
        "rediss://127.0.0.1:" + std::to_string(redis.port()) + "?ca_file=" + certs.ca_file;
    gateway_harness ip(config_on(up, by_ip, "    rpm: 5\n"));
    EXPECT_EQ(ip.chat(priced_chat(10), limited).status, 503u);
}

// The primary dies under load: the Sentinel promotes the replica, and the gateway follows it
// without a restart. Requests in the window are refused with 503; none is admitted above the
// key's limit, before, during or after.
TEST(RedisSentinelTest, TheLedgerFollowsAFailoverWithoutAdmittingAboveTheLimit) {
    redis_sentinel_set redis;
    fake_upstream up;
    constexpr int limit = 30;
    gateway_harness gw(
        config_on(up, redis.url(), "    rpm: " + std::to_string(limit) + "\n", ":memory:"));
    std::atomic<int> ok{0};
    std::atomic<int> unavailable{0};
    std::atomic<int> limited_out{0};
    std::atomic<bool> stop{false};
    std::mutex mu;
    std::string last_refusal;
    const auto one = [&] {
        const auto r = gw.chat(priced_chat(10), limited);
        if (r.status == 200) {
            ++ok;
        } else if (r.status == 503) {
            ++unavailable;
            std::lock_guard lock(mu);
            last_refusal = r.body;
        } else if (r.status == 429) {
            ++limited_out;
        }
        return r.status;
    };
    for (int i = 0; i < 10; ++i) {
        ASSERT_EQ(one(), 200u);
    }
    // Load from four clients (bounded: 2000 requests or 30 s) while the primary is killed.
    const auto give_up = std::chrono::steady_clock::now() + 30s;
    std::vector<std::thread> clients;
    std::atomic<int> sent{0};
    for (int c = 0; c < 4; ++c) {
        clients.emplace_back([&] {
            while (!stop && sent++ < 2000 && std::chrono::steady_clock::now() < give_up) {
                one();
            }
        });
    }
    ASSERT_TRUE(redis.kill_primary_and_fail_over());
    // Once the Sentinel switched, the gateway reaches the new primary: the window there still
    // holds the requests admitted before (the replica had them), so it refuses with 429.
    EXPECT_TRUE(eventually([&] { return one() == 429; }, 15s))
        << ok << " admitted, " << unavailable << " unavailable, " << limited_out
        << " limited; the last 503: " << last_refusal;
    stop = true;
    for (auto& t : clients) {
        t.join();
    }
    EXPECT_LE(ok.load(), limit);
    EXPECT_EQ(up.request_count(), static_cast<std::size_t>(ok.load()));
}

// Admin keys and revocations travel through a cluster too: the key sync's names live on
// slots of their own, its marks on each key's slot.
TEST(RedisClusterTest, AKeyMadeOnOneReplicaWorksOnTheOtherUntilRevokedThere) {
    redis_cluster cluster;
    fake_upstream up;
    scratch_dir dir;
    gateway_harness a(config_on(up, cluster.url(), "", dir.path + "/a.db"));
    gateway_harness b(config_on(up, cluster.url(), "", dir.path + "/b.db"));
    const auto made = a.request(http::verb::post, "/admin/keys",
                                R"({"id":"ci-bot","class":"developer","rpm":50})", admin_auth());
    ASSERT_EQ(made.status, 201u) << made.body;
    const auto secret = json::parse(made.body)["secret"].get<std::string>();
    const std::string chat =
        R"({"model":"echo/echo-1","messages":[{"role":"user","content":"hi"}]})";
    ASSERT_TRUE(eventually([&] { return b.chat(chat, secret).status == 200; }))
        << "the key never reached the other replica";
    ASSERT_EQ(b.request(http::verb::delete_, "/admin/keys/ci-bot", "", admin_auth()).status, 200u);
    EXPECT_EQ(a.chat(chat, secret).status, 401u);
}

std::string trimmed(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) {
        s.pop_back();
    }
    return s;
}

// A key's slot moves to another node between requests of one minute. While it moves (its keys
// on the new node, the slot still the old one's), the key's one-key reads follow ASK (with
// ASKING) and its admissions, scripts of several keys that Redis will not run mid-move
// (TRYAGAIN), are refused with 503; once moved, MOVED is followed and the map read again. The
// window moved with the state: the limit still holds exactly.
TEST(RedisClusterTest, ASlotMovedToAnotherNodeKeepsItsWindow) {
    redis_cluster cluster;
    fake_upstream up;
    gateway_harness gw(config_on(up, cluster.url(), "    rpm: 5\n"));
    const auto remaining = [&] {
        const auto r = gw.chat(priced_chat(10), limited);
        EXPECT_EQ(r.status, 200u) << r.body;
        return r.headers.count("x-ratelimit-remaining-requests") != 0
                   ? r.headers.at("x-ratelimit-remaining-requests")
                   : "";
    };
    EXPECT_EQ(remaining(), "4");
    EXPECT_EQ(remaining(), "3");
    const int slot = std::stoi(cluster.node(0).cli({"CLUSTER", "KEYSLOT", "michi:{limited}"}));
    const std::size_t from = std::min<std::size_t>(static_cast<std::size_t>(slot) / 5461, 2);
    const std::size_t to = (from + 1) % 3;
    redis_server& old_node = cluster.node(from);
    redis_server& new_node = cluster.node(to);
    const auto old_id = trimmed(old_node.cli({"CLUSTER", "MYID"}));
    const auto new_id = trimmed(new_node.cli({"CLUSTER", "MYID"}));
    const auto s = std::to_string(slot);
    new_node.cli({"CLUSTER", "SETSLOT", s, "IMPORTING", old_id});
    old_node.cli({"CLUSTER", "SETSLOT", s, "MIGRATING", new_id});
    std::vector<std::string> migrate{
        "MIGRATE", "127.0.0.1", std::to_string(new_node.port()), "", "0", "5000", "KEYS"};
    const std::string keys = old_node.cli({"CLUSTER", "GETKEYSINSLOT", s, "100"});
    for (std::size_t at = 0; at < keys.size();) {
        const auto end = keys.find('\n', at);
        const auto k = trimmed(keys.substr(at, end - at));
        if (!k.empty()) {
            migrate.push_back(k);
        }
        at = end == std::string::npos ? keys.size() : end + 1;
    }
    ASSERT_GT(migrate.size(), 7u) << keys;
    ASSERT_NE(old_node.cli(migrate).find("OK"), std::string::npos);
    // Mid-move: the key's figures are read through ASK ...
    const auto view = gw.request(http::verb::get, "/admin/keys/limited", "", admin_auth());
    ASSERT_EQ(view.status, 200u) << view.body;
    EXPECT_EQ(json::parse(view.body)["live"]["rpm"], 2) << view.body;
    // ... and an admission is refused, not let through.
    const auto mid = gw.chat(priced_chat(10), limited);
    EXPECT_EQ(mid.status, 503u) << mid.body;
    for (std::size_t n = 0; n < 3; ++n) {
        cluster.node(n).cli({"CLUSTER", "SETSLOT", s, "NODE", new_id});
    }
    EXPECT_EQ(remaining(), "2"); // through MOVED
    EXPECT_EQ(remaining(), "1");
    EXPECT_EQ(remaining(), "0");
    EXPECT_EQ(gw.chat(priced_chat(10), limited).status, 429u);
    EXPECT_EQ(up.request_count(), 5u);
}

} // namespace
} // namespace michi::test
