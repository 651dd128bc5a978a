// The key registry: create / find / update / revoke persist across a reopen, every write
// publishes a new snapshot (old ones stay as they were), revocations of config-file ids are
// listed, duplicates and bad input are refused.

#include "michi/store/key_registry.hpp"

#include "michi/core/secret.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace michi::store {
namespace {

namespace fs = std::filesystem;

// A fresh directory under the system temp dir, removed with everything in it.
class temp_dir {
public:
    temp_dir() {
        static std::atomic<int> counter{0};
        path_ = fs::temp_directory_path() / ("michi-keyreg-" + std::to_string(::getpid()) + "-" +
                                             std::to_string(counter.fetch_add(1)));
        fs::remove_all(path_);
    }
    ~temp_dir() {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;

    std::string db() const { return (path_ / "sub" / "michi.db").string(); }

private:
    fs::path path_;
};

admin_key make_key(const std::string& id, const std::string& secret) {
    admin_key k;
    k.id = id;
    k.cls = config::key_class::agent;
    k.secret_sha256 = sha256_hex(secret);
    k.models = {"openai/*", "auto"};
    k.overrides.rpm = 30;
    k.overrides.daily_usd = 2.5;
    k.overrides.loop_max = 7;
    k.overrides.loop_window = std::chrono::seconds(90);
    return k;
}

TEST(KeyRegistryTest, CreateFindAndPersistAcrossReopen) {
    temp_dir dir;
    {
        key_registry reg(dir.db());
        std::string error;
        ASSERT_TRUE(reg.create(make_key("bot-1", "mk-agt-secret-1"), error)) << error;
        EXPECT_TRUE(error.empty());
        const auto found = reg.find("bot-1");
        ASSERT_TRUE(found);
        EXPECT_GT(found->created_ms, 0);
        EXPECT_FALSE(found->revoked);
    }
    key_registry reg(dir.db());
    const auto k = reg.find("bot-1");
    ASSERT_TRUE(k);
    EXPECT_EQ(k->cls, config::key_class::agent);
    EXPECT_EQ(k->secret_sha256, sha256_hex("mk-agt-secret-1"));
    EXPECT_EQ(k->models, (std::vector<std::string>{"openai/*", "auto"}));
    EXPECT_EQ(k->overrides.rpm, 30U);
    EXPECT_FALSE(k->overrides.tpm);
    EXPECT_EQ(k->overrides.daily_usd, 2.5);
    EXPECT_FALSE(k->overrides.monthly_usd);
    EXPECT_EQ(k->overrides.loop_max, 7U);
    EXPECT_EQ(k->overrides.loop_window, config::duration(90000));
    EXPECT_FALSE(reg.find("nobody"));

    const auto snap = reg.current();
    const auto* by_digest = snap->find_digest(sha256_raw("mk-agt-secret-1"));
    ASSERT_NE(by_digest, nullptr);
    EXPECT_EQ(by_digest->id, "bot-1");
    EXPECT_EQ(snap->find_digest(sha256_raw("wrong")), nullptr);

    const auto cfg = k->as_key_config();
    EXPECT_EQ(cfg.id, "bot-1");
    EXPECT_EQ(cfg.cls, config::key_class::agent);
    EXPECT_EQ(cfg.overrides.rpm, 30U);
}

TEST(KeyRegistryTest, DuplicateIdAndSecretAreRefused) {
    temp_dir dir;
    key_registry reg(dir.db());
    std::string error;
    ASSERT_TRUE(reg.create(make_key("a", "s1"), error)) << error;
    EXPECT_FALSE(reg.create(make_key("a", "s2"), error));
    EXPECT_NE(error.find("already exists"), std::string::npos) << error;
    error.clear();
    EXPECT_FALSE(reg.create(make_key("b", "s1"), error));
    EXPECT_NE(error.find("secret"), std::string::npos) << error;
    EXPECT_EQ(reg.current()->keys.size(), 1U);
}

TEST(KeyRegistryTest, BadInputIsRefused) {
    temp_dir dir;
    key_registry reg(dir.db());
    std::string error;
    EXPECT_FALSE(reg.create(make_key("", "s"), error));
    auto k = make_key("x", "s");
    k.secret_sha256 = "abc";
    EXPECT_FALSE(reg.create(k, error));
    k = make_key("x", "s");
    k.overrides.daily_usd = -1;
    EXPECT_FALSE(reg.create(k, error));
    k = make_key("x", "s");
    k.overrides.rpm = std::numeric_limits<std::uint64_t>::max();
    EXPECT_FALSE(reg.create(k, error));
    EXPECT_TRUE(reg.current()->keys.empty());

    k = make_key("x", "s");
    for (auto& c : k.secret_sha256) {
        c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    }
    ASSERT_TRUE(reg.create(k, error)) << error;
    EXPECT_EQ(reg.find("x")->secret_sha256, sha256_hex("s")); // stored lower case
}

TEST(KeyRegistryTest, UpdateChangesLimitsAndModelsDurably) {
    temp_dir dir;
    {
        key_registry reg(dir.db());
        std::string error;
        ASSERT_TRUE(reg.create(make_key("a", "s1"), error)) << error;
        const auto created = reg.find("a")->created_ms;
        ASSERT_TRUE(reg.update(
            "a",
            [](admin_key& k) {
                k.models = {"claude/*"};
                k.overrides.rpm.reset();
                k.overrides.tpm = 1000;
                k.overrides.monthly_usd = 50;
                k.created_ms = 1;  // ignored
                k.revoked = true;  // ignored
            },
            error))
            << error;
        EXPECT_EQ(reg.find("a")->created_ms, created);
        EXPECT_FALSE(reg.find("a")->revoked);

        EXPECT_FALSE(reg.update("nobody", [](admin_key&) {}, error));
        EXPECT_FALSE(reg.update("a", [](admin_key& k) { k.id = "b"; }, error));
        EXPECT_FALSE(reg.update("a", [](admin_key& k) { k.secret_sha256 = "zz"; }, error));
        ASSERT_TRUE(reg.create(make_key("b", "s2"), error)) << error;
        EXPECT_FALSE(
            reg.update("a", [](admin_key& k) { k.secret_sha256 = sha256_hex("s2"); }, error));
    }
    key_registry reg(dir.db());
    const auto k = reg.find("a");
    ASSERT_TRUE(k);
    EXPECT_EQ(k->models, std::vector<std::string>{"claude/*"});
    EXPECT_FALSE(k->overrides.rpm);
    EXPECT_EQ(k->overrides.tpm, 1000U);
    EXPECT_EQ(k->overrides.monthly_usd, 50.0);
    EXPECT_EQ(k->overrides.daily_usd, 2.5);
    EXPECT_EQ(k->secret_sha256, sha256_hex("s1"));
}

TEST(KeyRegistryTest, RevokeWorksForAnyIdAndPersists) {
    temp_dir dir;
    {
        key_registry reg(dir.db());
        std::string error;
        ASSERT_TRUE(reg.create(make_key("bot", "s1"), error)) << error;
        ASSERT_TRUE(reg.revoke("bot"));
        ASSERT_TRUE(reg.revoke("bot")); // idempotent
        ASSERT_TRUE(reg.revoke("alice-laptop")); // a config-file key
        EXPECT_FALSE(reg.revoke(""));
        EXPECT_FALSE(reg.update("bot", [](admin_key& k) { k.overrides.rpm = 1; }, error));
        EXPECT_FALSE(reg.create(make_key("alice-laptop", "s9"), error)); // ids are not reused
    }
    key_registry reg(dir.db());
    const auto snap = reg.current();
    EXPECT_TRUE(snap->is_revoked("bot"));
    EXPECT_TRUE(snap->is_revoked("alice-laptop"));
    EXPECT_FALSE(snap->is_revoked("someone-else"));
    EXPECT_EQ(snap->revoked.size(), 2U);
    EXPECT_EQ(snap->find_digest(sha256_raw("s1")), nullptr); // no longer authenticates
    ASSERT_EQ(snap->keys.size(), 1U);                         // still listed
    EXPECT_TRUE(snap->keys[0].revoked);
    EXPECT_TRUE(reg.find("bot")->revoked);
    EXPECT_TRUE(reg.find("bot")->as_key_config().secret_sha256.empty());
}

TEST(KeyRegistryTest, WritesPublishNewSnapshotsAndOldOnesStayIntact) {
    temp_dir dir;
    key_registry reg(dir.db());
    const auto before = reg.current();
    std::string error;
    ASSERT_TRUE(reg.create(make_key("a", "s1"), error)) << error;
    const auto after_create = reg.current();
    EXPECT_NE(before, after_create);
    EXPECT_TRUE(before->keys.empty());
    EXPECT_NE(after_create->find_digest(sha256_raw("s1")), nullptr);

    ASSERT_TRUE(reg.revoke("a"));
    const auto after_revoke = reg.current();
    EXPECT_NE(after_create->find_digest(sha256_raw("s1")), nullptr); // old view untouched
    EXPECT_EQ(after_revoke->find_digest(sha256_raw("s1")), nullptr);

    const auto same = reg.current();
    EXPECT_EQ(same, after_revoke); // no write, no new snapshot
}

TEST(KeyRegistryTest, KeysAreListedById) {
    temp_dir dir;
    key_registry reg(dir.db());
    std::string error;
    for (const auto* id : {"c", "a", "b"}) {
        ASSERT_TRUE(reg.create(make_key(id, std::string("s-") + id), error)) << error;
    }
    const auto snap = reg.current();
    ASSERT_EQ(snap->keys.size(), 3U);
    EXPECT_EQ(snap->keys[0].id, "a");
    EXPECT_EQ(snap->keys[1].id, "b");
    EXPECT_EQ(snap->keys[2].id, "c");
    EXPECT_EQ(snap->by_digest.size(), 3U);
}

TEST(KeyRegistryTest, ReloadSeesWritesFromAnotherInstance) {
    temp_dir dir;
    key_registry first(dir.db());
    key_registry second(dir.db());
    std::string error;
    ASSERT_TRUE(first.create(make_key("a", "s1"), error)) << error;
    ASSERT_TRUE(first.revoke("cfg-key"));
    EXPECT_FALSE(second.find("a"));
    ASSERT_TRUE(second.reload());
    EXPECT_TRUE(second.find("a"));
    EXPECT_TRUE(second.current()->is_revoked("cfg-key"));
}

TEST(KeyRegistryTest, ConcurrentReadersAndWriters) {
    temp_dir dir;
    key_registry reg(dir.db());
    std::atomic<bool> stop{false};
    std::thread reader([&] {
        while (!stop.load()) {
            const auto s = reg.current();
            for (const auto& k : s->keys) {
                EXPECT_FALSE(k.id.empty());
            }
        }
    });
    std::string error;
    for (int i = 0; i < 50; ++i) {
        ASSERT_TRUE(reg.create(make_key("k" + std::to_string(i), "s" + std::to_string(i)), error))
            << error;
    }
    stop = true;
    reader.join();
    EXPECT_EQ(reg.current()->keys.size(), 50U);
}

TEST(KeyRegistryTest, UnwritableLocationThrowsNamingThePath) {
    const std::string path = "/proc/michi-no-such-dir/keys.db";
    try {
        key_registry reg(path);
        FAIL() << "expected an exception";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    }
}

} // namespace
} // namespace michi::store
