#pragma once
// The request log behind GET /admin/usage: one SQLite row per finished request (ids, model,
// status, latency, tokens, cost; never a prompt or a secret), buffered in memory and written
// in batches by a writer thread, old rows pruned after the retention period.

#include "michi/core/adaptive_mutex.hpp"
#include "michi/obs/log.hpp"
#include "michi/store/batch_writer.hpp"
#include "michi/store/sqlite_db.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace michi::store {

// Which requests a usage query covers: since_ms inclusive, until_ms exclusive (Unix ms).
struct usage_filter {
    std::string key; // empty: every key
    std::optional<std::int64_t> since_ms;
    std::optional<std::int64_t> until_ms;
};

enum class usage_group { key, model, day };

// Totals for one group (a key id, a model, or a UTC day "YYYY-MM-DD").
struct usage_row {
    std::string group;
    std::uint64_t requests = 0;
    std::uint64_t tokens_in = 0;          // cached ones included
    std::uint64_t tokens_out = 0;         // reasoning included
    std::uint64_t tokens_cache_read = 0;  // read from the prompt cache
    std::uint64_t tokens_cache_write = 0; // written to the prompt cache
    std::uint64_t tokens_reasoning = 0;
    std::uint64_t errors = 0;    // status >= 400
    std::uint64_t fallbacks = 0; // sum of fallbacks taken (targets tried after the first)
    double cost_usd = 0;
    double cache_saved_usd = 0;            // what prompt caching saved
    std::uint64_t response_cache_hits = 0; // answered by the response cache
    double response_cache_saved_usd = 0;   // what those answers cost when they were fetched
    double p50_ms = 0;                     // nearest-rank percentiles of latency_ms
    double p95_ms = 0;
};

// Per-request history in SQLite (WAL), written off the event loops, queried by the admin API.
class request_log {
public:
    static constexpr std::size_t default_max_pending = 100000;

    // Opens (creating directories, file and schema as needed) and starts the writer thread,
    // which wakes every flush_interval and prunes rows older than retention about once a
    // minute. Throws std::runtime_error naming the path on failure.
    request_log(const std::string& sqlite_path, std::chrono::milliseconds flush_interval,
                std::chrono::hours retention = std::chrono::hours(24 * 30),
                std::size_t max_pending = default_max_pending);
    // Stops the writer thread, then writes whatever is still buffered.
    ~request_log();

    request_log(const request_log&) = delete;
    request_log& operator=(const request_log&) = delete;

    // Buffers one row under a short lock; no I/O. Past max_pending buffered rows the oldest
    // is dropped (with a warning in the log).
    void add(const obs::access_entry& e, std::int64_t ts_ms, unsigned fallbacks);
    // Writes everything buffered so far, after any batch the writer has in progress. On a
    // write error it logs and keeps the rows buffered for the next attempt.
    void flush();

    // Flushes, then sums the matching rows per group, ordered by group. Never blocks add().
    // Throws std::runtime_error on a read error.
    std::vector<usage_row> usage(const usage_filter& filter, usage_group group);

    // Deletes rows with ts_ms < now_ms - retention; returns how many went. The writer thread
    // calls it by itself; exposed for tests and operators. Logs and returns 0 on error.
    std::uint64_t prune(std::int64_t now_ms);

    // Rows dropped because the buffer was full, since construction.
    std::uint64_t dropped() const;
    const std::string& path() const { return path_; }

private:
    // One buffered row: its numbers, and where its strings sit in the batch's text. Rows
    // hold no allocation of their own, so a row costs the worker that adds it no malloc
    // and the writer thread that writes it no free of another thread's memory.
    struct row {
        std::size_t text_at = 0;   // offset of the first string in batch::text
        std::uint32_t len[6] = {}; // id, key_id, key_class, route, model, error
        std::int64_t ts_ms = 0;
        std::int64_t status = 0;
        std::int64_t attempts = 0;
        std::int64_t fallbacks = 0;
        double latency_ms = 0;
        double ttfb_ms = 0;
        std::int64_t tokens_in = 0;
        std::int64_t tokens_out = 0;
        double cost_usd = 0;
        std::int64_t tokens_cache_read = 0;
        std::int64_t tokens_cache_write = 0;
        std::int64_t tokens_reasoning = 0;
        double cache_saved_usd = 0;
        std::int64_t response_cache_hit = 0; // 1: answered by the response cache
        double response_cache_saved_usd = 0;
    };
    // Rows in the order they were added, their strings back to back in one buffer. The
    // writer swaps the whole batch with an empty one that keeps its capacity. Dropping the
    // oldest row advances `first`; drop_front() reclaims the dropped rows' room.
    struct batch {
        std::vector<row> rows;
        std::string text;
        std::size_t first = 0; // rows[0, first) were dropped

        std::size_t size() const { return rows.size() - first; }
        bool empty() const { return size() == 0; }
        void clear();
        void swap(batch& other) noexcept {
            rows.swap(other.rows);
            text.swap(other.text);
            std::swap(first, other.first);
        }
        // Appends one row given its numbers and its six strings.
        void push(const row& numbers, const std::string_view (&strings)[6]);
        // Appends the live rows of another batch.
        void append(const batch& other);
        // Drops the oldest live row.
        void drop_front();
        // The row's i-th string (see row::len).
        std::string_view string(const row& r, int i) const;
    };

    // The batch being written as a table of the write connection (request_log_rows.cpp).
    struct batch_table;

    // One writer-thread tick: writes the buffered rows, prunes about once a minute.
    void tick();
    // Takes the buffered rows and writes them; on failure puts them back. Returns success.
    bool write_pending();
    // One transaction for the whole batch; all or nothing. Returns an error message or "".
    std::string write_batch(const batch& b);
    // Fills request_minutes from the rows when it is empty (a file from before it).
    std::string fill_minutes();
    // prune() with db_mu_ already held.
    std::uint64_t prune_locked(std::int64_t now_ms);

    std::string path_;
    std::chrono::hours retention_;
    std::size_t max_pending_;

    // Serialises every use of the write connection. Taken before pending_mu_, never after.
    std::mutex db_mu_;
    sqlite::db_ptr db_;
    sqlite::statement insert_; // every row of the batch being written, from batch_table
    // The batch being written (writer only, under db_mu_), which batch_table reads.
    const batch* writing_ = nullptr;
    sqlite::statement upsert_minute_;
    // The minutes of the batch being written (writer only).
    struct minute_range {
        std::int64_t minute, first_id, last_id, min_ts, max_ts;
    };
    std::vector<minute_range> minutes_;

    // Queries run on a connection of their own (":memory:" has none: they use db_ then).
    std::mutex read_mu_;
    sqlite::db_ptr read_db_;

    mutable adaptive_mutex pending_mu_; // guards pending_ and the drop counters
    batch pending_;
    batch spare_; // under db_mu_: the written batch, emptied, swapped in at the next write
    std::uint64_t dropped_ = 0;
    std::uint64_t dropped_reported_ = 0; // part of dropped_ already logged by the writer
    bool drop_warned_ = false;           // add() warned since the last report

    // Used by the writer thread only.
    std::chrono::steady_clock::time_point last_prune_{};
    bool pruned_ = false;

    batch_writer writer_; // last: started once everything above is ready
};

} // namespace michi::store
