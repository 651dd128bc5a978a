// Admin-made keys and revocations reach every replica: through Redis (store.redis) between
// replicas with SQLite files of their own, and through the file between processes sharing
// one. Each gateway here is a replica of its own; the checks poll (bounded) because the
// other replica picks a change up on its next round, a fifth of a second at most. Except a
// revocation between replicas sharing Redis (marked in the key's ledger state before the
// DELETE answers) and any change between processes sharing one file (a counter beside it,
// read on every request): they count from the very next request on every replica.
#include "support/temp_dir.hpp"
#include "support/fake_upstream.hpp"
#include "support/gateway_harness.hpp"
#include "support/redis_server.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <random>

namespace michi::test {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

const std::string echo_chat =
    R"({"model":"echo/echo-1","messages":[{"role":"user","content":"hi"}]})";

class KeySyncTest : public ::testing::Test {
protected:
    // A replica on its own SQLite file `db`, sharing keys through `redis_url` when given.
    std::string config(const std::string& db, const std::string& redis_url) {
        return basic_config(up.base_url(),
                            {.rest = admin_section(),
                             .store = redis_url.empty() ? "" : ", redis: \"" + redis_url + "\"",
                             .sqlite = dir.file(db)});
    }

    // Creates an admin key on gw; its secret.
    static std::string create_key(gateway_harness& gw, const std::string& body) {
        const auto r = gw.request(http::verb::post, "/admin/keys", body, admin_auth());
        EXPECT_EQ(r.status, 201u) << r.body;
        return r.status == 201 ? json::parse(r.body)["secret"].get<std::string>() : "";
    }
    static unsigned status_with(gateway_harness& gw, const std::string& secret) {
        return gw.chat(echo_chat, secret).status;
    }

    temp_dir dir;
    fake_upstream up;
};

TEST_F(KeySyncTest, AKeyMadeOnOneReplicaWorksOnTheOtherUntilItIsRevoked) {
    redis_server redis;
    gateway_harness a(config("a.db", redis.url()));
    gateway_harness b(config("b.db", redis.url()));
    const auto secret = create_key(a, R"({"id":"ci-bot","class":"developer","rpm":50})");
    ASSERT_FALSE(secret.empty());
    EXPECT_EQ(status_with(a, secret), 200u);
    ASSERT_TRUE(eventually([&] { return status_with(b, secret) == 200; }))
        << "the key never reached the other replica";

    // An edit travels too.
    const auto patched =
        a.request(http::verb::patch, "/admin/keys/ci-bot", R"({"rpm":7})", admin_auth());
    ASSERT_EQ(patched.status, 200u) << patched.body;
    EXPECT_TRUE(eventually([&] {
        const auto r = b.request(http::verb::get, "/admin/keys/ci-bot", "", admin_auth());
        return r.status == 200 && json::parse(r.body)["limits"]["rpm"] == 7;
    })) << b.request(http::verb::get, "/admin/keys/ci-bot", "", admin_auth()).body;

    // Revoked on B: refused on A too, from the next request on (A's copy of the keys learns
    // of it later; its admission in Redis finds the mark B set before answering).
    // (A's own key sync may also have learned of it by then, in its poll: either way, 401.)
    ASSERT_EQ(b.request(http::verb::delete_, "/admin/keys/ci-bot", "", admin_auth()).status, 200u);
    EXPECT_EQ(status_with(a, secret), 401u);
    EXPECT_EQ(status_with(b, secret), 401u);
    EXPECT_TRUE(eventually([&] {
        const auto r = a.request(http::verb::get, "/admin/keys/ci-bot", "", admin_auth());
        return r.status == 200 && json::parse(r.body)["revoked"] == true;
    })) << "the revocation never reached the other replica's keys";
    EXPECT_EQ(status_with(a, secret), 401u);
}

TEST_F(KeySyncTest, ARevokedConfigFileKeyIsRefusedOnEveryReplica) {
    redis_server redis;
    gateway_harness a(config("a.db", redis.url()));
    gateway_harness b(config("b.db", redis.url()));
    ASSERT_EQ(status_with(b, test_secret), 200u);
    ASSERT_EQ(a.request(http::verb::delete_, "/admin/keys/tester", "", admin_auth()).status, 200u);
    EXPECT_EQ(status_with(b, test_secret), 401u);
    // And a replica started afterwards learns it at start.
    gateway_harness c(config("c.db", redis.url()));
    EXPECT_TRUE(eventually([&] { return status_with(c, test_secret) == 401; }));
}

TEST_F(KeySyncTest, KeysMadeBeforeRedisAreSharedOnceThereIsOne) {
    std::string secret;
    {
        gateway_harness alone(config("a.db", ""));
        secret = create_key(alone, R"({"id":"old","class":"developer"})");
    }
    redis_server redis;
    gateway_harness a(config("a.db", redis.url()));
    gateway_harness b(config("b.db", redis.url()));
    EXPECT_TRUE(eventually([&] { return status_with(b, secret) == 200; }));
}

TEST_F(KeySyncTest, AChangeMadeWhileRedisIsDownIsSharedWhenItIsBack) {
    redis_server redis;
    gateway_harness a(config("a.db", redis.url()));
    gateway_harness b(config("b.db", redis.url()));
    redis.kill();
    const auto secret = create_key(a, R"({"id":"late","class":"developer"})");
    // This replica has it at once (its guarded requests wait for Redis, as the ledger does).
    EXPECT_EQ(a.request(http::verb::get, "/admin/keys/late", "", admin_auth()).status, 200u);
    redis.start(); // empty: the replicas fill it again
    EXPECT_TRUE(eventually([&] { return status_with(b, secret) == 200; }));
}

// Through the file's change counter, from the next request on: a key made by one works on
// the other at once, and once revoked there it is refused here at once.
TEST_F(KeySyncTest, ProcessesSharingOneFileSeeEachOthersKeysAndRevocations) {
    gateway_harness a(config("shared.db", ""));
    gateway_harness b(config("shared.db", ""));
    const auto secret = create_key(a, R"({"id":"both","class":"developer"})");
    EXPECT_EQ(status_with(b, secret), 200u);
    ASSERT_EQ(a.request(http::verb::delete_, "/admin/keys/both", "", admin_auth()).status, 200u);
    EXPECT_EQ(status_with(b, secret), 401u);
}

} // namespace
} // namespace michi::test
