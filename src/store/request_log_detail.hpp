#pragma once
// Private helpers shared by the request log's writer (request_log.cpp) and its queries
// (request_log_usage.cpp); not a public interface.

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
