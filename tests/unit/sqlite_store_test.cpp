// The SQLite spend store: sums survive a reopen, concurrent adds are exact, the destructor
// and the writer thread persist without an explicit flush, a failed batch is kept and retried
// whole, a crash loses only what was not flushed yet, and open failures name the path.

#include "michi/store/sqlite_store.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace michi::store {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

constexpr auto never = std::chrono::milliseconds(std::chrono::hours(1));

// A fresh directory under the system temp dir, removed with everything in it.
class temp_dir {
public:
    temp_dir() {
        static std::atomic<int> counter{0};
        path_ = fs::temp_directory_path() / ("michi-sqlite-" + std::to_string(::getpid()) + "-" +
                                             std::to_string(counter.fetch_add(1)));
        fs::remove_all(path_);
    }
    ~temp_dir() {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;

    // The directory itself is not created: the store must create it.
    std::string db() const { return (path_ / "sub" / "spend.db").string(); }
    const fs::path& path() const { return path_; }

private:
    fs::path path_;
};

using sums = std::map<std::pair<std::string, std::string>, double>;

sums by_key(const std::vector<spend_row>& rows) {
    sums out;
    for (const auto& r : rows) {
        out[{r.key_id, r.period}] += r.usd;
    }
    return out;
}

// Runs sql on a connection of its own (another process would see the file the same way).
void exec_other(const std::string& path, const char* sql) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    char* err = nullptr;
    const int rc = sqlite3_exec(db, sql, nullptr, nullptr, &err);
    const std::string msg = err != nullptr ? err : "";
    sqlite3_free(err);
    sqlite3_close(db);
    ASSERT_EQ(rc, SQLITE_OK) << msg;
}

TEST(SqliteStoreTest, AddFlushThenReopenLoadsTheSums) {
    temp_dir dir;
    {
        sqlite_store s(dir.db(), never);
        EXPECT_TRUE(s.load().empty());
        s.add("k1", "d:2025-01-02", 0.5);
        s.add("k1", "d:2025-01-02", 0.25);
        s.add("k1", "m:2025-01", 0.75);
        s.add("k2", "d:2025-01-02", 1.0);
        s.flush();
        // A second batch on top of persisted rows goes through the upsert's update path.
        s.add("k1", "d:2025-01-02", 2.0);
        s.flush();
    }
    EXPECT_TRUE(fs::exists(dir.db()));
    sqlite_store again(dir.db(), never);
    const auto got = by_key(again.load());
    const sums want{
        {{"k1", "d:2025-01-02"}, 2.75}, {{"k1", "m:2025-01"}, 0.75}, {{"k2", "d:2025-01-02"}, 1.0}};
    EXPECT_EQ(got, want);
    EXPECT_EQ(again.load().size(), 3u); // one row per (key_id, period)
}

// The page size of a database file, read on a connection of its own.
long page_size_of(const std::string& path) {
    sqlite3* db = nullptr;
    long size = -1;
    if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
        sqlite3_stmt* st = nullptr;
        if (sqlite3_prepare_v2(db, "PRAGMA page_size", -1, &st, nullptr) == SQLITE_OK &&
            sqlite3_step(st) == SQLITE_ROW) {
            size = sqlite3_column_int(st, 0);
        }
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return size;
}

TEST(SqliteStoreTest, ANewFileGetsSixteenKilobytePages) {
    temp_dir dir;
    {
        sqlite_store s(dir.db(), never);
        s.add("k1", "d:2025-01-02", 0.5);
        s.flush();
    }
    EXPECT_EQ(page_size_of(dir.db()), 16384);
}

// A file an earlier version made (SQLite's default 4 KiB pages, WAL mode) opens as it is:
// its pages stay 4 KiB and its sums load and grow.
TEST(SqliteStoreTest, AFileWithFourKilobytePagesKeepsThemAndItsSums) {
    temp_dir dir;
    fs::create_directories(fs::path(dir.db()).parent_path());
    exec_other(dir.db(), "PRAGMA page_size=4096; PRAGMA journal_mode=WAL;");
    {
        sqlite_store s(dir.db(), never);
        s.add("k1", "d:2025-01-02", 0.5);
        s.flush();
    }
    ASSERT_EQ(page_size_of(dir.db()), 4096);
    sqlite_store again(dir.db(), never);
    again.add("k1", "d:2025-01-02", 0.25);
    again.flush();
    const sums want{{{"k1", "d:2025-01-02"}, 0.75}};
    EXPECT_EQ(by_key(again.load()), want);
    EXPECT_EQ(page_size_of(dir.db()), 4096);
}

TEST(SqliteStoreTest, OneChargeToBothWindowsLandsInEachRow) {
    temp_dir dir;
    sqlite_store s(dir.db(), never);
    s.add("k1", "d:2025-01-02", "m:2025-01", 0.5);
    s.add("k1", "d:2025-01-03", "m:2025-01", 0.25); // a new day, the same month
    s.add("k2", "d:2025-01-02", "m:2025-01", 1.0);
    s.add("k1", "d:2025-01-02", "m:2025-01", std::numeric_limits<double>::infinity());
    s.flush();
    const sums want{{{"k1", "d:2025-01-02"}, 0.5},
                    {{"k1", "d:2025-01-03"}, 0.25},
                    {{"k1", "m:2025-01"}, 0.75},
                    {{"k2", "d:2025-01-02"}, 1.0},
                    {{"k2", "m:2025-01"}, 1.0}};
    EXPECT_EQ(by_key(s.load()), want);
}

TEST(SqliteStoreTest, LoadShowsOnlyPersistedRows) {
    temp_dir dir;
    sqlite_store s(dir.db(), never);
    s.add("k", "d:2025-01-02", 1.0);
    EXPECT_TRUE(s.load().empty()); // still buffered
    s.flush();
    EXPECT_EQ(s.load().size(), 1u);
}

TEST(SqliteStoreTest, ConcurrentAddsSumExactly) {
    temp_dir dir;
    constexpr int threads = 4;
    constexpr int per_thread = 2000;
    {
        // A 1 ms interval keeps the writer thread swapping batches while the adds run.
        sqlite_store s(dir.db(), 1ms);
        std::vector<std::thread> pool;
        for (int t = 0; t < threads; ++t) {
            pool.emplace_back([&s, t] {
                for (int i = 0; i < per_thread; ++i) {
                    // 0.25 and 0.5 are exact in binary, so the sums must be exact too.
                    s.add("shared", "d:2025-01-02", 0.25);
                    s.add("k" + std::to_string(t), "m:2025-01", 0.5);
                }
            });
        }
        for (auto& th : pool) {
            th.join();
        }
        s.flush();
    }
    sqlite_store again(dir.db(), never);
    const auto got = by_key(again.load());
    ASSERT_EQ(got.size(), static_cast<std::size_t>(threads + 1));
    EXPECT_EQ(got.at({"shared", "d:2025-01-02"}), 0.25 * threads * per_thread);
    for (int t = 0; t < threads; ++t) {
        EXPECT_EQ(got.at({"k" + std::to_string(t), "m:2025-01"}), 0.5 * per_thread);
    }
}

TEST(SqliteStoreTest, DestructorFlushes) {
    temp_dir dir;
    {
        sqlite_store s(dir.db(), never);
        s.add("k", "d:2025-01-02", 3.5);
    }
    sqlite_store again(dir.db(), never);
    const auto rows = again.load();
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(rows[0].key_id, "k");
    EXPECT_EQ(rows[0].period, "d:2025-01-02");
    EXPECT_EQ(rows[0].usd, 3.5);
}

TEST(SqliteStoreTest, WriterThreadPersistsWithoutFlush) {
    temp_dir dir;
    sqlite_store writer(dir.db(), 50ms);
    sqlite_store reader(dir.db(), never); // a second connection on the same file
    writer.add("k", "d:2025-01-02", 1.25);

    std::optional<spend_row> seen;
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (!seen && std::chrono::steady_clock::now() < deadline) {
        const auto rows = reader.load();
        if (!rows.empty()) {
            seen = rows.front();
        } else {
            std::this_thread::sleep_for(10ms); // poll interval, not synchronisation
        }
    }
    ASSERT_TRUE(seen.has_value()) << "the writer thread did not persist within 5 s";
    EXPECT_EQ(seen->key_id, "k");
    EXPECT_EQ(seen->usd, 1.25);
}

TEST(SqliteStoreTest, FailedBatchIsKeptAndRetriedWhole) {
    temp_dir dir;
    sqlite_store s(dir.db(), never);
    // Another connection makes every insert of key "bad" fail.
    exec_other(dir.db(), "CREATE TRIGGER fail_bad BEFORE INSERT ON spend "
                         "WHEN NEW.key_id = 'bad' BEGIN SELECT RAISE(ABORT, 'injected'); END");
    s.add("good", "d:2025-01-02", 1.0);
    s.add("bad", "d:2025-01-02", 2.0);
    s.flush(); // fails: logged, nothing written, batch kept
    EXPECT_TRUE(s.load().empty()) << "a failed batch must roll back as a whole";

    s.add("good", "d:2025-01-02", 0.5); // merged with the kept batch
    exec_other(dir.db(), "DROP TRIGGER fail_bad");
    s.flush();
    const auto got = by_key(s.load());
    const sums want{{{"good", "d:2025-01-02"}, 1.5}, {{"bad", "d:2025-01-02"}, 2.0}};
    EXPECT_EQ(got, want);
}

// A crash loses at most flush_interval of charges: what was flushed before the process died
// without running any destructor is there; what was only buffered is not.
TEST(SqliteStoreTest, CrashLosesOnlyUnflushedCharges) {
    temp_dir dir;
    const auto path = dir.db();
    const pid_t pid = ::fork();
    ASSERT_NE(pid, -1);
    if (pid == 0) {
        try {
            // Lives on the heap and is never deleted: no destructor, no final flush.
            auto* s = new sqlite_store(path, never);
            s->add("k", "d:2025-01-02", 1.0);
            s->add("k", "m:2025-01", 1.0);
            s->flush();
            s->add("k", "d:2025-01-02", 10.0);
            s->add("lost", "d:2025-01-02", 5.0);
        } catch (...) {
            ::_exit(1);
        }
        ::_exit(0);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status));
    ASSERT_EQ(WEXITSTATUS(status), 0);

    sqlite_store after(path, never);
    const auto got = by_key(after.load());
    const sums want{{{"k", "d:2025-01-02"}, 1.0}, {{"k", "m:2025-01"}, 1.0}};
    EXPECT_EQ(got, want);
}

TEST(SqliteStoreTest, UnwritableLocationThrowsNamingThePath) {
    const std::string path = "/proc/michi-x/db";
    try {
        sqlite_store s(path, never);
        FAIL() << "opening " << path << " should have thrown";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    }
}

TEST(SqliteStoreTest, NotADatabaseThrowsNamingThePath) {
    temp_dir dir;
    fs::create_directories(dir.path());
    const auto path = (dir.path() / "junk.db").string();
    {
        std::ofstream out(path);
        out << std::string(4096, 'x');
    }
    try {
        sqlite_store s(path, never);
        FAIL() << "opening " << path << " should have thrown";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    }
}

TEST(SqliteStoreTest, InMemoryDatabaseWorks) {
    sqlite_store s(":memory:", never);
    s.add("k", "d:2025-01-02", 0.125);
    s.add("k", "d:2025-01-02", 0.125);
    s.flush();
    const auto rows = s.load();
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(rows[0].usd, 0.25);
}

TEST(SqliteStoreTest, NonFiniteAmountsAreDropped) {
    temp_dir dir;
    sqlite_store s(dir.db(), never);
    s.add("k", "d:2025-01-02", 1.0);
    s.add("k", "d:2025-01-02", std::numeric_limits<double>::quiet_NaN());
    s.add("k", "d:2025-01-02", std::numeric_limits<double>::infinity());
    s.flush();
    const auto rows = s.load();
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(rows[0].usd, 1.0);
}

} // namespace
} // namespace michi::store
