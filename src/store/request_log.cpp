#include "michi/store/request_log.hpp"

#include "request_log_detail.hpp"

#include <spdlog/spdlog.h>
#include <sqlite3.h>

#include <cmath>
#include <limits>
#include <set>
#include <stdexcept>
#include <utility>

namespace michi::store {
namespace {

using request_log_detail::fail;
using request_log_detail::last_id_before;

constexpr auto prune_every = std::chrono::minutes(1);

// No index on the rows: a B-tree insert per row was a third of a row's cost. Retention
// prunes and admin queries find a time range through request_minutes instead: one row per
// minute of request time with the range of row ids and of times of that minute's rows. Rows
// are appended (ids grow), so a time range is a range of ids, read with the times checked.
// (Files of earlier versions lose their time and per-key indexes on open and get their
// minutes from the rows they have.)
constexpr const char* schema_sql = R"sql(
BEGIN IMMEDIATE;
CREATE TABLE IF NOT EXISTS requests (
    id TEXT,
    ts_ms INTEGER,
    key_id TEXT,
    key_class TEXT,
    route TEXT,
    model TEXT,
    status INTEGER,
    attempts INTEGER,
    fallbacks INTEGER,
    latency_ms REAL,
    ttfb_ms REAL,
    tokens_in INTEGER,
    tokens_out INTEGER,
    cost_usd REAL,
    error TEXT,
    tokens_cache_read INTEGER NOT NULL DEFAULT 0,
    tokens_cache_write INTEGER NOT NULL DEFAULT 0,
    tokens_reasoning INTEGER NOT NULL DEFAULT 0,
    cache_saved_usd REAL NOT NULL DEFAULT 0,
    response_cache_hit INTEGER NOT NULL DEFAULT 0,
    response_cache_saved_usd REAL NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS request_minutes (
    minute INTEGER PRIMARY KEY,
    first_id INTEGER NOT NULL,
    last_id INTEGER NOT NULL,
    min_ts INTEGER NOT NULL,
    max_ts INTEGER NOT NULL
);
COMMIT;
)sql";

// Run when request_minutes is empty: the minutes of the rows already there (none in a new
// file; the rows of a file from before it, once).
constexpr const char* fill_minutes_sql = R"sql(
BEGIN IMMEDIATE;
INSERT INTO request_minutes (minute, first_id, last_id, min_ts, max_ts)
    SELECT ts_ms / 60000, MIN(rowid), MAX(rowid), MIN(ts_ms), MAX(ts_ms) FROM requests
    WHERE ts_ms IS NOT NULL GROUP BY ts_ms / 60000;
DROP INDEX IF EXISTS requests_ts_ms;
DROP INDEX IF EXISTS requests_key_id;
COMMIT;
)sql";

// Columns added to requests since its first version: a file from before them gets them when
// it is opened (its old rows read 0).
constexpr std::pair<const char*, const char*> added_columns[] = {
    {"tokens_cache_read", "INTEGER NOT NULL DEFAULT 0"},
    {"tokens_cache_write", "INTEGER NOT NULL DEFAULT 0"},
    {"tokens_reasoning", "INTEGER NOT NULL DEFAULT 0"},
    {"cache_saved_usd", "REAL NOT NULL DEFAULT 0"},
    {"response_cache_hit", "INTEGER NOT NULL DEFAULT 0"},
    {"response_cache_saved_usd", "REAL NOT NULL DEFAULT 0"},
};

// Adds the columns an older file lacks, in one transaction (another process opening the same
// file at once finds them there). Returns an error message or "".
std::string add_missing_columns(sqlite3* db) {
    sqlite::transaction tx(db);
    if (!tx.error().empty()) {
        return tx.error();
    }
    std::set<std::string> have;
    {
        sqlite::statement info;
        if (auto e = info.prepare(db, "PRAGMA table_info(requests)"); !e.empty()) {
            return e;
        }
        int rc = SQLITE_OK;
        while ((rc = info.step()) == SQLITE_ROW) {
            have.insert(info.column_text(1));
        }
        if (rc != SQLITE_DONE) {
            return sqlite::errmsg(db);
        }
    }
    for (const auto& [name, type] : added_columns) {
        if (have.contains(name)) {
            continue;
        }
        const std::string sql = std::string("ALTER TABLE requests ADD COLUMN ") + name + " " + type;
        if (auto e = sqlite::exec(db, sql.c_str()); !e.empty()) {
            return e;
        }
    }
    return tx.commit();
}

constexpr const char* upsert_minute_sql =
    "INSERT INTO request_minutes (minute, first_id, last_id, min_ts, max_ts) "
    "VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (minute) DO UPDATE SET "
    "first_id = MIN(first_id, excluded.first_id), last_id = MAX(last_id, excluded.last_id), "
    "min_ts = MIN(min_ts, excluded.min_ts), max_ts = MAX(max_ts, excluded.max_ts)";

constexpr std::int64_t minute_ms = 60000;

// Rows waiting that wake the writer before its interval is up: at 36k requests a second a
// 200 ms interval gathers some 7000 rows, several milliseconds of one core in one burst,
// which lands in the tail latency of the requests beside it. A thousand rows a write keep
// each burst short, and a commit still carries many rows.
constexpr std::size_t nudge_rows = 1024;

// One id from request_minutes by sql, whose ?1 is the minute of ts and ?2 ts itself (the
// minute bounds the search by the table's key; the time decides); nullopt when no minute
// matches.
std::string id_bound(sqlite3* db, const char* sql, std::int64_t ts,
                     std::optional<std::int64_t>& out) {
    sqlite::statement s;
    if (auto e = s.prepare(db, sql); !e.empty()) {
        return e;
    }
    s.bind_int(1, ts / minute_ms);
    s.bind_int(2, ts);
    if (s.step() != SQLITE_ROW) {
        return sqlite::errmsg(db);
    }
    out = s.is_null(0) ? std::nullopt : std::optional<std::int64_t>(s.column_int(0));
    return {};
}

std::int64_t clamp_i64(std::uint64_t v) {
    constexpr auto max = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
    return static_cast<std::int64_t>(v > max ? max : v);
}

double finite_or_zero(double v) { return std::isfinite(v) ? v : 0.0; }

} // namespace

namespace request_log_detail {

// The lowest row id of the rows at or after ts.
std::string first_id_from(sqlite3* db, std::int64_t ts, std::optional<std::int64_t>& out) {
    return id_bound(db,
                    "SELECT MIN(first_id) FROM request_minutes WHERE minute >= ?1 AND max_ts >= ?2",
                    ts, out);
}

// The highest row id of the rows before ts.
std::string last_id_before(sqlite3* db, std::int64_t ts, std::optional<std::int64_t>& out) {
    return id_bound(
        db, "SELECT MAX(last_id) FROM request_minutes WHERE minute <= ?1 AND min_ts < ?2", ts, out);
}

[[noreturn]] void fail(const std::string& path, const std::string& what) {
    throw std::runtime_error("request log " + path + ": " + what);
}

} // namespace request_log_detail

request_log::request_log(const std::string& sqlite_path, std::chrono::milliseconds flush_interval,
                         std::chrono::hours retention, std::size_t max_pending)
    : path_(sqlite_path), retention_(retention), max_pending_(max_pending),
      writer_(flush_interval) {
    if (path_.empty()) {
        throw std::runtime_error("request log: empty database path");
    }
    if (flush_interval <= std::chrono::milliseconds::zero()) {
        fail(path_, "flush interval must be positive");
    }
    if (retention_ <= std::chrono::hours::zero()) {
        fail(path_, "retention must be positive");
    }
    if (max_pending_ == 0) {
        fail(path_, "max pending rows must be positive");
    }
    // Both connections are only used under db_mu_ / read_mu_.
    db_ = sqlite::open(path_, "request log", false, sqlite::serialised_by::caller);
    if (auto e = sqlite::exec(db_.get(), schema_sql); !e.empty()) {
        sqlite::exec(db_.get(), "ROLLBACK");
        fail(path_, "cannot create the schema: " + e);
    }
    if (auto e = add_missing_columns(db_.get()); !e.empty()) {
        fail(path_, "cannot add the new columns: " + e);
    }
    if (auto e = fill_minutes(); !e.empty()) {
        sqlite::exec(db_.get(), "ROLLBACK");
        fail(path_, "cannot index the rows by minute: " + e);
    }
    if (auto e = upsert_minute_.prepare(db_.get(), upsert_minute_sql, true); !e.empty()) {
        fail(path_, "cannot prepare the minute index: " + e);
    }
    if (auto e = batch_table::attach(db_.get(), &writing_); !e.empty()) {
        fail(path_, "cannot attach the batch table: " + e);
    }
    if (auto e = insert_.prepare(db_.get(), batch_table::insert_sql(), true); !e.empty()) {
        fail(path_, "cannot prepare the insert: " + e);
    }
    if (path_ != ":memory:") {
        read_db_ = sqlite::open(path_, "request log", true, sqlite::serialised_by::caller);
    }
    writer_.start([this] { tick(); });
}

std::string request_log::fill_minutes() {
    sqlite::statement any;
    if (auto e = any.prepare(db_.get(), "SELECT EXISTS (SELECT 1 FROM request_minutes)");
        !e.empty()) {
        return e;
    }
    if (any.step() != SQLITE_ROW) {
        return sqlite::errmsg(db_.get());
    }
    if (any.column_int(0) != 0) {
        return {};
    }
    any.reset();
    return sqlite::exec(db_.get(), fill_minutes_sql);
}

request_log::~request_log() {
    writer_.stop();
    // Last write, after the thread has gone: nothing can race with it now.
    if (!write_pending()) {
        std::size_t lost = 0;
        {
            std::lock_guard lock(pending_mu_);
            lost = pending_.size();
        }
        spdlog::error("request log {}: closing with {} unwritten row(s)", path_, lost);
    }
}

void request_log::batch::clear() {
    rows.clear();
    text.clear();
    first = 0;
}

void request_log::batch::push(const row& numbers, const std::string_view (&strings)[6]) {
    row r = numbers;
    r.text_at = text.size();
    for (int i = 0; i < 6; ++i) {
        r.len[i] = static_cast<std::uint32_t>(strings[i].size());
        text.append(strings[i]);
    }
    rows.push_back(r);
}

void request_log::batch::append(const batch& other) {
    for (auto i = other.first; i < other.rows.size(); ++i) {
        const row& r = other.rows[i];
        const std::string_view strings[6] = {other.string(r, 0), other.string(r, 1),
                                             other.string(r, 2), other.string(r, 3),
                                             other.string(r, 4), other.string(r, 5)};
        push(r, strings);
    }
}

void request_log::batch::drop_front() {
    ++first;
    // Once half the rows are dropped ones, move the live ones to the front: each drop
    // costs a constant amortised, and a full buffer stays within twice its cap.
    if (first < 64 || first * 2 < rows.size()) {
        return;
    }
    const std::size_t cut = first < rows.size() ? rows[first].text_at : text.size();
    rows.erase(rows.begin(), rows.begin() + static_cast<std::ptrdiff_t>(first));
    text.erase(0, cut);
    for (auto& r : rows) {
        r.text_at -= cut;
    }
    first = 0;
}

std::string_view request_log::batch::string(const row& r, int i) const {
    std::size_t at = r.text_at;
    for (int k = 0; k < i; ++k) {
        at += r.len[k];
    }
    return std::string_view(text).substr(at, r.len[i]);
}

void request_log::add(const obs::access_entry& e, std::int64_t ts_ms, unsigned fallbacks) {
    row r;
    r.ts_ms = ts_ms;
    r.status = e.status;
    r.attempts = e.attempts;
    r.fallbacks = fallbacks;
    r.latency_ms = finite_or_zero(e.latency_ms);
    r.ttfb_ms = finite_or_zero(e.ttfb_ms);
    r.tokens_in = clamp_i64(e.tokens_in);
    r.tokens_out = clamp_i64(e.tokens_out);
    r.cost_usd = finite_or_zero(e.cost_usd);
    r.tokens_cache_read = clamp_i64(e.tokens_cache_read);
    r.tokens_cache_write = clamp_i64(e.tokens_cache_write);
    r.tokens_reasoning = clamp_i64(e.tokens_reasoning);
    r.cache_saved_usd = finite_or_zero(e.cache_saved_usd);
    r.response_cache_hit = e.response_cache == "hit" ? 1 : 0;
    r.response_cache_saved_usd =
        r.response_cache_hit ? finite_or_zero(e.response_cache_saved_usd) : 0;
    const std::string_view strings[6] = {e.request_id, e.key_id, e.key_class,
                                         e.route,      e.model,  e.error_code};

    bool warn = false;
    bool nudge = false;
    {
        std::lock_guard lock(pending_mu_);
        if (pending_.size() >= max_pending_) {
            pending_.drop_front();
            ++dropped_;
            warn = !drop_warned_;
            drop_warned_ = true;
        }
        pending_.push(r, strings);
        // Once per batch (a full buffer, whose size stays put while it drops rows, never).
        nudge = pending_.size() == nudge_rows && nudge_rows < max_pending_;
    }
    if (nudge) {
        writer_.nudge();
    }
    if (warn) {
        spdlog::warn("request log {}: {} rows waiting to be written, dropping the oldest", path_,
                     max_pending_);
    }
}

void request_log::flush() { write_pending(); }

std::uint64_t request_log::dropped() const {
    std::lock_guard lock(pending_mu_);
    return dropped_;
}

void request_log::tick() {
    write_pending(); // logs and keeps the batch on failure; the next tick retries
    const auto now = std::chrono::steady_clock::now();
    if (!pruned_ || now - last_prune_ >= prune_every) {
        pruned_ = true;
        last_prune_ = now;
        const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                std::chrono::system_clock::now().time_since_epoch())
                                .count();
        prune(now_ms);
    }
}

bool request_log::write_pending() {
    // db_mu_ first: a flush() that starts while the writer holds a batch waits for it.
    std::lock_guard db_lock(db_mu_);
    batch& b = spare_; // empty; swapped with the buffer, which goes on in its capacity
    {
        std::lock_guard lock(pending_mu_);
        b.swap(pending_);
    }
    if (b.empty()) {
        b.clear();
        return true;
    }
    const auto error = write_batch(b);
    if (error.empty()) {
        std::uint64_t newly_dropped = 0;
        {
            std::lock_guard lock(pending_mu_);
            newly_dropped = dropped_ - dropped_reported_;
            dropped_reported_ = dropped_;
            drop_warned_ = false;
        }
        if (newly_dropped > 0) {
            spdlog::warn("request log {}: {} row(s) dropped while the buffer was full", path_,
                         newly_dropped);
        }
        // Keep the room for the next batch, unless a burst left far more than it needs.
        if (b.rows.capacity() > 4096 && b.rows.size() * 8 < b.rows.capacity()) {
            b = batch{};
        }
        b.clear();
        return true;
    }
    spdlog::error("request log {}: writing {} row(s) failed, kept for retry: {}", path_, b.size(),
                  error);
    // Put the batch back in front of whatever was added meanwhile, oldest dropped past the cap.
    bool warn = false;
    {
        std::lock_guard lock(pending_mu_);
        b.append(pending_);
        pending_.swap(b);
        while (pending_.size() > max_pending_) {
            pending_.drop_front();
            ++dropped_;
            warn = !drop_warned_;
            drop_warned_ = true;
        }
    }
    b.clear();
    if (warn) {
        spdlog::warn("request log {}: {} rows waiting to be written, dropping the oldest", path_,
                     max_pending_);
    }
    return false;
}

std::string request_log::write_batch(const batch& b) {
    sqlite3* db = db_.get();
    sqlite::transaction tx(db);
    if (!tx.error().empty()) {
        return "begin: " + tx.error();
    }
    // The minutes of the batch's rows (a batch spans one or two, mostly), with their ids.
    minutes_.clear();
    const auto note = [this](std::int64_t ts, std::int64_t id) {
        const std::int64_t m = ts / minute_ms;
        for (auto& x : minutes_) {
            if (x.minute == m) {
                x.first_id = std::min(x.first_id, id);
                x.last_id = std::max(x.last_id, id);
                x.min_ts = std::min(x.min_ts, ts);
                x.max_ts = std::max(x.max_ts, ts);
                return;
            }
        }
        minutes_.push_back({m, id, id, ts, ts});
    };
    // One step writes the batch: the insert reads it through the batch table.
    writing_ = &b;
    const bool written = insert_.step() == SQLITE_DONE;
    const std::string insert_error = written ? "" : sqlite::errmsg(db);
    insert_.reset();
    writing_ = nullptr;
    if (!written) {
        return "insert: " + insert_error; // tx rolls back
    }
    // The rows of one insert take consecutive ids in their order, the last one's last.
    const auto n = static_cast<std::int64_t>(b.size());
    if (sqlite3_changes64(db) != n) {
        return "insert: " + std::to_string(sqlite3_changes64(db)) + " of " + std::to_string(n) +
               " rows written";
    }
    const std::int64_t last = sqlite3_last_insert_rowid(db);
    for (std::int64_t i = 0; i < n; ++i) {
        note(b.rows[b.first + static_cast<std::size_t>(i)].ts_ms, last - (n - 1) + i);
    }
    for (const auto& m : minutes_) {
        upsert_minute_.bind_int(1, m.minute);
        upsert_minute_.bind_int(2, m.first_id);
        upsert_minute_.bind_int(3, m.last_id);
        upsert_minute_.bind_int(4, m.min_ts);
        upsert_minute_.bind_int(5, m.max_ts);
        const int rc = upsert_minute_.step();
        std::string error = rc == SQLITE_DONE ? "" : sqlite::errmsg(db);
        upsert_minute_.reset();
        if (!error.empty()) {
            return "minute index: " + error;
        }
    }
    if (auto e = tx.commit(); !e.empty()) {
        return "commit: " + e;
    }
    return {};
}

std::uint64_t request_log::prune(std::int64_t now_ms) {
    std::lock_guard db_lock(db_mu_);
    return prune_locked(now_ms);
}

std::uint64_t request_log::prune_locked(std::int64_t now_ms) {
    const auto cutoff =
        now_ms - std::chrono::duration_cast<std::chrono::milliseconds>(retention_).count();
    sqlite3* db = db_.get();
    // The rows before the cutoff are among the ids of the minutes that began before it; of
    // those, only the rows before it go. A minute goes once all its rows have.
    std::uint64_t n = 0;
    std::string error;
    {
        sqlite::transaction tx(db);
        error = tx.error();
        std::optional<std::int64_t> last;
        if (error.empty()) {
            error = last_id_before(db, cutoff, last);
        }
        if (error.empty() && last) {
            sqlite::statement del;
            error = del.prepare(db, "DELETE FROM requests WHERE rowid <= ?1 AND ts_ms < ?2");
            if (error.empty()) {
                del.bind_int(1, *last);
                del.bind_int(2, cutoff);
                if (del.step() != SQLITE_DONE) {
                    error = sqlite::errmsg(db);
                }
                n = static_cast<std::uint64_t>(sqlite3_changes64(db));
            }
        }
        if (error.empty()) {
            sqlite::statement gone;
            error = gone.prepare(db, "DELETE FROM request_minutes WHERE minute <= ?1 AND "
                                     "max_ts < ?2");
            if (error.empty()) {
                gone.bind_int(1, cutoff / minute_ms);
                gone.bind_int(2, cutoff);
                if (gone.step() != SQLITE_DONE) {
                    error = sqlite::errmsg(db);
                }
            }
        }
        if (error.empty()) {
            error = tx.commit();
        }
    }
    if (!error.empty()) {
        spdlog::error("request log {}: pruning rows older than {} ms failed: {}", path_, cutoff,
                      error);
        return 0;
    }
    if (n > 0) {
        spdlog::debug("request log {}: pruned {} row(s) past retention", path_, n);
    }
    return n;
}

} // namespace michi::store
