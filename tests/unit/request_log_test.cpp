// The request log: rows survive flush and reopen, usage groups by key / model / day with exact
// sums, error and fallback counts and nearest-rank p50/p95, filters by key and time, sees rows
// still buffered, prunes past retention, drops the oldest rows past its cap, and shares one
// file with the spend store and the key registry.

#include "michi/store/key_registry.hpp"
#include "michi/store/request_log.hpp"
#include "michi/store/sqlite_store.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <sched.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace michi::store {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

constexpr auto never = std::chrono::milliseconds(std::chrono::hours(1));
constexpr std::int64_t day_ms = 86400000;
// 2024-03-01T00:00:00Z
constexpr std::int64_t march_1 = 1709251200000;

// A fresh directory under the system temp dir, removed with everything in it.
class temp_dir {
public:
    temp_dir() {
        static std::atomic<int> counter{0};
        path_ = fs::temp_directory_path() / ("michi-reqlog-" + std::to_string(::getpid()) + "-" +
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

obs::access_entry entry(const std::string& key, const std::string& model, unsigned status,
                        double latency, std::uint64_t in, std::uint64_t out, double cost) {
    static std::atomic<int> n{0};
    obs::access_entry e;
    e.request_id = "req-" + std::to_string(n.fetch_add(1));
    e.method = "POST";
    e.path = "/v1/chat/completions";
    e.key_id = key;
    e.key_class = "developer";
    e.route = model;
    e.model = model;
    e.status = status;
    e.attempts = 1;
    e.latency_ms = latency;
    e.ttfb_ms = latency / 2;
    e.tokens_in = in;
    e.tokens_out = out;
    e.cost_usd = cost;
    e.error_code = status >= 400 ? "upstream_error" : "";
    return e;
}

std::map<std::string, usage_row> by_group(const std::vector<usage_row>& rows) {
    std::map<std::string, usage_row> out;
    for (const auto& r : rows) {
        out[r.group] = r;
    }
    return out;
}

// One query on a connection of its own to the file; its rows are read with next().
class file_query {
public:
    file_query(const std::string& path, const char* sql) {
        EXPECT_EQ(sqlite3_open(path.c_str(), &db_), SQLITE_OK);
        EXPECT_EQ(sqlite3_prepare_v2(db_, sql, -1, &stmt_, nullptr), SQLITE_OK)
            << sqlite3_errmsg(db_);
    }
    ~file_query() {
        sqlite3_finalize(stmt_);
        sqlite3_close(db_);
    }
    file_query(const file_query&) = delete;
    file_query& operator=(const file_query&) = delete;

    bool next() { return stmt_ != nullptr && sqlite3_step(stmt_) == SQLITE_ROW; }
    // A text column ("" for NULL).
    std::string text(int column) const {
        const auto* t = sqlite3_column_text(stmt_, column);
        return t == nullptr ? "" : reinterpret_cast<const char*>(t);
    }
    std::int64_t integer(int column) const { return sqlite3_column_int64(stmt_, column); }
    double real(int column) const { return sqlite3_column_double(stmt_, column); }

private:
    sqlite3* db_ = nullptr;
    sqlite3_stmt* stmt_ = nullptr;
};

// Rows in the file, counted on a connection of its own.
std::int64_t count_rows(const std::string& path) {
    file_query q(path, "SELECT COUNT(*) FROM requests");
    return q.next() ? q.integer(0) : -1;
}

std::int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// A small data set: alice on two models over two days, bob once, with known sums.
void fill(request_log& log, std::int64_t base = march_1) {
    log.add(entry("alice", "openai/gpt-4o-mini", 200, 100, 10, 20, 0.5), base + 1000, 0);
    log.add(entry("alice", "openai/gpt-4o-mini", 200, 300, 1, 2, 0.25), base + 2000, 1);
    log.add(entry("alice", "claude/haiku", 502, 200, 5, 0, 0), base + day_ms + 5, 2);
    log.add(entry("bob", "openai/gpt-4o-mini", 429, 50, 7, 0, 0), base + day_ms + 10, 0);
}

TEST(RequestLogTest, GroupsByKeyWithExactSums) {
    temp_dir dir;
    request_log log(dir.db(), never);
    fill(log);
    log.flush();
    const auto rows = log.usage({}, usage_group::key);
    ASSERT_EQ(rows.size(), 2U);
    EXPECT_EQ(rows[0].group, "alice"); // ordered by group
    EXPECT_EQ(rows[1].group, "bob");
    const auto& a = rows[0];
    EXPECT_EQ(a.requests, 3U);
    EXPECT_EQ(a.tokens_in, 16U);
    EXPECT_EQ(a.tokens_out, 22U);
    EXPECT_EQ(a.errors, 1U);
    EXPECT_EQ(a.fallbacks, 3U);
    EXPECT_DOUBLE_EQ(a.cost_usd, 0.75);
    EXPECT_DOUBLE_EQ(a.p50_ms, 200); // 100 200 300
    EXPECT_DOUBLE_EQ(a.p95_ms, 300);
    const auto& b = rows[1];
    EXPECT_EQ(b.requests, 1U);
    EXPECT_EQ(b.tokens_in, 7U);
    EXPECT_EQ(b.tokens_out, 0U);
    EXPECT_EQ(b.errors, 1U);
    EXPECT_EQ(b.fallbacks, 0U);
    EXPECT_DOUBLE_EQ(b.cost_usd, 0);
    EXPECT_DOUBLE_EQ(b.p50_ms, 50);
    EXPECT_DOUBLE_EQ(b.p95_ms, 50);
}

TEST(RequestLogTest, GroupsByModelAndByUtcDay) {
    temp_dir dir;
    request_log log(dir.db(), never);
    fill(log);
    const auto models = by_group(log.usage({}, usage_group::model));
    ASSERT_EQ(models.size(), 2U);
    EXPECT_EQ(models.at("openai/gpt-4o-mini").requests, 3U);
    EXPECT_EQ(models.at("openai/gpt-4o-mini").tokens_in, 18U);
    EXPECT_EQ(models.at("openai/gpt-4o-mini").errors, 1U);
    EXPECT_EQ(models.at("openai/gpt-4o-mini").fallbacks, 1U);
    EXPECT_DOUBLE_EQ(models.at("openai/gpt-4o-mini").cost_usd, 0.75);
    EXPECT_EQ(models.at("claude/haiku").requests, 1U);
    EXPECT_EQ(models.at("claude/haiku").fallbacks, 2U);

    const auto days = log.usage({}, usage_group::day);
    ASSERT_EQ(days.size(), 2U);
    EXPECT_EQ(days[0].group, "2024-03-01");
    EXPECT_EQ(days[0].requests, 2U);
    EXPECT_EQ(days[0].tokens_out, 22U);
    EXPECT_EQ(days[0].errors, 0U);
    EXPECT_EQ(days[1].group, "2024-03-02");
    EXPECT_EQ(days[1].requests, 2U);
    EXPECT_EQ(days[1].errors, 2U);
    EXPECT_DOUBLE_EQ(days[1].p50_ms, 50);
    EXPECT_DOUBLE_EQ(days[1].p95_ms, 200);
}

TEST(RequestLogTest, PercentilesAreNearestRank) {
    temp_dir dir;
    request_log log(dir.db(), never);
    // 1..100 in a shuffled order for "k100", 1..10 for "k10", 1..20 for "k20".
    for (int i = 0; i < 100; ++i) {
        const int v = (i * 37) % 100 + 1;
        log.add(entry("k100", "m", 200, v, 0, 0, 0), march_1 + i, 0);
    }
    for (int v = 10; v >= 1; --v) {
        log.add(entry("k10", "m", 200, v, 0, 0, 0), march_1, 0);
    }
    for (int v = 1; v <= 20; ++v) {
        log.add(entry("k20", "m", 200, v * 1.5, 0, 0, 0), march_1, 0);
    }
    const auto g = by_group(log.usage({}, usage_group::key));
    EXPECT_DOUBLE_EQ(g.at("k100").p50_ms, 50);
    EXPECT_DOUBLE_EQ(g.at("k100").p95_ms, 95);
    EXPECT_DOUBLE_EQ(g.at("k10").p50_ms, 5);    // rank ceil(5) = 5
    EXPECT_DOUBLE_EQ(g.at("k10").p95_ms, 10);   // rank ceil(9.5) = 10
    EXPECT_DOUBLE_EQ(g.at("k20").p50_ms, 15);   // rank 10 -> 10 * 1.5
    EXPECT_DOUBLE_EQ(g.at("k20").p95_ms, 28.5); // rank 19 -> 19 * 1.5
}

TEST(RequestLogTest, FiltersByKeySinceAndUntil) {
    temp_dir dir;
    request_log log(dir.db(), never);
    fill(log);
    usage_filter f;
    f.key = "alice";
    auto rows = log.usage(f, usage_group::model);
    ASSERT_EQ(rows.size(), 2U);
    EXPECT_EQ(by_group(rows).at("openai/gpt-4o-mini").requests, 2U);

    f = {};
    f.since_ms = march_1 + 2000; // inclusive
    rows = log.usage(f, usage_group::key);
    auto g = by_group(rows);
    EXPECT_EQ(g.at("alice").requests, 2U);
    EXPECT_EQ(g.at("bob").requests, 1U);

    f = {};
    f.until_ms = march_1 + day_ms + 10; // exclusive: bob's row is out
    rows = log.usage(f, usage_group::key);
    ASSERT_EQ(rows.size(), 1U);
    EXPECT_EQ(rows[0].group, "alice");
    EXPECT_EQ(rows[0].requests, 3U);

    f = {};
    f.key = "alice";
    f.since_ms = march_1 + 1500;
    f.until_ms = march_1 + day_ms;
    rows = log.usage(f, usage_group::day);
    ASSERT_EQ(rows.size(), 1U);
    EXPECT_EQ(rows[0].requests, 1U);
    EXPECT_DOUBLE_EQ(rows[0].p50_ms, 300);

    f = {};
    f.key = "nobody";
    EXPECT_TRUE(log.usage(f, usage_group::key).empty());
}

TEST(RequestLogTest, UsageSeesRowsStillBuffered) {
    temp_dir dir;
    request_log log(dir.db(), never);
    fill(log);
    EXPECT_EQ(count_rows(dir.db()), 0); // nothing written yet
    const auto rows = log.usage({}, usage_group::key);
    ASSERT_EQ(rows.size(), 2U);
    EXPECT_EQ(count_rows(dir.db()), 4);
}

TEST(RequestLogTest, ReopenKeepsRowsAndDestructorFlushes) {
    temp_dir dir;
    {
        request_log log(dir.db(), never);
        fill(log);
        log.flush();
        log.add(entry("carol", "m", 200, 1, 1, 1, 1), march_1, 0); // written by the destructor
    }
    request_log log(dir.db(), never);
    const auto g = by_group(log.usage({}, usage_group::key));
    ASSERT_EQ(g.size(), 3U);
    EXPECT_EQ(g.at("alice").requests, 3U);
    EXPECT_EQ(g.at("carol").requests, 1U);
}

TEST(RequestLogTest, WriterThreadPersistsWithoutFlush) {
    temp_dir dir;
    request_log log(dir.db(), 20ms);
    fill(log, now_ms() - 2 * day_ms); // inside the retention: the writer's prune keeps them
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (count_rows(dir.db()) != 4 && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(10ms);
    }
    EXPECT_EQ(count_rows(dir.db()), 4);
}

// A thousand rows waiting wake the writer long before its interval (an hour here) is up:
// under load the rows go out in short bursts, not in one long one per interval.
TEST(RequestLogTest, AThousandRowsWaitingAreWrittenBeforeTheInterval) {
    temp_dir dir;
    request_log log(dir.db(), std::chrono::hours(1));
    const auto base = now_ms() - day_ms;
    for (int i = 0; i < 1023; ++i) {
        log.add(entry("alice", "openai/gpt-4o-mini", 200, 10, 1, 1, 0.001), base + i, 0);
    }
    EXPECT_EQ(count_rows(dir.db()), 0); // 1023 rows: still waiting for the interval
    log.add(entry("alice", "openai/gpt-4o-mini", 200, 10, 1, 1, 0.001), base + 1023, 0);
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (count_rows(dir.db()) != 1024 && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(10ms);
    }
    EXPECT_EQ(count_rows(dir.db()), 1024);
}

TEST(RequestLogTest, PruneDeletesRowsPastRetention) {
    temp_dir dir;
    request_log log(dir.db(), never, 24h);
    const std::int64_t now = march_1 + 10 * day_ms;
    log.add(entry("old", "m", 200, 1, 1, 1, 1), now - 3 * day_ms, 0);
    log.add(entry("old", "m", 200, 1, 1, 1, 1), now - day_ms - 1, 0);
    log.add(entry("new", "m", 200, 1, 1, 1, 1), now - day_ms, 0); // exactly at the cutoff
    log.add(entry("new", "m", 200, 1, 1, 1, 1), now, 0);
    log.flush();
    EXPECT_EQ(log.prune(now), 2U);
    EXPECT_EQ(log.prune(now), 0U);
    const auto rows = log.usage({}, usage_group::key);
    ASSERT_EQ(rows.size(), 1U);
    EXPECT_EQ(rows[0].group, "new");
    EXPECT_EQ(rows[0].requests, 2U);
}

TEST(RequestLogTest, WriterThreadPrunesOnItsFirstTick) {
    temp_dir dir;
    const auto now = now_ms();
    {
        request_log log(dir.db(), never, 1h);
        log.add(entry("old", "m", 200, 1, 1, 1, 1), now - 2 * 3600000, 0);
        log.add(entry("new", "m", 200, 1, 1, 1, 1), now, 0);
    }
    ASSERT_EQ(count_rows(dir.db()), 2);
    request_log log(dir.db(), 20ms, 1h);
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (count_rows(dir.db()) != 1 && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(10ms);
    }
    EXPECT_EQ(count_rows(dir.db()), 1);
}

TEST(RequestLogTest, FullBufferDropsTheOldestRows) {
    temp_dir dir;
    request_log log(dir.db(), never, 24h, 3);
    for (int i = 0; i < 5; ++i) {
        log.add(entry("k" + std::to_string(i), "m", 200, 1, 1, 1, 1), march_1, 0);
    }
    EXPECT_EQ(log.dropped(), 2U);
    const auto rows = log.usage({}, usage_group::key);
    ASSERT_EQ(rows.size(), 3U);
    EXPECT_EQ(rows[0].group, "k2");
    EXPECT_EQ(rows[2].group, "k4");
}

// Far past the cap the buffer still holds exactly the newest rows, every string intact.
TEST(RequestLogTest, LongPastTheCapTheNewestRowsKeepTheirStrings) {
    temp_dir dir;
    constexpr int cap = 100;
    constexpr int n = 1000;
    {
        request_log log(dir.db(), never, 24h, cap);
        for (int i = 0; i < n; ++i) {
            auto e =
                entry("key-" + std::to_string(i), "model-" + std::to_string(i), 200, 1, 1, 1, 1);
            e.request_id = "request-" + std::to_string(i);
            log.add(e, march_1 + i, 0);
        }
        EXPECT_EQ(log.dropped(), static_cast<std::uint64_t>(n - cap));
    }
    file_query q(dir.db(), "SELECT id, key_id, model FROM requests ORDER BY ts_ms");
    int i = n - cap;
    for (; q.next(); ++i) {
        EXPECT_EQ(q.text(0), "request-" + std::to_string(i));
        EXPECT_EQ(q.text(1), "key-" + std::to_string(i));
        EXPECT_EQ(q.text(2), "model-" + std::to_string(i));
    }
    EXPECT_EQ(i, n);
}

// A batch that cannot be written stays buffered, ahead of the rows added meanwhile, and
// goes in whole once writing works again.
TEST(RequestLogTest, AFailedWriteKeepsTheRowsInOrderForTheNextOne) {
    temp_dir dir;
    request_log log(dir.db(), never);
    log.add(entry("first", "m", 200, 1, 1, 1, 1), march_1 + 1, 0);
    log.add(entry("second", "m", 200, 1, 1, 1, 1), march_1 + 2, 0);
    const auto other_connection = [&](const char* sql) {
        sqlite3* db = nullptr;
        ASSERT_EQ(sqlite3_open(dir.db().c_str(), &db), SQLITE_OK);
        EXPECT_EQ(sqlite3_exec(db, sql, nullptr, nullptr, nullptr), SQLITE_OK)
            << sqlite3_errmsg(db);
        sqlite3_close(db);
    };
    other_connection("ALTER TABLE requests RENAME TO parked");
    log.flush(); // fails: no table to insert into
    log.add(entry("third", "m", 200, 1, 1, 1, 1), march_1 + 3, 0);
    other_connection("ALTER TABLE parked RENAME TO requests");
    EXPECT_EQ(count_rows(dir.db()), 0);
    log.flush();
    file_query q(dir.db(), "SELECT key_id, ts_ms FROM requests ORDER BY rowid");
    std::vector<std::string> keys;
    while (q.next()) {
        keys.push_back(q.text(0) + "@" + std::to_string(q.integer(1) - march_1));
    }
    EXPECT_EQ(keys, (std::vector<std::string>{"first@1", "second@2", "third@3"}));
    EXPECT_EQ(log.dropped(), 0U);
}

TEST(RequestLogTest, StoresNoPromptAndTheListedColumns) {
    temp_dir dir;
    {
        request_log log(dir.db(), never);
        auto e = entry("alice", "openai/gpt-4o-mini", 502, 12.5, 3, 4, 0.01);
        e.route = "default";
        e.attempts = 3;
        log.add(e, march_1, 2);
    }
    file_query q(dir.db(), "SELECT key_class, route, model, status, attempts, fallbacks, "
                           "latency_ms, ttfb_ms, error, ts_ms FROM requests");
    ASSERT_TRUE(q.next());
    EXPECT_EQ(q.text(0), "developer");
    EXPECT_EQ(q.text(1), "default");
    EXPECT_EQ(q.text(2), "openai/gpt-4o-mini");
    EXPECT_EQ(q.integer(3), 502);
    EXPECT_EQ(q.integer(4), 3);
    EXPECT_EQ(q.integer(5), 2);
    EXPECT_DOUBLE_EQ(q.real(6), 12.5);
    EXPECT_DOUBLE_EQ(q.real(7), 6.25);
    EXPECT_EQ(q.text(8), "upstream_error");
    EXPECT_EQ(q.integer(9), march_1);
}

// The indexes of earlier versions (per key, then on time) cost each written row a B-tree
// insert; a file that has them loses them on open and keeps its rows, and queries by key and
// by time still answer, the time ranges from the minutes made of the rows it had.
TEST(RequestLogTest, DropsTheOldIndexesAndKeepsTheRows) {
    temp_dir dir;
    fs::create_directories(fs::path(dir.db()).parent_path());
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(dir.db().c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db,
                           "CREATE TABLE requests (id TEXT, ts_ms INTEGER, key_id TEXT, "
                           "key_class TEXT, route TEXT, model TEXT, status INTEGER, attempts "
                           "INTEGER, fallbacks INTEGER, latency_ms REAL, ttfb_ms REAL, tokens_in "
                           "INTEGER, tokens_out INTEGER, cost_usd REAL, error TEXT);"
                           "CREATE INDEX requests_key_id ON requests (key_id);"
                           "CREATE INDEX requests_ts_ms ON requests (ts_ms);"
                           "INSERT INTO requests (id, ts_ms, key_id, model, status, tokens_in) "
                           "VALUES ('r1', 1709251200000, 'alice', 'm', 200, 7),"
                           "('r2', 1709251260000, 'alice', 'm', 200, 70);",
                           nullptr, nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(db);

    request_log log(dir.db(), never);
    log.add(entry("bob", "m", 200, 1, 1, 1, 1), march_1, 0);
    usage_filter only_alice;
    only_alice.key = "alice";
    const auto rows = log.usage(only_alice, usage_group::key);
    ASSERT_EQ(rows.size(), 1U);
    EXPECT_EQ(rows[0].group, "alice");
    EXPECT_EQ(rows[0].tokens_in, 77U);
    usage_filter second_minute;
    second_minute.since_ms = 1709251260000;
    second_minute.until_ms = 1709251260001;
    const auto r2 = log.usage(second_minute, usage_group::key);
    ASSERT_EQ(r2.size(), 1U);
    EXPECT_EQ(r2[0].tokens_in, 70U);

    file_query q(dir.db(), "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND "
                           "tbl_name = 'requests'");
    ASSERT_TRUE(q.next());
    EXPECT_EQ(q.integer(0), 0);
}

// Cached, cache-write and reasoning tokens and what caching saved are columns of their own; a
// file from before them gets them when it is opened (its old rows count 0) and keeps its rows.
TEST(RequestLogTest, CacheColumnsAreAddedToAnOlderFile) {
    temp_dir dir;
    fs::create_directories(fs::path(dir.db()).parent_path());
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(dir.db().c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db,
                           "CREATE TABLE requests (id TEXT, ts_ms INTEGER, key_id TEXT, "
                           "key_class TEXT, route TEXT, model TEXT, status INTEGER, attempts "
                           "INTEGER, fallbacks INTEGER, latency_ms REAL, ttfb_ms REAL, tokens_in "
                           "INTEGER, tokens_out INTEGER, cost_usd REAL, error TEXT);"
                           "INSERT INTO requests (id, ts_ms, key_id, model, status, tokens_in, "
                           "tokens_out, cost_usd) VALUES ('old', 1709251200000, 'alice', 'm', "
                           "200, 1000, 10, 0.5);",
                           nullptr, nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(db);

    {
        request_log log(dir.db(), never);
        auto e = entry("alice", "m", 200, 1, 100000, 1000, 0.072);
        e.tokens_cache_read = 90000;
        e.tokens_cache_write = 500;
        e.tokens_reasoning = 300;
        e.cache_saved_usd = 0.243;
        log.add(e, march_1 + 1, 0);
        const auto rows = by_group(log.usage({}, usage_group::key));
        const usage_row& alice = rows.at("alice");
        EXPECT_EQ(alice.requests, 2U);
        EXPECT_EQ(alice.tokens_in, 101000U);
        EXPECT_EQ(alice.tokens_cache_read, 90000U);
        EXPECT_EQ(alice.tokens_cache_write, 500U);
        EXPECT_EQ(alice.tokens_reasoning, 300U);
        EXPECT_DOUBLE_EQ(alice.cost_usd, 0.572);
        EXPECT_DOUBLE_EQ(alice.cache_saved_usd, 0.243);
    }
    // Opened again (the columns there already), the rows are as they were.
    request_log again(dir.db(), never);
    file_query q(dir.db(), "SELECT id, tokens_cache_read, tokens_cache_write, tokens_reasoning, "
                           "cache_saved_usd FROM requests ORDER BY rowid");
    ASSERT_TRUE(q.next());
    EXPECT_EQ(q.text(0), "old");
    EXPECT_EQ(q.integer(1), 0);
    EXPECT_DOUBLE_EQ(q.real(4), 0.0);
    ASSERT_TRUE(q.next());
    EXPECT_EQ(q.integer(1), 90000);
    EXPECT_EQ(q.integer(2), 500);
    EXPECT_EQ(q.integer(3), 300);
    EXPECT_DOUBLE_EQ(q.real(4), 0.243);
    EXPECT_FALSE(q.next());
}

// Time ranges are exact to the millisecond wherever they cut a minute, with the rows of a
// minute written in several batches and out of time order (a long request is logged when it
// ends, with the time it began).
TEST(RequestLogTest, TimeRangesAreExactAcrossMinutesAndBatches) {
    temp_dir dir;
    request_log log(dir.db(), never);
    const std::int64_t t0 = march_1; // a minute's start
    const std::int64_t times[] = {t0 + 59999, t0 + 60000, t0 + 5,    t0 + 120001,
                                  t0 - 1,     t0 + 60001, t0 + 30000};
    int i = 0;
    for (const auto t : times) {
        log.add(entry("k", "m", 200, 1, 1, 1, 1), t, 0);
        if (++i % 3 == 0) {
            log.flush(); // batches of three, then one of one
        }
    }
    log.flush();
    const auto count = [&](std::optional<std::int64_t> since, std::optional<std::int64_t> until) {
        usage_filter f;
        f.since_ms = since;
        f.until_ms = until;
        const auto rows = log.usage(f, usage_group::key);
        return rows.empty() ? 0U : rows[0].requests;
    };
    const auto expected = [&](std::optional<std::int64_t> since,
                              std::optional<std::int64_t> until) {
        std::uint64_t n = 0;
        for (const auto t : times) {
            n += (!since || t >= *since) && (!until || t < *until) ? 1 : 0;
        }
        return n;
    };
    for (const std::int64_t since : {t0 - 2, t0 - 1, t0, t0 + 6, t0 + 59999, t0 + 60000, t0 + 60002,
                                     t0 + 120001, t0 + 120002}) {
        EXPECT_EQ(count(since, std::nullopt), expected(since, std::nullopt)) << since - t0;
        for (const std::int64_t until :
             {t0, t0 + 1, t0 + 6, t0 + 60000, t0 + 60001, t0 + 120001, t0 + 120002}) {
            EXPECT_EQ(count(since, until), expected(since, until))
                << since - t0 << " " << until - t0;
        }
    }
    EXPECT_EQ(count(std::nullopt, t0 + 60000), expected(std::nullopt, t0 + 60000));
    // Pruning cuts at the millisecond too, and a second prune finds nothing more.
    log.prune(t0 + 60001 + 720LL * 3600 * 1000);
    EXPECT_EQ(count(std::nullopt, std::nullopt), 2U); // t0 + 60001 and t0 + 120001 stay
    EXPECT_EQ(log.prune(t0 + 60001 + 720LL * 3600 * 1000), 0U);
}

// Rows are written sixteen to an insert while there are as many; every column of every row,
// in a batch of 35 (two bulk inserts and three single ones), is what was added.
TEST(RequestLogTest, ABigBatchKeepsEveryColumnOfEveryRow) {
    temp_dir dir;
    constexpr int n = 35;
    {
        request_log log(dir.db(), never);
        for (int i = 0; i < n; ++i) {
            auto e =
                entry("k" + std::to_string(i), "m" + std::to_string(i), 200 + i, i + 0.5,
                      static_cast<std::uint64_t>(i), static_cast<std::uint64_t>(2 * i), i * 0.25);
            e.request_id = "r" + std::to_string(i);
            e.attempts = static_cast<unsigned>(i % 4);
            log.add(e, march_1 + i, static_cast<unsigned>(i % 3));
        }
        log.flush();
    }
    file_query q(dir.db(), "SELECT id, ts_ms, key_id, model, status, attempts, fallbacks, "
                           "latency_ms, tokens_in, tokens_out, cost_usd FROM requests "
                           "ORDER BY ts_ms");
    int i = 0;
    for (; q.next(); ++i) {
        EXPECT_EQ(q.text(0), "r" + std::to_string(i));
        EXPECT_EQ(q.integer(1), march_1 + i);
        EXPECT_EQ(q.text(2), "k" + std::to_string(i));
        EXPECT_EQ(q.text(3), "m" + std::to_string(i));
        EXPECT_EQ(q.integer(4), 200 + i);
        EXPECT_EQ(q.integer(5), i % 4);
        EXPECT_EQ(q.integer(6), i % 3);
        EXPECT_DOUBLE_EQ(q.real(7), i + 0.5);
        EXPECT_EQ(q.integer(8), i);
        EXPECT_EQ(q.integer(9), 2 * i);
        EXPECT_DOUBLE_EQ(q.real(10), i * 0.25);
    }
    EXPECT_EQ(i, n);
}

// Each of the 21 columns gets its own value with the type it always had: text, integer or
// real, an empty error as '' (not NULL), zeros in the cache columns of a row without them.
TEST(RequestLogTest, EveryColumnKeepsItsValueAndType) {
    temp_dir dir;
    {
        request_log log(dir.db(), never);
        auto e = entry("key", "prov/model", 201, 12.5, 7, 8, 0.125);
        e.request_id = "req_1";
        e.key_class = "application";
        e.route = "route-a";
        e.attempts = 3;
        e.ttfb_ms = 4.5;
        e.error_code = "upstream_error";
        e.tokens_cache_read = 5;
        e.tokens_cache_write = 6;
        e.tokens_reasoning = 2;
        e.cache_saved_usd = 0.0625;
        e.response_cache = "hit";
        e.response_cache_saved_usd = 0.03125;
        log.add(e, march_1 + 1, 2);
        log.add(entry("plain", "m", 200, 1, 1, 1, 1), march_1 + 2, 0);
        log.flush();
    }
    file_query q(dir.db(), "SELECT quote(id), quote(ts_ms), quote(key_id), quote(key_class), "
                           "quote(route), quote(model), quote(status), quote(attempts), "
                           "quote(fallbacks), quote(latency_ms), quote(ttfb_ms), "
                           "quote(tokens_in), quote(tokens_out), quote(cost_usd), quote(error), "
                           "quote(tokens_cache_read), quote(tokens_cache_write), "
                           "quote(tokens_reasoning), quote(cache_saved_usd), "
                           "quote(response_cache_hit), quote(response_cache_saved_usd) "
                           "FROM requests ORDER BY rowid");
    const auto row = [&] {
        std::string out;
        for (int c = 0; c < 21; ++c) {
            out += (c == 0 ? "" : "|") + q.text(c);
        }
        return out;
    };
    ASSERT_TRUE(q.next());
    EXPECT_EQ(row(), "'req_1'|1709251200001|'key'|'application'|'route-a'|'prov/model'|201|3|2|"
                     "12.5|4.5|7|8|0.125|'upstream_error'|5|6|2|0.0625|1|0.03125");
    ASSERT_TRUE(q.next());
    const auto plain = row();
    EXPECT_NE(plain.find("|''|0|0|0|0.0|0|0.0"), std::string::npos) << plain;
    EXPECT_FALSE(q.next());
}

// Threads of this process under SCHED_BATCH.
int batch_threads() {
    int n = 0;
    for (const auto& task : fs::directory_iterator("/proc/self/task")) {
        const auto tid = static_cast<pid_t>(std::stol(task.path().filename().string()));
        n += sched_getscheduler(tid) == SCHED_BATCH ? 1 : 0;
    }
    return n;
}

// The writer thread gives way to the event loops: it runs under batch scheduling.
TEST(RequestLogTest, WriterThreadRunsUnderBatchScheduling) {
    temp_dir dir;
    const int before = batch_threads();
    request_log log(dir.db(), never);
    EXPECT_EQ(batch_threads(), before + 1);
}

TEST(RequestLogTest, SharesOneFileWithTheOtherStores) {
    temp_dir dir;
    {
        sqlite_store spend(dir.db(), never);
        request_log log(dir.db(), never);
        key_registry keys(dir.db());
        spend.add("alice", "2024-03-01", 1.5);
        fill(log);
        ASSERT_TRUE(keys.revoke("alice"));
    }
    sqlite_store spend(dir.db(), never);
    request_log log(dir.db(), never);
    key_registry keys(dir.db());
    ASSERT_EQ(spend.load().size(), 1U);
    EXPECT_EQ(log.usage({}, usage_group::key).size(), 2U);
    EXPECT_TRUE(keys.current()->is_revoked("alice"));
}

TEST(RequestLogTest, InMemoryDatabaseWorks) {
    request_log log(":memory:", never);
    fill(log);
    EXPECT_EQ(log.usage({}, usage_group::key).size(), 2U);
}

TEST(RequestLogTest, UnwritableLocationThrowsNamingThePath) {
    const std::string path = "/proc/michi-no-such-dir/requests.db";
    try {
        request_log log(path, never);
        FAIL() << "expected an exception";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    }
}

} // namespace
} // namespace michi::store
