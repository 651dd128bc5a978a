#include "michi/store/key_registry.hpp"

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
COMMIT;
)sql";

constexpr const char* select_keys_sql =
    "SELECT id, class, secret_sha256, models, rpm, tpm, daily_usd, monthly_usd, loop_max, "
    "loop_window_ms, created_ms FROM admin_keys ORDER BY id";

constexpr const char* insert_key_sql =
    "INSERT INTO admin_keys (class, secret_sha256, models, rpm, tpm, daily_usd, monthly_usd, "
    "loop_max, loop_window_ms, created_ms, id) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";

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

config::key_config admin_key::as_key_config() const {
    config::key_config c;
    c.id = id;
    c.cls = cls;
    c.secret_sha256 = revoked ? "" : secret_sha256;
    c.models = models;
    c.overrides = overrides;
    return c;
}

const admin_key* key_snapshot::find_digest(const std::string& digest) const {
    const auto it = by_digest.find(digest);
    return it != by_digest.end() ? &it->second : nullptr;
}

key_registry::key_registry(const std::string& sqlite_path)
    : path_(sqlite_path), snap_(std::make_shared<const snapshot>()) {
    db_ = sqlite::open(path_, "key registry");
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

std::shared_ptr<const key_snapshot> key_registry::current() const {
    return snap_.get();
}

void key_registry::publish(std::shared_ptr<const snapshot> s) {
    snap_.set(std::move(s));
}

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
            const auto models = nlohmann::json::parse(s.column_text(3), nullptr, false);
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
    tx.commit();
    out = build(std::move(keys), std::move(revoked));
    return {};
}

bool key_registry::reload() {
    std::lock_guard lock(write_mu_);
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

std::string key_registry::write_key(const admin_key& k, bool insert) {
    nlohmann::json models = nlohmann::json::array();
    for (const auto& m : k.models) {
        models.push_back(m);
    }
    sqlite::statement s;
    if (auto e = s.prepare(db_.get(), insert ? insert_key_sql : update_key_sql); !e.empty()) {
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
    if (!insert && sqlite3_changes(db_.get()) != 1) {
        return "the key is no longer in the store";
    }
    return {};
}

bool key_registry::create(admin_key k, std::string& error) {
    std::lock_guard lock(write_mu_);
    const auto s = current();
    if (auto e = check(k, *s, {}); !e.empty()) {
        error = std::move(e);
        return false;
    }
    const auto dup = std::find_if(s->keys.begin(), s->keys.end(),
                                  [&](const admin_key& o) { return o.id == k.id; });
    if (dup != s->keys.end()) {
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
    if (auto e = write_key(k, true); !e.empty()) {
        spdlog::error("key registry {}: storing key \"{}\" failed: {}", path_, k.id, e);
        error = "cannot store the key: " + e;
        return false;
    }
    auto keys = s->keys;
    keys.push_back(std::move(k));
    publish(build(std::move(keys), s->revoked));
    return true;
}

bool key_registry::update(const std::string& id, const std::function<void(admin_key&)>& edit,
                          std::string& error) {
    std::lock_guard lock(write_mu_);
    const auto s = current();
    const auto it = std::find_if(s->keys.begin(), s->keys.end(),
                                 [&](const admin_key& o) { return o.id == id; });
    if (it == s->keys.end()) {
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
    if (auto e = write_key(k, false); !e.empty()) {
        spdlog::error("key registry {}: updating key \"{}\" failed: {}", path_, id, e);
        error = "cannot store the key: " + e;
        return false;
    }
    auto keys = s->keys;
    keys[static_cast<std::size_t>(it - s->keys.begin())] = std::move(k);
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
    sqlite::statement st;
    std::string e =
        st.prepare(db_.get(), "INSERT OR IGNORE INTO revoked_keys (id, ts_ms) VALUES (?1, ?2)");
    if (e.empty()) {
        st.bind_text(1, id);
        st.bind_int(2, now_ms());
        if (st.step() != SQLITE_DONE) {
            e = sqlite::errmsg(db_.get());
        }
    }
    if (!e.empty()) {
        spdlog::error("key registry {}: revoking key \"{}\" failed: {}", path_, id, e);
        return false;
    }
    auto revoked = s->revoked;
    revoked.insert(id);
    publish(build(s->keys, std::move(revoked)));
    return true;
}

std::optional<admin_key> key_registry::find(const std::string& id) const {
    const auto s = current();
    const auto it = std::lower_bound(s->keys.begin(), s->keys.end(), id,
                                     [](const admin_key& k, const std::string& v) {
                                         return k.id < v;
                                     });
    if (it == s->keys.end() || it->id != id) {
        return std::nullopt;
    }
    return *it;
}

} // namespace michi::store
