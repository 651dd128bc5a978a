#include "michi/store/key_registry.hpp"

#include "michi/core/json_parse.hpp"
#include "michi/core/secret.hpp"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>
#include <sqlite3.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <utility>

namespace michi::store {
namespace {

constexpr const char* schema_sql = R"sql(
BEGIN IMMEDIATE;
CREATE TABLE IF NOT EXISTS admin_keys (
    id TEXT PRIMARY KEY,
    class TEXT NOT NULL,
    secret_sha256 TEXT NOT NULL,
    models TEXT NOT NULL DEFAULT '[]',
    rpm INTEGER NULL,
    tpm INTEGER NULL,
    daily_usd REAL NULL,
    monthly_usd REAL NULL,
    loop_max INTEGER NULL,
    loop_window_ms INTEGER NULL,
    created_ms INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS revoked_keys (
    id TEXT PRIMARY KEY,
    ts_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS key_changes (version INTEGER NOT NULL);
INSERT INTO key_changes (version) SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM key_changes);
COMMIT;
)sql";

constexpr const char* select_keys_sql =
    "SELECT id, class, secret_sha256, models, rpm, tpm, daily_usd, monthly_usd, loop_max, "
    "loop_window_ms, created_ms FROM admin_keys ORDER BY id";

constexpr const char* insert_key_sql =
    "INSERT INTO admin_keys (class, secret_sha256, models, rpm, tpm, daily_usd, monthly_usd, "
    "loop_max, loop_window_ms, created_ms, id) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";

constexpr const char* replace_key_sql =
    "INSERT OR REPLACE INTO admin_keys (class, secret_sha256, models, rpm, tpm, daily_usd, "
    "monthly_usd, loop_max, loop_window_ms, created_ms, id) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";

constexpr const char* revoke_sql = "INSERT OR IGNORE INTO revoked_keys (id, ts_ms) VALUES (?1, ?2)";

// Every write bumps it in its own transaction: another process on the same file sees the
// number move and reloads (refresh).
constexpr const char* bump_sql = "UPDATE key_changes SET version = version + 1";

constexpr const char* update_key_sql =
    "UPDATE admin_keys SET class = ?1, secret_sha256 = ?2, models = ?3, rpm = ?4, tpm = ?5, "
    "daily_usd = ?6, monthly_usd = ?7, loop_max = ?8, loop_window_ms = ?9, created_ms = ?10 "
    "WHERE id = ?11";

constexpr auto int_max = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());

std::int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

void bind_opt_int(sqlite::statement& s, int i, const std::optional<std::uint64_t>& v) {
    if (v) {
        s.bind_int(i, static_cast<std::int64_t>(*v));
    } else {
        s.bind_null(i);
    }
}

void bind_opt_double(sqlite::statement& s, int i, const std::optional<double>& v) {
    if (v) {
        s.bind_double(i, *v);
    } else {
        s.bind_null(i);
    }
}

std::optional<std::uint64_t> opt_uint(const sqlite::statement& s, int col) {
    if (s.is_null(col) || s.column_int(col) < 0) {
        return std::nullopt;
    }
    return static_cast<std::uint64_t>(s.column_int(col));
}

std::optional<double> opt_double(const sqlite::statement& s, int col) {
    if (s.is_null(col)) {
        return std::nullopt;
    }
    return s.column_double(col);
}

std::string read_version(sqlite3* db, std::int64_t& out) {
    sqlite::statement s;
    if (auto e = s.prepare(db, "SELECT version FROM key_changes"); !e.empty()) {
        return e;
    }
    const int rc = s.step();
    if (rc == SQLITE_ROW) {
        out = s.column_int(0);
        return {};
    }
    if (rc == SQLITE_DONE) {
        out = 0;
        return {};
    }
    return sqlite::errmsg(db);
}

std::string insert_revocation(sqlite3* db, const std::string& id) {
    sqlite::statement st;
    if (auto e = st.prepare(db, revoke_sql); !e.empty()) {
        return e;
    }
    st.bind_text(1, id);
    st.bind_int(2, now_ms());
    return st.step() == SQLITE_DONE ? std::string() : sqlite::errmsg(db);
}

// A snapshot of keys and revoked, with the revoked flags and the digest index derived.
std::shared_ptr<const key_snapshot> build(std::vector<admin_key> keys,
                                          std::unordered_set<std::string> revoked) {
    auto s = std::make_shared<key_snapshot>();
    std::sort(keys.begin(), keys.end(),
              [](const admin_key& a, const admin_key& b) { return a.id < b.id; });
    for (auto& k : keys) {
        k.revoked = revoked.count(k.id) != 0;
        if (!k.revoked && is_sha256_hex(k.secret_sha256)) {
            s->by_digest.emplace(hex_to_raw(k.secret_sha256), k);
        }
    }
    s->keys = std::move(keys);
    s->revoked = std::move(revoked);
    return s;
}

} // namespace

key_registry::key_registry(const std::string& sqlite_path)
    : path_(sqlite_path), snap_(std::make_shared<const snapshot>()) {
    db_ = sqlite::open(path_, "key registry");
    if (path_ != ":memory:") {
        std::string why;
        changes_ = std::make_unique<change_counter>(path_ + "-keys", why);
        if (!changes_->valid()) {
            spdlog::warn("key registry {}: no change counter shared with other processes on "
                         "this file ({}); they see its key changes within 0.2 s",
                         path_, why);
            changes_.reset();
        } else {
            seen_changes_ = changes_->value(); // (read before the load below)
        }
    }
    if (auto e = sqlite::exec(db_.get(), schema_sql); !e.empty()) {
        sqlite::exec(db_.get(), "ROLLBACK");
        throw std::runtime_error("key registry " + path_ + ": cannot create the schema: " + e);
    }
    std::shared_ptr<const snapshot> s;
    if (auto e = load_locked(s); !e.empty()) {
        throw std::runtime_error("key registry " + path_ + ": cannot load: " + e);
    }
    snap_.set(std::move(s));
}

std::shared_ptr<const key_snapshot> key_registry::current() const { return snap_.get(); }

void key_registry::publish(std::shared_ptr<const snapshot> s) { snap_.set(std::move(s)); }

std::string key_registry::load_locked(std::shared_ptr<const snapshot>& out) {
    sqlite3* db = db_.get();
    sqlite::transaction tx(db, "BEGIN"); // both tables from one state of the file
    if (!tx.error().empty()) {
        return tx.error();
    }
    std::vector<admin_key> keys;
    {
        sqlite::statement s;
        if (auto e = s.prepare(db, select_keys_sql); !e.empty()) {
            return e;
        }
        int rc = SQLITE_OK;
        while ((rc = s.step()) == SQLITE_ROW) {
            admin_key k;
            k.id = s.column_text(0);
            const auto cls_name = s.column_text(1);
            const auto cls = config::parse_key_class(cls_name);
            const auto models = json_parse::parse_value(s.column_text(3));
            bool models_ok = models.is_array();
            if (models_ok) {
                for (const auto& m : models) {
                    if (!m.is_string()) {
                        models_ok = false;
                        break;
                    }
                    k.models.push_back(m.get<std::string>());
                }
            }
            if (!cls || !models_ok) {
                // A key the gateway cannot read would be a key nobody can reason about: it
                // stays out of the view (so it does not authenticate) and the log says why.
                spdlog::error("key registry {}: skipping admin key \"{}\": {}", path_, k.id,
                              !cls ? "unknown class \"" + cls_name + "\""
                                   : std::string("models is not a JSON array of strings"));
                continue;
            }
            k.cls = *cls;
            k.secret_sha256 = s.column_text(2);
            k.overrides.rpm = opt_uint(s, 4);
            k.overrides.tpm = opt_uint(s, 5);
            k.overrides.daily_usd = opt_double(s, 6);
            k.overrides.monthly_usd = opt_double(s, 7);
            k.overrides.loop_max = opt_uint(s, 8);
            if (const auto w = opt_uint(s, 9)) {
                k.overrides.loop_window = config::duration(static_cast<std::int64_t>(*w));
            }
            k.created_ms = s.column_int(10);
            keys.push_back(std::move(k));
        }
        if (rc != SQLITE_DONE) {
            return sqlite::errmsg(db);
        }
    }
    std::unordered_set<std::string> revoked;
    {
        sqlite::statement s;
        if (auto e = s.prepare(db, "SELECT id FROM revoked_keys"); !e.empty()) {
            return e;
        }
        int rc = SQLITE_OK;
        while ((rc = s.step()) == SQLITE_ROW) {
            revoked.insert(s.column_text(0));
        }
        if (rc != SQLITE_DONE) {
            return sqlite::errmsg(db);
        }
    }
    std::int64_t version = 0;
    if (auto e = read_version(db, version); !e.empty()) {
        return e;
    }
    tx.commit();
    out = build(std::move(keys), std::move(revoked));
    loaded_version_ = version;
    return {};
}

bool key_registry::refresh() {
    // Read before the version: a write committed after this read bumps the counter again,
    // and the next changed_elsewhere() sees it. Stored once the keys it stands for are
    // published: until then a request that finds the counter moved refreshes too (and waits
    // here for this one) instead of passing with the keys from before the change. (Stored
    // whatever happens below: a read that fails is tried again by the key sync's poll, not
    // by every request.)
    const std::uint64_t counted = changes_ ? changes_->value() : 0;
    std::lock_guard lock(write_mu_);
    std::int64_t version = 0;
    bool changed = false;
    if (auto e = read_version(db_.get(), version); !e.empty()) {
        spdlog::error("key registry {}: cannot read its version: {}", path_, e);
    } else {
        changed = version != loaded_version_ && reload_locked();
    }
    seen_changes_.store(counted, std::memory_order_relaxed);
    return changed;
}

bool key_registry::reload() {
    std::lock_guard lock(write_mu_);
    return reload_locked();
}

bool key_registry::reload_locked() {
    std::shared_ptr<const snapshot> s;
    if (auto e = load_locked(s); !e.empty()) {
        spdlog::error("key registry {}: reload failed, keeping the current keys: {}", path_, e);
        return false;
    }
    publish(std::move(s));
    return true;
}

std::string key_registry::check(admin_key& k, const snapshot& s,
                                const std::string& except_id) const {
    if (k.id.empty()) {
        return "id must not be empty";
    }
    if (!is_sha256_hex(k.secret_sha256)) {
        return "secret_sha256 must be 64 hex digits";
    }
    std::transform(k.secret_sha256.begin(), k.secret_sha256.end(), k.secret_sha256.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    const auto& o = k.overrides;
    for (const auto* v : {&o.rpm, &o.tpm, &o.loop_max}) {
        if (*v && **v > int_max) {
            return "limit out of range";
        }
    }
    for (const auto* v : {&o.daily_usd, &o.monthly_usd}) {
        if (*v && (!std::isfinite(**v) || **v < 0)) {
            return "USD budgets must be finite and not negative";
        }
    }
    if (o.loop_window && o.loop_window->count() < 0) {
        return "loop_window must not be negative";
    }
    for (const auto& m : k.models) {
        if (m.empty()) {
            return "models must not contain an empty name";
        }
    }
    if (const auto* other = s.find_digest(hex_to_raw(k.secret_sha256));
        other != nullptr && other->id != except_id) {
        return "another key has the same secret";
    }
    return {};
}

std::string key_registry::write_key(const admin_key& k, const char* sql) {
    nlohmann::json models = nlohmann::json::array();
    for (const auto& m : k.models) {
        models.push_back(m);
    }
    sqlite::statement s;
    if (auto e = s.prepare(db_.get(), sql); !e.empty()) {
        return e;
    }
    s.bind_text(1, config::to_string(k.cls));
    s.bind_text(2, k.secret_sha256);
    s.bind_text(3, models.dump());
    bind_opt_int(s, 4, k.overrides.rpm);
    bind_opt_int(s, 5, k.overrides.tpm);
    bind_opt_double(s, 6, k.overrides.daily_usd);
    bind_opt_double(s, 7, k.overrides.monthly_usd);
    bind_opt_int(s, 8, k.overrides.loop_max);
    if (k.overrides.loop_window) {
        s.bind_int(9, k.overrides.loop_window->count());
    } else {
        s.bind_null(9);
    }
    s.bind_int(10, k.created_ms);
    s.bind_text(11, k.id);
    if (s.step() != SQLITE_DONE) {
        return sqlite::errmsg(db_.get());
    }
    if (sql == update_key_sql && sqlite3_changes(db_.get()) != 1) {
        return "the key is no longer in the store";
    }
    return {};
}

std::string key_registry::versioned(const std::function<std::string()>& write) {
    sqlite::transaction tx(db_.get());
    if (!tx.error().empty()) {
        return tx.error();
    }
    if (auto e = write(); !e.empty()) {
        return e;
    }
    if (auto e = sqlite::exec(db_.get(), bump_sql); !e.empty()) {
        return e;
    }
    auto e = tx.commit();
    if (e.empty() && changes_) {
        changes_->bump(); // (after the commit: whoever sees the bump reads the change)
    }
    return e;
}

void key_registry::share(std::function<void()> notify) {
    std::lock_guard lock(write_mu_);
    notify_ = std::move(notify);
}

std::vector<shared_change> key_registry::take_outbox() {
    std::lock_guard lock(write_mu_);
    return std::exchange(outbox_, {});
}

void key_registry::put_back(std::vector<shared_change> changes) {
    std::lock_guard lock(write_mu_);
    changes.insert(changes.end(), std::make_move_iterator(outbox_.begin()),
                   std::make_move_iterator(outbox_.end()));
    outbox_ = std::move(changes);
}

void key_registry::queue_locked(shared_change c) {
    if (notify_) {
        outbox_.push_back(std::move(c));
        notify_();
    }
}

bool key_registry::merge_shared(const std::vector<admin_key>& keys,
                                const std::unordered_set<std::string>& revoked) {
    std::lock_guard lock(write_mu_);
    const auto s = current();
    // What differs from this replica's view, found before anything is written.
    std::vector<const admin_key*> new_keys;
    std::vector<const std::string*> new_revoked;
    for (const auto& k : keys) {
        if (const auto* mine = s->find_id(k.id);
            mine != nullptr && key_to_json(*mine) == key_to_json(k)) {
            continue;
        }
        // A change of this replica's not sent yet is newer than what Redis had.
        if (std::any_of(outbox_.begin(), outbox_.end(),
                        [&](const shared_change& c) { return c.id == k.id; })) {
            continue;
        }
        new_keys.push_back(&k);
    }
    for (const auto& id : revoked) {
        if (!s->is_revoked(id)) {
            new_revoked.push_back(&id);
        }
    }
    if (new_keys.empty() && new_revoked.empty()) {
        return false;
    }
    const auto e = versioned([&] {
        std::string error;
        for (std::size_t i = 0; i < new_keys.size() && error.empty(); ++i) {
            error = write_key(*new_keys[i], replace_key_sql);
        }
        for (std::size_t i = 0; i < new_revoked.size() && error.empty(); ++i) {
            error = insert_revocation(db_.get(), *new_revoked[i]);
        }
        return error;
    });
    if (!e.empty()) {
        spdlog::error("key registry {}: storing the shared keys failed: {}", path_, e);
        return false;
    }
    return reload_locked();
}

bool key_registry::create(admin_key k, std::string& error) {
    std::lock_guard lock(write_mu_);
    const auto s = current();
    if (auto e = check(k, *s, {}); !e.empty()) {
        error = std::move(e);
        return false;
    }
    if (s->find_id(k.id) != nullptr) {
        error = "key id \"" + k.id + "\" already exists";
        return false;
    }
    if (s->is_revoked(k.id)) {
        error = "key id \"" + k.id + "\" was revoked and cannot be reused";
        return false;
    }
    k.revoked = false;
    if (k.created_ms == 0) {
        k.created_ms = now_ms();
    }
    if (auto e = versioned([&] { return write_key(k, insert_key_sql); }); !e.empty()) {
        spdlog::error("key registry {}: storing key \"{}\" failed: {}", path_, k.id, e);
        error = "cannot store the key: " + e;
        return false;
    }
    queue_locked({k.id, key_to_json(k)});
    auto keys = s->keys;
    keys.push_back(std::move(k));
    publish(build(std::move(keys), s->revoked));
    return true;
}

bool key_registry::update(const std::string& id, const std::function<void(admin_key&)>& edit,
                          std::string& error) {
    std::lock_guard lock(write_mu_);
    const auto s = current();
    const admin_key* it = s->find_id(id);
    if (it == nullptr) {
        error = "no admin key \"" + id + "\"";
        return false;
    }
    if (it->revoked) {
        error = "key \"" + id + "\" is revoked";
        return false;
    }
    admin_key k = *it;
    edit(k);
    if (k.id != id) {
        error = "the id of a key cannot change";
        return false;
    }
    k.created_ms = it->created_ms;
    k.revoked = false;
    if (auto e = check(k, *s, id); !e.empty()) {
        error = std::move(e);
        return false;
    }
    if (auto e = versioned([&] { return write_key(k, update_key_sql); }); !e.empty()) {
        spdlog::error("key registry {}: updating key \"{}\" failed: {}", path_, id, e);
        error = "cannot store the key: " + e;
        return false;
    }
    queue_locked({k.id, key_to_json(k)});
    auto keys = s->keys;
    keys[static_cast<std::size_t>(it - s->keys.data())] = std::move(k);
    publish(build(std::move(keys), s->revoked));
    return true;
}

bool key_registry::revoke(const std::string& id) {
    if (id.empty()) {
        return false;
    }
    std::lock_guard lock(write_mu_);
    const auto s = current();
    if (s->is_revoked(id)) {
        return true;
    }
    const auto e = versioned([&] { return insert_revocation(db_.get(), id); });
    if (!e.empty()) {
        spdlog::error("key registry {}: revoking key \"{}\" failed: {}", path_, id, e);
        return false;
    }
    queue_locked({id, ""});
    auto revoked = s->revoked;
    revoked.insert(id);
    publish(build(s->keys, std::move(revoked)));
    return true;
}

std::optional<admin_key> key_registry::find(const std::string& id) const {
    const auto s = current();
    const auto* k = s->find_id(id);
    if (k == nullptr) {
        return std::nullopt;
    }
    return *k;
}

} // namespace michi::store
