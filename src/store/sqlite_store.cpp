#include "michi/store/sqlite_store.hpp"

#include <spdlog/spdlog.h>
#include <sqlite3.h>

#include <cmath>
#include <stdexcept>

namespace michi::store {
namespace {

constexpr int schema_version = 1;

constexpr const char* schema_sql = R"sql(
BEGIN IMMEDIATE;
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
INSERT INTO schema_version (version) SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM schema_version);
CREATE TABLE IF NOT EXISTS spend (
    key_id TEXT NOT NULL,
    period TEXT NOT NULL,
    usd REAL NOT NULL,
    PRIMARY KEY (key_id, period)
);
COMMIT;
)sql";

constexpr const char* upsert_sql =
    "INSERT INTO spend (key_id, period, usd) VALUES (?1, ?2, ?3) "
    "ON CONFLICT (key_id, period) DO UPDATE SET usd = usd + excluded.usd";

[[noreturn]] void fail(const std::string& path, const std::string& what) {
    throw std::runtime_error("sqlite store " + path + ": " + what);
}

using sqlite::exec;
using sqlite::query_text;

} // namespace

sqlite_store::sqlite_store(const std::string& path, std::chrono::milliseconds flush_interval)
    : path_(path), writer_(flush_interval) {
    if (path_.empty()) {
        throw std::runtime_error("sqlite store: empty database path");
    }
    if (flush_interval <= std::chrono::milliseconds::zero()) {
        fail(path_, "flush interval must be positive");
    }
    db_ = sqlite::open(path_, "sqlite store");
    sqlite3* raw = db_.get();
    std::string error;

    if (auto e = exec(raw, schema_sql); !e.empty()) {
        exec(raw, "ROLLBACK");
        fail(path_, "cannot create the schema: " + e);
    }
    const auto version = query_text(raw, "SELECT MAX(version) FROM schema_version", error);
    if (!error.empty()) {
        fail(path_, "cannot read the schema version: " + error);
    }
    if (version != std::to_string(schema_version)) {
        fail(path_, "schema version " + version + " is not the supported version " +
                        std::to_string(schema_version));
    }

    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v3(raw, upsert_sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr) !=
        SQLITE_OK) {
        fail(path_, "cannot prepare the spend upsert: " + sqlite::errmsg(raw));
    }
    upsert_.reset(stmt);

    // On failure write_pending() logs and keeps the batch; the next tick retries.
    writer_.start([this] { write_pending(); });
}

sqlite_store::~sqlite_store() {
    writer_.stop();
    // Last write, after the thread has gone: nothing can race with it now.
    if (!write_pending()) {
        std::size_t lost = 0;
        {
            std::lock_guard lock(pending_mu_);
            lost = pending_.size();
        }
        spdlog::error("sqlite store {}: closing with {} unwritten spend row(s)", path_, lost);
    }
}

std::vector<spend_row> sqlite_store::load() {
    std::lock_guard db_lock(db_mu_);
    sqlite3_stmt* raw = nullptr;
    if (sqlite3_prepare_v2(db_.get(), "SELECT key_id, period, usd FROM spend", -1, &raw, nullptr) !=
        SQLITE_OK) {
        fail(path_, "cannot read spend: " + sqlite::errmsg(db_.get()));
    }
    sqlite::stmt_ptr stmt(raw);
    std::vector<spend_row> rows;
    int rc = SQLITE_OK;
    while ((rc = sqlite3_step(raw)) == SQLITE_ROW) {
        const auto* key = sqlite3_column_text(raw, 0);
        const auto* period = sqlite3_column_text(raw, 1);
        rows.push_back(spend_row{key != nullptr ? reinterpret_cast<const char*>(key) : "",
                                 period != nullptr ? reinterpret_cast<const char*>(period) : "",
                                 sqlite3_column_double(raw, 2)});
    }
    if (rc != SQLITE_DONE) {
        fail(path_, "cannot read spend: " + sqlite::errmsg(db_.get()));
    }
    return rows;
}

void sqlite_store::add(const std::string& key_id, const std::string& period, double usd) {
    if (!std::isfinite(usd)) {
        return;
    }
    std::lock_guard lock(pending_mu_);
    add_locked(key_id, period, usd);
}

void sqlite_store::add(const std::string& key_id, const std::string& day, const std::string& month,
                       double usd) {
    if (!std::isfinite(usd)) {
        return;
    }
    std::lock_guard lock(pending_mu_);
    if (last_day_ != nullptr && last_day_->first.first == key_id &&
        last_day_->first.second == day && last_month_->first.second == month) {
        last_day_->second += usd;
        last_month_->second += usd;
        return;
    }
    last_day_ = &add_locked(key_id, day, usd);
    last_month_ = &add_locked(key_id, month, usd);
}

sqlite_store::batch::value_type& sqlite_store::add_locked(std::string_view key_id,
                                                          std::string_view period, double usd) {
    const std::pair<std::string_view, std::string_view> row(key_id, period);
    const auto it = pending_.lower_bound(row);
    if (it != pending_.end() && !pending_.key_comp()(row, it->first)) {
        it->second += usd;
        return *it;
    }
    // A new row: once per key and window per flush interval.
    return *pending_.emplace_hint(it, std::pair<std::string, std::string>(key_id, period), usd);
}

void sqlite_store::flush() { write_pending(); }

bool sqlite_store::write_pending() {
    // db_mu_ first: a flush() that starts while the writer holds a batch waits for it.
    std::lock_guard db_lock(db_mu_);
    batch b;
    {
        std::lock_guard lock(pending_mu_);
        b.swap(pending_);
        last_day_ = last_month_ = nullptr; // their rows left with the batch
    }
    if (b.empty()) {
        return true;
    }
    const auto error = write_batch(b);
    if (error.empty()) {
        return true;
    }
    spdlog::error("sqlite store {}: writing {} spend row(s) failed, kept for retry: {}", path_,
                  b.size(), error);
    // Put the batch back, merged with whatever was added meanwhile: no charge is lost.
    std::lock_guard lock(pending_mu_);
    for (auto& [key, usd] : b) {
        pending_[key] += usd;
    }
    return false;
}

std::string sqlite_store::write_batch(const batch& b) {
    sqlite3* db = db_.get();
    if (auto e = exec(db, "BEGIN IMMEDIATE"); !e.empty()) {
        return "begin: " + e;
    }
    sqlite3_stmt* stmt = upsert_.get();
    for (const auto& [key, usd] : b) {
        sqlite3_bind_text(stmt, 1, key.first.data(), static_cast<int>(key.first.size()),
                          SQLITE_STATIC);
        sqlite3_bind_text(stmt, 2, key.second.data(), static_cast<int>(key.second.size()),
                          SQLITE_STATIC);
        sqlite3_bind_double(stmt, 3, usd);
        const int rc = sqlite3_step(stmt);
        std::string error = rc == SQLITE_DONE ? "" : sqlite::errmsg(db);
        sqlite3_reset(stmt);
        sqlite3_clear_bindings(stmt);
        if (!error.empty()) {
            exec(db, "ROLLBACK");
            return "upsert: " + error;
        }
    }
    if (auto e = exec(db, "COMMIT"); !e.empty()) {
        exec(db, "ROLLBACK");
        return "commit: " + e;
    }
    return {};
}

} // namespace michi::store
