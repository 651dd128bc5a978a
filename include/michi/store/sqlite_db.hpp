#pragma once
// Small shared SQLite plumbing for the stores: opening a connection the same way everywhere
// (parent directories, WAL, busy timeout), running SQL, prepared statements and transactions.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

struct sqlite3;
struct sqlite3_stmt;

namespace michi::store::sqlite {

// Deleters for std::unique_ptr: sqlite3_close_v2 and sqlite3_finalize.
struct db_closer {
    void operator()(sqlite3* db) const;
};
struct stmt_finalizer {
    void operator()(sqlite3_stmt* stmt) const;
};
using db_ptr = std::unique_ptr<sqlite3, db_closer>;
using stmt_ptr = std::unique_ptr<sqlite3_stmt, stmt_finalizer>;

// Creates the parent directories of path (unless ":memory:"), opens it (creating the file),
// turns on extended result codes, a 5 s busy timeout, WAL and synchronous=NORMAL. With
// query_only the file must exist and the connection refuses writes. Throws
// std::runtime_error "<what> <path>: …" on failure.
// serialised_by::caller: every use of the connection is under one lock of the caller's,
// so SQLite's own per-call mutexes are left out (SQLITE_OPEN_NOMUTEX).
enum class serialised_by { sqlite, caller };
db_ptr open(const std::string& path, const std::string& what, bool query_only = false,
            serialised_by serialised = serialised_by::sqlite);

// The connection's last error message ("out of memory" for a null connection).
std::string errmsg(sqlite3* db);
// Runs sql (one or more statements, rows ignored); returns an error message or "".
std::string exec(sqlite3* db, const char* sql);
// The first column of the first row of sql as text ("" when there is none); sets error.
std::string query_text(sqlite3* db, const char* sql, std::string& error);

// A prepared statement: bind by 1-based index, step, read columns, reset for reuse.
class statement {
public:
    statement() = default;
    // Prepares sql on db; returns an error message or "".
    std::string prepare(sqlite3* db, std::string_view sql, bool persistent = false);

    explicit operator bool() const { return stmt_ != nullptr; }
    sqlite3_stmt* get() const { return stmt_.get(); }

    // Text is copied by SQLite, so temporaries are fine.
    void bind_text(int index, std::string_view text);
    // Binds text without copying it: the caller keeps it alive and unchanged until the
    // statement is reset or the parameter bound again.
    void bind_text_unowned(int index, std::string_view text);
    void bind_int(int index, std::int64_t value);
    void bind_double(int index, double value);
    void bind_null(int index);

    // SQLITE_ROW, SQLITE_DONE or an error code (see errmsg of the connection).
    int step();
    // Ready for the next execution: resets and clears the bindings.
    void reset();

    bool is_null(int column) const;
    std::string column_text(int column) const;
    std::int64_t column_int(int column) const;
    double column_double(int column) const;

private:
    stmt_ptr stmt_;
};

// BEGIN … COMMIT; rolled back on destruction unless commit() succeeded.
class transaction {
public:
    explicit transaction(sqlite3* db, const char* begin_sql = "BEGIN IMMEDIATE");
    ~transaction();
    transaction(const transaction&) = delete;
    transaction& operator=(const transaction&) = delete;

    // The BEGIN error, or "" when the transaction is open.
    const std::string& error() const { return error_; }
    // Returns an error message or ""; on error the transaction is rolled back.
    std::string commit();

private:
    sqlite3* db_;
    std::string error_;
    bool open_ = false;
};

} // namespace michi::store::sqlite
