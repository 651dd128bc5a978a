// store.redis URLs: what each part becomes, and what is refused.
#include "michi/config/config.hpp"
#include "michi/store/redis_url.hpp"

#include <gtest/gtest.h>

namespace michi::store {
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

TEST(RedisUrlTest, TheConfigRefusesABadUrlWithoutEchoingIt) {
    const auto r = config::load_string("store: { redis: \"redis://user:hunter2@cache:99999/0\" }\n"
                                       "providers: { echo: { type: echo } }\n");
    ASSERT_FALSE(r.cfg);
    ASSERT_EQ(r.errors.size(), 1u);
    EXPECT_EQ(r.errors[0],
              "store.redis: bad Redis URL: the port must be a number from 1 to 65535");
}

} // namespace
} // namespace michi::store
