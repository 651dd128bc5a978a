// Key store, digests, globs and secrets.
#include "michi/auth/key_store.hpp"
#include "michi/core/ids.hpp"
#include "michi/core/secret.hpp"

#include <gtest/gtest.h>

#include <cctype>
#include <map>
#include <set>
#include <sstream>

namespace michi {
namespace {

config::config two_keys() {
    config::config cfg;
    config::key_config a;
    a.id = "alice";
    a.secret_sha256 = sha256_hex("mk-dev-alice-secret");
    a.models = {"openai/*", "auto"};
    config::key_config b;
    b.id = "bob";
    b.cls = config::key_class::agent;
    b.secret_sha256 = sha256_hex("mk-agt-bob-secret");
    config::key_config disabled;
    disabled.id = "off"; // empty digest: disabled
    cfg.keys = {a, b, disabled};
    return cfg;
}

TEST(AuthTest, AuthenticatesByDigestOnly) {
    const auto cfg = two_keys();
    auth::key_store store(cfg);
    EXPECT_EQ(store.size(), 2u);
    ASSERT_NE(store.authenticate("mk-dev-alice-secret"), nullptr);
    EXPECT_EQ(store.authenticate("mk-dev-alice-secret")->id, "alice");
    EXPECT_EQ(store.authenticate("mk-agt-bob-secret")->id, "bob");
    EXPECT_EQ(store.authenticate("mk-dev-alice-secreT"), nullptr);
    EXPECT_EQ(store.authenticate(""), nullptr);
    EXPECT_EQ(store.authenticate(sha256_hex("mk-dev-alice-secret")),
              nullptr); // digest is no secret
    EXPECT_EQ(store.authenticate(std::string(10000, 'x')), nullptr);
    // By a digest already computed (the gateway hashes a presented secret once).
    ASSERT_NE(store.find_digest(sha256_raw("mk-agt-bob-secret")), nullptr);
    EXPECT_EQ(store.find_digest(sha256_raw("mk-agt-bob-secret"))->id, "bob");
    EXPECT_EQ(store.find_digest(sha256_raw("mk-agt-bob-secreT")), nullptr);
    EXPECT_EQ(store.find_digest(""), nullptr); // a disabled key's empty digest matches nothing
}

TEST(AuthTest, ModelGlobs) {
    EXPECT_TRUE(auth::glob_match("openai/*", "openai/gpt-4o"));
    EXPECT_FALSE(auth::glob_match("openai/*", "claude/x"));
    EXPECT_TRUE(auth::glob_match("*", "anything/at-all"));
    EXPECT_TRUE(auth::glob_match("claude/claude-3-?-haiku", "claude/claude-3-5-haiku"));
    EXPECT_TRUE(auth::glob_match("*mini*", "openai/gpt-4o-mini"));
    EXPECT_FALSE(auth::glob_match("auto", "auto2"));
    const auto cfg = two_keys();
    EXPECT_TRUE(auth::model_allowed(cfg.keys[0], "auto"));
    EXPECT_FALSE(auth::model_allowed(cfg.keys[0], "claude/claude-3-5-haiku"));
    EXPECT_TRUE(auth::model_allowed(cfg.keys[1], "claude/claude-3-5-haiku")); // no globs: all
}

TEST(AuthTest, DigestsAndConstantTimeCompare) {
    EXPECT_EQ(sha256_hex("abc"),
              "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    EXPECT_TRUE(constant_time_equal("same", "same"));
    EXPECT_FALSE(constant_time_equal("same", "sane"));
    EXPECT_FALSE(constant_time_equal("short", "longer"));
    EXPECT_TRUE(is_sha256_hex(sha256_hex("x")));
    EXPECT_FALSE(is_sha256_hex("xyz"));
}

TEST(AuthTest, RandomSecretsAreBase62AndDistinct) {
    std::set<std::string> seen;
    for (int i = 0; i < 200; ++i) {
        const auto s = random_base62(40);
        ASSERT_EQ(s.size(), 40u);
        for (char c : s) {
            ASSERT_TRUE(std::isalnum(static_cast<unsigned char>(c))) << s;
        }
        EXPECT_TRUE(seen.insert(s).second);
    }
}

TEST(AuthTest, SecretNeverPrintsItself) {
    const secret s("sk-very-secret");
    std::ostringstream os;
    os << s;
    EXPECT_EQ(os.str(), "[redacted]");
    EXPECT_EQ(s.reveal(), "sk-very-secret");
}

TEST(AuthTest, RequestIds) {
    EXPECT_TRUE(new_request_id().starts_with("req_"));
    EXPECT_NE(new_request_id(), new_request_id());
    // 24 characters of 62, each as likely as any other (240k characters: each within 15% of
    // its expected 3871 is over nine standard deviations of room; a skew as small as mapping
    // 64 values onto 62 doubles two of them).
    std::map<char, int> seen;
    for (int i = 0; i < 10000; ++i) {
        const auto id = new_request_id();
        ASSERT_EQ(id.size(), 28u) << id;
        ASSERT_TRUE(is_sane_request_id(id)) << id;
        for (const char c : id.substr(4)) {
            ASSERT_TRUE(std::isalnum(static_cast<unsigned char>(c))) << id;
            ++seen[c];
        }
    }
    EXPECT_EQ(seen.size(), 62u);
    for (const auto& [c, n] : seen) {
        EXPECT_NEAR(n, 240000.0 / 62, 240000.0 / 62 * 0.15) << c;
    }
    EXPECT_TRUE(is_sane_request_id("abc-123_x.y:z"));
    EXPECT_FALSE(is_sane_request_id(""));
    EXPECT_FALSE(is_sane_request_id("has space"));
    EXPECT_FALSE(is_sane_request_id(std::string(200, 'a')));
}

} // namespace
} // namespace michi
