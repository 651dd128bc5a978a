// The request log's queries: GET /admin/usage's totals and latency percentiles per group.

#include "michi/store/request_log.hpp"

#include "request_log_detail.hpp"

#include <limits>
#include <unordered_map>
#include <utility>

namespace michi::store {
namespace {

using request_log_detail::fail;
using request_log_detail::first_id_from;
using request_log_detail::last_id_before;

std::uint64_t non_negative(std::int64_t v) { return v > 0 ? static_cast<std::uint64_t>(v) : 0; }

const char* group_expr(usage_group g) {
    switch (g) {
    case usage_group::key: return "COALESCE(key_id, '')";
    case usage_group::model: return "COALESCE(model, '')";
    case usage_group::day: return "COALESCE(date(ts_ms / 1000, 'unixepoch'), '')";
    }
    return "''";
}

// 1-based nearest rank of percentile pct (0-100] among n sorted values (n > 0).
std::uint64_t nearest_rank(unsigned pct, std::uint64_t n) {
    const std::uint64_t rank = (pct * n + 99) / 100;
    return rank == 0 ? 1 : rank;
}

} // namespace

std::vector<usage_row> request_log::usage(const usage_filter& filter, usage_group group) {
    flush(); // an admin query sees what already happened

    std::string where;
    const auto clause = [&where](const char* c) {
        where += where.empty() ? " WHERE " : " AND ";
        where += c;
    };
    if (!filter.key.empty()) {
        clause("key_id = ?");
    }
    if (filter.since_ms) {
        clause("rowid >= ? AND ts_ms >= ?");
    }
    if (filter.until_ms) {
        clause("rowid <= ? AND ts_ms < ?");
    }
    // The ids of the time range (below), from the minutes: none in range reads no row.
    std::int64_t first_id = 0;
    std::int64_t last_id = 0;
    const auto bind = [&](sqlite::statement& s) {
        int i = 0;
        if (!filter.key.empty()) {
            s.bind_text(++i, filter.key);
        }
        if (filter.since_ms) {
            s.bind_int(++i, first_id);
            s.bind_int(++i, *filter.since_ms);
        }
        if (filter.until_ms) {
            s.bind_int(++i, last_id);
            s.bind_int(++i, *filter.until_ms);
        }
    };
    const std::string g = group_expr(group);
    const std::string totals_sql =
        "SELECT " + g +
        " AS g, COUNT(*), COALESCE(SUM(tokens_in), 0), COALESCE(SUM(tokens_out), 0), "
        "COALESCE(SUM(status >= 400), 0), COALESCE(SUM(fallbacks), 0), TOTAL(cost_usd), "
        "COALESCE(SUM(tokens_cache_read), 0), COALESCE(SUM(tokens_cache_write), 0), "
        "COALESCE(SUM(tokens_reasoning), 0), TOTAL(cache_saved_usd), "
        "COALESCE(SUM(response_cache_hit), 0), TOTAL(response_cache_saved_usd) "
        "FROM requests" +
        where + " GROUP BY g ORDER BY g";
    const std::string latency_sql =
        "SELECT " + g + " AS g, latency_ms FROM requests" + where + " ORDER BY g, latency_ms";

    // Queries never hold db_mu_ (the writer's) unless there is no second connection.
    std::unique_lock lock(read_db_ ? read_mu_ : db_mu_);
    sqlite3* db = read_db_ ? read_db_.get() : db_.get();
    sqlite::transaction tx(db, "BEGIN"); // both queries see the same rows
    if (!tx.error().empty()) {
        fail(path_, "cannot read usage: " + tx.error());
    }
    // An id bound of the time range; `none` (reading no row) when no minute is in range.
    const auto id_of = [&](auto find, std::int64_t ts, std::int64_t none) {
        std::optional<std::int64_t> v;
        if (auto e = find(db, ts, v); !e.empty()) {
            fail(path_, "cannot read usage: " + e);
        }
        return v.value_or(none);
    };
    if (filter.since_ms) {
        first_id = id_of(first_id_from, *filter.since_ms, std::numeric_limits<std::int64_t>::max());
    }
    if (filter.until_ms) {
        last_id = id_of(last_id_before, *filter.until_ms, -1);
    }

    std::vector<usage_row> rows;
    std::unordered_map<std::string, std::size_t> index;
    {
        sqlite::statement s;
        if (auto e = s.prepare(db, totals_sql); !e.empty()) {
            fail(path_, "cannot read usage: " + e);
        }
        bind(s);
        int rc = SQLITE_OK;
        while ((rc = s.step()) == SQLITE_ROW) {
            usage_row r;
            r.group = s.column_text(0);
            r.requests = non_negative(s.column_int(1));
            r.tokens_in = non_negative(s.column_int(2));
            r.tokens_out = non_negative(s.column_int(3));
            r.errors = non_negative(s.column_int(4));
            r.fallbacks = non_negative(s.column_int(5));
            r.cost_usd = s.column_double(6);
            r.tokens_cache_read = non_negative(s.column_int(7));
            r.tokens_cache_write = non_negative(s.column_int(8));
            r.tokens_reasoning = non_negative(s.column_int(9));
            r.cache_saved_usd = s.column_double(10);
            r.response_cache_hits = non_negative(s.column_int(11));
            r.response_cache_saved_usd = s.column_double(12);
            index.emplace(r.group, rows.size());
            rows.push_back(std::move(r));
        }
        if (rc != SQLITE_DONE) {
            fail(path_, "cannot read usage: " + sqlite::errmsg(db));
        }
    }
    {
        // Latencies arrive sorted within each group, whose size is known: pick the ranks as
        // they stream past instead of holding them all.
        sqlite::statement s;
        if (auto e = s.prepare(db, latency_sql); !e.empty()) {
            fail(path_, "cannot read latencies: " + e);
        }
        bind(s);
        usage_row* current = nullptr;
        std::string current_group;
        std::uint64_t pos = 0;
        std::uint64_t rank50 = 0;
        std::uint64_t rank95 = 0;
        int rc = SQLITE_OK;
        while ((rc = s.step()) == SQLITE_ROW) {
            auto name = s.column_text(0);
            if (current == nullptr || name != current_group) {
                const auto it = index.find(name);
                current = it != index.end() ? &rows[it->second] : nullptr;
                current_group = std::move(name);
                pos = 0;
                if (current != nullptr) {
                    rank50 = nearest_rank(50, current->requests);
                    rank95 = nearest_rank(95, current->requests);
                }
            }
            if (current == nullptr) {
                continue;
            }
            ++pos;
            if (pos == rank50) {
                current->p50_ms = s.column_double(1);
            }
            if (pos == rank95) {
                current->p95_ms = s.column_double(1);
            }
        }
        if (rc != SQLITE_DONE) {
            fail(path_, "cannot read latencies: " + sqlite::errmsg(db));
        }
    }
    tx.commit();
    return rows;
}

} // namespace michi::store
