#pragma once
// Private helpers shared by the request log's writer (request_log.cpp) and its queries
// (request_log_usage.cpp); not a public interface.

#include "michi/store/request_log.hpp"

#include <sqlite3.h>

#include <cstdint>
#include <optional>
#include <string>

namespace michi::store::request_log_detail {

// The lowest row id of the rows at or after ts (from request_minutes); "" or an error.
std::string first_id_from(sqlite3* db, std::int64_t ts, std::optional<std::int64_t>& out);
// The highest row id of the rows before ts.
std::string last_id_before(sqlite3* db, std::int64_t ts, std::optional<std::int64_t>& out);
// Throws std::runtime_error naming the request log's file.
[[noreturn]] void fail(const std::string& path, const std::string& what);

} // namespace michi::store::request_log_detail

namespace michi::store {

// The rows of the batch being written, read by SQLite as an eponymous virtual table of the
// write connection (named `name`, never stored in the file): one INSERT … SELECT writes the
// whole batch, each value handed over by pointer, in place of 21 bound parameters a row.
struct request_log::batch_table {
    static constexpr const char* name = "michi_request_batch";
    // Its columns, named and ordered as requests' own.
    static constexpr const char* columns =
        "id, ts_ms, key_id, key_class, route, model, status, attempts, fallbacks, latency_ms, "
        "ttfb_ms, tokens_in, tokens_out, cost_usd, error, tokens_cache_read, tokens_cache_write, "
        "tokens_reasoning, cache_saved_usd, response_cache_hit, response_cache_saved_usd";
    // Makes the table known to db; it reads *current (no rows while that is null). Returns an
    // error message or "".
    static std::string attach(sqlite3* db, const batch* const* current);
    // The insert of every row of the table into requests.
    static std::string insert_sql();
    // The virtual table's callbacks (request_log_rows.cpp).
    struct module;
};

} // namespace michi::store
