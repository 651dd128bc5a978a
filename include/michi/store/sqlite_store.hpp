#pragma once
// The embedded SQLite spend store (WAL): add() only buffers in memory; a writer thread of its
// own upserts the buffered charges in one transaction every flush interval, so a crash loses
// at most one interval of charges and a clean stop (flush or destructor) loses nothing.

#include "michi/core/adaptive_mutex.hpp"
#include "michi/store/batch_writer.hpp"
#include "michi/guard/spend_store.hpp"
#include "michi/store/sqlite_db.hpp"

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace michi::store {

using guard::spend_row;

// Spend persisted in one SQLite file, written in batches off the event loops.
class sqlite_store final : public guard::spend_store {
public:
    // Creates the parent directories of path (unless ":memory:"), opens the database in WAL
    // mode and creates the schema if missing. Throws std::runtime_error naming the path when
    // any of that fails. The writer thread wakes every flush_interval.
    sqlite_store(const std::string& path, std::chrono::milliseconds flush_interval);
    // Stops the writer thread, then writes whatever is still buffered.
    ~sqlite_store() override;

    sqlite_store(const sqlite_store&) = delete;
    sqlite_store& operator=(const sqlite_store&) = delete;

    // Every persisted row (not the charges still buffered). Throws std::runtime_error on a
    // read error.
    std::vector<spend_row> load() override;
    // Buffers usd for (key_id, period) under a short lock; no I/O. Non-finite amounts are
    // dropped (they would poison the sum).
    void add(const std::string& key_id, const std::string& period, double usd) override;
    // Both windows of one charge under one lock.
    void add(const std::string& key_id, const std::string& day, const std::string& month,
             double usd) override;
    // Writes everything buffered so far, after any batch the writer thread has in progress.
    // On a write error it logs, keeps the charges buffered for the next attempt and returns.
    void flush() override;

    const std::string& path() const { return path_; }

private:
    // (key_id, period) -> usd; looked up by string_views, so a charge to a row already
    // buffered copies no strings.
    struct row_less {
        using is_transparent = void;
        template <typename A, typename B>
        bool operator()(const A& a, const B& b) const {
            return std::pair<std::string_view, std::string_view>(a.first, a.second) <
                   std::pair<std::string_view, std::string_view>(b.first, b.second);
        }
    };
    using batch = std::map<std::pair<std::string, std::string>, double, row_less>;
    // Adds usd to one row of pending_ (pending_mu_ held); returns that row.
    batch::value_type& add_locked(std::string_view key_id, std::string_view period, double usd);

    // Takes the buffered charges and writes them; on failure puts them back. Returns success.
    bool write_pending();
    // One transaction for the whole batch; all or nothing. Returns an error message or "".
    std::string write_batch(const batch& b);

    std::string path_;

    // Serialises every use of the connection (writer thread, flush, load). Taken before
    // pending_mu_, never after it.
    std::mutex db_mu_;
    sqlite::db_ptr db_;
    sqlite::stmt_ptr upsert_;

    adaptive_mutex pending_mu_; // guards pending_ and the rows below
    batch pending_;
    // The two rows of pending_ the last two-window charge went to (null when pending_ has
    // been swapped out since): a gateway's charges mostly repeat the key and windows of the
    // one before, which then cost two string compares instead of two map searches.
    batch::value_type* last_day_ = nullptr;
    batch::value_type* last_month_ = nullptr;

    batch_writer writer_; // last: started once everything above is ready
};

} // namespace michi::store
