// The key registry: create / find / update / revoke persist across a reopen, every write
// publishes a new snapshot (old ones stay as they were), revocations of config-file ids are
// listed, duplicates and bad input are refused; registries on one file see each other's
// writes (refresh), and know cheaply when there are some (the change counter).

#include "support/temp_dir.hpp"
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

// The registry's file in a directory it has to make.
std::string db_in(const test::temp_dir& dir) { return (dir.path() / "sub" / "michi.db").string(); }

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
    test::temp_dir dir;
    {
        key_registry reg(db_in(dir));
        std::string error;
        ASSERT_TRUE(reg.create(make_key("bot-1", "mk-agt-secret-1"), error)) << error;
        EXPECT_TRUE(error.empty());
        const auto found = reg.find("bot-1");
        ASSERT_TRUE(found);
        EXPECT_GT(found->created_ms, 0);
        EXPECT_FALSE(found->revoked);
    }
    key_registry reg(db_in(dir));
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
    test::temp_dir dir;
    key_registry reg(db_in(dir));
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
    test::temp_dir dir;
    key_registry reg(db_in(dir));
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
    test::temp_dir dir;
    {
        key_registry reg(db_in(dir));
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
                k.created_ms = 1; // ignored
                k.revoked = true; // ignored
            },
            error))
            << error;
        EXPECT_EQ(reg.find("a")->created_ms, created);
        EXPECT_FALSE(reg.find("a")->revoked);

        EXPECT_FALSE(reg.update(
            "nobody", [](admin_key&) {}, error));
        EXPECT_FALSE(reg.update(
            "a", [](admin_key& k) { k.id = "b"; }, error));
        EXPECT_FALSE(reg.update(
            "a", [](admin_key& k) { k.secret_sha256 = "zz"; }, error));
        ASSERT_TRUE(reg.create(make_key("b", "s2"), error)) << error;
        EXPECT_FALSE(reg.update(
            "a", [](admin_key& k) { k.secret_sha256 = sha256_hex("s2"); }, error));
    }
    key_registry reg(db_in(dir));
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
    test::temp_dir dir;
    {
        key_registry reg(db_in(dir));
        std::string error;
        ASSERT_TRUE(reg.create(make_key("bot", "s1"), error)) << error;
        ASSERT_TRUE(reg.revoke("bot"));
        ASSERT_TRUE(reg.revoke("bot"));          // idempotent
        ASSERT_TRUE(reg.revoke("alice-laptop")); // a config-file key
        EXPECT_FALSE(reg.revoke(""));
        EXPECT_FALSE(reg.update(
            "bot", [](admin_key& k) { k.overrides.rpm = 1; }, error));
        EXPECT_FALSE(reg.create(make_key("alice-laptop", "s9"), error)); // ids are not reused
    }
    key_registry reg(db_in(dir));
    const auto snap = reg.current();
    EXPECT_TRUE(snap->is_revoked("bot"));
    EXPECT_TRUE(snap->is_revoked("alice-laptop"));
    EXPECT_FALSE(snap->is_revoked("someone-else"));
    EXPECT_EQ(snap->revoked.size(), 2U);
    EXPECT_EQ(snap->find_digest(sha256_raw("s1")), nullptr); // no longer authenticates
    ASSERT_EQ(snap->keys.size(), 1U);                        // still listed
    EXPECT_TRUE(snap->keys[0].revoked);
    EXPECT_TRUE(reg.find("bot")->revoked);
    EXPECT_TRUE(reg.find("bot")->as_key_config().secret_sha256.empty());
}

TEST(KeyRegistryTest, WritesPublishNewSnapshotsAndOldOnesStayIntact) {
    test::temp_dir dir;
    key_registry reg(db_in(dir));
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
    test::temp_dir dir;
    key_registry reg(db_in(dir));
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
    test::temp_dir dir;
    key_registry first(db_in(dir));
    key_registry second(db_in(dir));
    std::string error;
    ASSERT_TRUE(first.create(make_key("a", "s1"), error)) << error;
    ASSERT_TRUE(first.revoke("cfg-key"));
    EXPECT_FALSE(second.find("a"));
    ASSERT_TRUE(second.reload());
    EXPECT_TRUE(second.find("a"));
    EXPECT_TRUE(second.current()->is_revoked("cfg-key"));
}

TEST(KeyRegistryTest, ConcurrentReadersAndWriters) {
    test::temp_dir dir;
    key_registry reg(db_in(dir));
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

// The JSON that carries a key between replicas gives back the same key, every field.
TEST(KeyRegistryTest, AKeyGoesToJsonAndBackWhole) {
    auto k = make_key("bot", "mk-agt-secret-one");
    k.overrides.tpm = 1000;
    k.overrides.monthly_usd = 40;
    k.created_ms = 1700000000123;
    std::string why;
    const auto back = key_from_json("bot", key_to_json(k), why);
    ASSERT_TRUE(back.has_value()) << why;
    EXPECT_EQ(key_to_json(*back), key_to_json(k));
    EXPECT_EQ(back->id, "bot");
    EXPECT_EQ(back->cls, config::key_class::agent);
    EXPECT_EQ(back->models, k.models);
    EXPECT_EQ(back->overrides.rpm, 30u);
    EXPECT_EQ(back->overrides.tpm, 1000u);
    EXPECT_EQ(back->overrides.daily_usd, 2.5);
    EXPECT_EQ(back->overrides.monthly_usd, 40.0);
    EXPECT_EQ(back->overrides.loop_max, 7u);
    EXPECT_EQ(back->overrides.loop_window, std::chrono::seconds(90));
    EXPECT_EQ(back->created_ms, 1700000000123);
    EXPECT_FALSE(back->overrides.loop_window == std::nullopt);
}

TEST(KeyRegistryTest, JsonThatIsNotAKeyIsRefusedWithAReason) {
    const std::string digest = sha256_hex("x");
    for (const auto& [text, reason] : std::vector<std::pair<std::string, std::string>>{
             {"[1]", "not a JSON object"},
             {"{", "not a JSON object"},
             {R"({"class":"robot","secret_sha256":")" + digest + R"("})", "unknown class"},
             {R"({"class":"agent","secret_sha256":"abc"})", "secret_sha256 is not 64 hex digits"},
             {R"({"class":"agent","secret_sha256":")" + digest + R"(","models":"x"})",
              "models is not an array"},
             {R"({"class":"agent","secret_sha256":")" + digest + R"(","models":[1]})",
              "models is not an array of strings"}}) {
        std::string why;
        EXPECT_FALSE(key_from_json("k", text, why).has_value()) << text;
        EXPECT_EQ(why, reason) << text;
    }
}

// Keys and revocations from the other replicas are stored and published; a second merge of
// the same changes nothing; a merge never takes a revocation back.
TEST(KeyRegistryTest, MergingSharedKeysStoresThemDurably) {
    test::temp_dir dir;
    {
        key_registry reg(db_in(dir));
        std::string why;
        ASSERT_TRUE(reg.create(make_key("local", "mk-agt-local"), why)) << why;
        ASSERT_TRUE(reg.revoke("gone"));
        auto shared = make_key("remote", "mk-agt-remote");
        shared.created_ms = 5;
        EXPECT_TRUE(reg.merge_shared({shared}, {"old-config-key"}));
        EXPECT_FALSE(reg.merge_shared({shared}, {"old-config-key"}));
        EXPECT_FALSE(reg.merge_shared({}, {}));
        ASSERT_TRUE(reg.find("remote").has_value());
        EXPECT_NE(reg.current()->find_digest(hex_to_raw(sha256_hex("mk-agt-remote"))), nullptr);
        EXPECT_TRUE(reg.current()->is_revoked("old-config-key"));
        EXPECT_TRUE(reg.current()->is_revoked("gone"));
    }
    key_registry reopened(db_in(dir));
    EXPECT_TRUE(reopened.find("remote").has_value());
    EXPECT_TRUE(reopened.find("local").has_value());
    EXPECT_TRUE(reopened.current()->is_revoked("old-config-key"));
}

// Two registries on one file, as two processes: a write by one is seen by the other's
// refresh, and a refresh with nothing new reloads nothing.
// Registries on one file see each other's writes when they refresh; changed_elsewhere(),
// what the request path asks before it authenticates, says cheaply when there are some
// (the counter beside the file), so that a revocation by another process counts from the
// next request on.
TEST(KeyRegistryTest, RefreshSeesWritesOfAnotherRegistryOnTheSameFile) {
    test::temp_dir dir;
    key_registry a(db_in(dir));
    key_registry b(db_in(dir));
    EXPECT_FALSE(b.changed_elsewhere());
    EXPECT_FALSE(b.refresh());
    std::string why;
    ASSERT_TRUE(a.create(make_key("k1", "mk-agt-k1"), why)) << why;
    EXPECT_FALSE(b.find("k1").has_value());
    EXPECT_TRUE(b.changed_elsewhere());
    EXPECT_TRUE(b.refresh());
    EXPECT_FALSE(b.changed_elsewhere());
    EXPECT_TRUE(b.find("k1").has_value());
    EXPECT_FALSE(b.refresh());
    ASSERT_TRUE(a.revoke("k1"));
    EXPECT_TRUE(b.changed_elsewhere());
    EXPECT_TRUE(b.refresh());
    EXPECT_TRUE(b.current()->is_revoked("k1"));
    EXPECT_FALSE(b.changed_elsewhere());
    // Its own writes count too (it cannot tell them apart); a refresh settles the question.
    ASSERT_TRUE(b.create(make_key("k2", "mk-agt-k2"), why)) << why;
    EXPECT_TRUE(b.changed_elsewhere());
    b.refresh();
    EXPECT_FALSE(b.changed_elsewhere());
    EXPECT_TRUE(a.changed_elsewhere());
    // A registry opened later starts settled.
    key_registry c(db_in(dir));
    EXPECT_FALSE(c.changed_elsewhere());
    EXPECT_TRUE(c.find("k2").has_value());
}

TEST(KeyRegistryTest, AnInMemoryRegistryNeverReportsChangesElsewhere) {
    key_registry m(":memory:");
    std::string why;
    ASSERT_TRUE(m.create(make_key("k1", "mk-agt-k1"), why)) << why;
    EXPECT_FALSE(m.changed_elsewhere());
}

TEST(KeyRegistryTest, TheChangeCounterIsSharedThroughItsFile) {
    test::temp_dir dir;
    const auto sub = fs::path(db_in(dir)).parent_path();
    fs::create_directories(sub);
    const std::string path = (sub / "counter").string();
    std::string why;
    change_counter one(path, why);
    ASSERT_TRUE(one.valid()) << why;
    change_counter two(path, why);
    ASSERT_TRUE(two.valid()) << why;
    EXPECT_EQ(one.value(), two.value());
    const auto before = two.value();
    one.bump();
    one.bump();
    EXPECT_EQ(two.value(), before + 2);
    change_counter nowhere("/nonexistent-dir/michi-keys", why);
    EXPECT_FALSE(nowhere.valid());
    EXPECT_NE(why.find("/nonexistent-dir/michi-keys"), std::string::npos) << why;
    EXPECT_EQ(nowhere.value(), 0u);
}

// Once shared, each change is queued for the other replicas, and changes put back after a
// failed send come out again ahead of newer ones.
TEST(KeyRegistryTest, SharedChangesAreQueuedInOrder) {
    test::temp_dir dir;
    key_registry reg(db_in(dir));
    std::string why;
    ASSERT_TRUE(reg.create(make_key("before", "mk-agt-before"), why)) << why;
    EXPECT_TRUE(reg.take_outbox().empty()); // not shared yet
    int woken = 0;
    reg.share([&] { ++woken; });
    ASSERT_TRUE(reg.create(make_key("k1", "mk-agt-k1"), why)) << why;
    ASSERT_TRUE(reg.revoke("k1"));
    EXPECT_EQ(woken, 2);
    auto first = reg.take_outbox();
    ASSERT_EQ(first.size(), 2u);
    EXPECT_EQ(first[0].id, "k1");
    EXPECT_NE(first[0].json.find("\"secret_sha256\""), std::string::npos);
    EXPECT_EQ(first[1].id, "k1");
    EXPECT_TRUE(first[1].json.empty()); // a revocation
    ASSERT_TRUE(reg.revoke("other"));
    reg.put_back(std::move(first));
    // What Redis had of k1 does not replace the change of it waiting to be sent again.
    EXPECT_FALSE(reg.merge_shared({make_key("k1", "mk-agt-stale")}, {}));
    const auto again = reg.take_outbox();
    ASSERT_EQ(again.size(), 3u);
    EXPECT_EQ(again[2].id, "other");
    EXPECT_TRUE(reg.take_outbox().empty());
}

} // namespace
} // namespace michi::store
