// store.redis URLs: what each part becomes, and what is refused.
#include "michi/config/config.hpp"
#include "michi/redis/redis_protocol.hpp"
#include "michi/redis/redis_url.hpp"

#include <gtest/gtest.h>

namespace michi::redis {
namespace {

TEST(RedisUrlTest, PartsOfAFullUrl) {
    std::string why;
    const auto u = redis_url::parse("redis://app:p%40ss@cache.internal:6380/2", why);
    ASSERT_TRUE(u) << why;
    EXPECT_EQ(u->host, "cache.internal");
    EXPECT_EQ(u->port, 6380);
    EXPECT_EQ(u->username, "app");
    EXPECT_EQ(u->password, "p@ss");
    EXPECT_EQ(u->db, 2);
    EXPECT_EQ(u->where(), "cache.internal:6380");
}

TEST(RedisUrlTest, DefaultsAndShortForms) {
    std::string why;
    const auto plain = redis_url::parse("redis://cache", why);
    ASSERT_TRUE(plain) << why;
    EXPECT_EQ(plain->port, 6379);
    EXPECT_EQ(plain->db, 0);
    EXPECT_TRUE(plain->password.empty());
    const auto password_only = redis_url::parse("redis://:secret@10.0.0.5:7000/", why);
    ASSERT_TRUE(password_only) << why;
    EXPECT_EQ(password_only->username, "");
    EXPECT_EQ(password_only->password, "secret");
    EXPECT_EQ(password_only->host, "10.0.0.5");
    const auto v6 = redis_url::parse("redis://[::1]:6390/1", why);
    ASSERT_TRUE(v6) << why;
    EXPECT_EQ(v6->host, "::1");
    EXPECT_EQ(v6->port, 6390);
    EXPECT_EQ(v6->where(), "[::1]:6390");
}

TEST(RedisUrlTest, BadUrlsSayWhatIsWrong) {
    const auto error_of = [](const char* url) {
        std::string why;
        EXPECT_FALSE(redis_url::parse(url, why)) << url;
        return why;
    };
    EXPECT_EQ(error_of("http://cache"),
              "expected a redis://, rediss://, redis+sentinel:// or redis+cluster:// URL");
    EXPECT_EQ(error_of("redis://"), "no host");
    EXPECT_EQ(error_of("redis://:pw@:6379"), "no host");
    EXPECT_EQ(error_of("redis://cache:0"), "the port must be a number from 1 to 65535");
    EXPECT_EQ(error_of("redis://cache:70000"), "the port must be a number from 1 to 65535");
    EXPECT_EQ(error_of("redis://cache:"), "the port must be a number from 1 to 65535");
    EXPECT_EQ(error_of("redis://cache:63x9"), "the port must be a number from 1 to 65535");
    EXPECT_EQ(error_of("redis://cache/zero"), "the database after '/' must be a number");
    EXPECT_EQ(error_of("redis://[::1"), "unclosed '[' in the host");
}

TEST(RedisUrlTest, TlsSentinelAndClusterForms) {
    std::string why;
    const auto tls =
        redis_url::parse("rediss://app:pw@cache.example:6380/1?ca_file=%2Fetc%2Fca.pem", why);
    ASSERT_TRUE(tls) << why;
    EXPECT_TRUE(tls->tls);
    EXPECT_EQ(tls->mode, redis_mode::single);
    EXPECT_EQ(tls->ca_file, "/etc/ca.pem");
    EXPECT_EQ(tls->db, 1);
    EXPECT_EQ(tls->where(), "cache.example:6380");

    const auto sentinel = redis_url::parse(
        "redis+sentinel://:pw@s1:26379,s2,[::1]:26380/mymaster/2?sentinel_password=spw", why);
    ASSERT_TRUE(sentinel) << why;
    EXPECT_EQ(sentinel->mode, redis_mode::sentinel);
    EXPECT_FALSE(sentinel->tls);
    ASSERT_EQ(sentinel->nodes.size(), 3u);
    EXPECT_EQ(sentinel->nodes[1].where(), "s2:6379");
    EXPECT_EQ(sentinel->nodes[2].where(), "[::1]:26380");
    EXPECT_EQ(sentinel->primary_name, "mymaster");
    EXPECT_EQ(sentinel->db, 2);
    EXPECT_EQ(sentinel->password, "pw");
    EXPECT_EQ(sentinel->sentinel_password, "spw");
    EXPECT_EQ(sentinel->where(),
              "primary \"mymaster\" of the Sentinels at s1:26379,s2:6379,[::1]:26380");

    const auto cluster = redis_url::parse("rediss+cluster://n1:7000,n2:7001", why);
    ASSERT_TRUE(cluster) << why;
    EXPECT_EQ(cluster->mode, redis_mode::cluster);
    EXPECT_TRUE(cluster->tls);
    EXPECT_EQ(cluster->where(), "the cluster at n1:7000,n2:7001");
}

TEST(RedisUrlTest, BadFormsOfTheOtherModes) {
    const auto error_of = [](const char* url) {
        std::string why;
        EXPECT_FALSE(redis_url::parse(url, why)) << url;
        return why;
    };
    EXPECT_EQ(error_of("redis+sentinel://s1:26379"),
              "a redis+sentinel:// URL names the primary after the Sentinels: "
              "redis+sentinel://host:26379/mymaster[/db]");
    EXPECT_EQ(error_of("redis+cluster://n1:7000/1"),
              "a Redis Cluster has only database 0: no '/db' in a redis+cluster:// URL");
    EXPECT_EQ(error_of("redis+cluster://n1:7000,:7001"), "no host");
    EXPECT_EQ(error_of("redis://cache?ca_file=/x.pem"), "ca_file is for rediss:// (TLS) URLs");
    EXPECT_EQ(error_of("rediss://cache?tls=1"),
              "unknown parameter \"tls\" (known: ca_file, sentinel_username, sentinel_password)");
    EXPECT_EQ(error_of("redis://a,b:6379"),
              "several servers need redis+sentinel:// or redis+cluster://");
}

// Redis Cluster's key slots: CRC16 (XModem) of the key or of its hash tag, as CLUSTER KEYSLOT
// computes them.
TEST(RedisUrlTest, KeySlotsAsRedisClusterComputesThem) {
    EXPECT_EQ(redis_key_slot("123456789"), 0x31C3 & 16383);
    EXPECT_EQ(redis_key_slot("foo"), 12182);
    EXPECT_EQ(redis_key_slot("{user1000}.following"), redis_key_slot("{user1000}.followers"));
    EXPECT_EQ(redis_key_slot("michi:{alice}"), redis_key_slot("alice"));
    EXPECT_EQ(redis_key_slot("michi:{alice}:lease"), redis_key_slot("michi:{alice}"));
    EXPECT_EQ(redis_key_slot("foo{}{bar}"), redis_key_slot("foo{}{bar}")); // empty tag: whole key
    EXPECT_NE(redis_key_slot("foo{}{bar}"), redis_key_slot("bar"));
    EXPECT_EQ(redis_command({"EVALSHA", "sha", "2", "michi:{k}", "michi:{k}:lease"}).slot,
              redis_key_slot("k"));
    EXPECT_EQ(redis_command({"HSET", "michi:keys", "id", "{}"}).slot, redis_key_slot("michi:keys"));
    EXPECT_EQ(redis_command({"CLUSTER", "SLOTS"}).slot, -1);
}

TEST(RedisUrlTest, TheConfigRefusesABadUrlWithoutEchoingIt) {
    const auto r = config::load_string("store: { redis: \"redis://user:hunter2@cache:99999/0\" }\n"
                                       "providers: { echo: { type: echo } }\n");
    ASSERT_FALSE(r.cfg);
    ASSERT_EQ(r.errors.size(), 1u);
    EXPECT_EQ(r.errors[0], "store.redis: bad Redis URL: the port must be a number from 1 to 65535");
}

} // namespace
} // namespace michi::redis
