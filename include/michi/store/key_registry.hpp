#pragma once
// Client keys made through the admin API, and revocations of any key id (config-file keys
// too), persisted in SQLite. Writes are synchronous; requests read an immutable snapshot
// that every write replaces whole.

#include "michi/config/config.hpp"
#include "michi/core/published.hpp"
#include "michi/store/change_counter.hpp"
#include "michi/store/sqlite_db.hpp"

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace michi::store {

// One key created through the admin API (only the digest of its secret is kept).
struct admin_key {
    std::string id;
    config::key_class cls = config::key_class::developer;
    std::string secret_sha256;       // lower-case hex
    std::vector<std::string> models; // globs; empty = every model and route
    config::limits overrides;        // unset = class default
    bool revoked = false;
    std::int64_t created_ms = 0; // Unix ms

    // The same key in the shape the auth and guard code use for config-file keys.
    config::key_config as_key_config() const;
};

// An admin key as the JSON text that carries it between replicas (store.redis), and back;
// nullopt (why set) when the text is not one.
std::string key_to_json(const admin_key& k);
std::optional<admin_key> key_from_json(const std::string& id, std::string_view text,
                                       std::string& why);

// A change made on this replica, for the others: a key created or edited (its JSON), or a
// revocation (json empty).
struct shared_change {
    std::string id;
    std::string json;
};

// What requests read: immutable once published.
struct key_snapshot {
    std::unordered_map<std::string, admin_key> by_digest; // raw 32-byte digest -> live key
    std::unordered_set<std::string> revoked;              // every revoked id, config keys too
    std::vector<admin_key> keys; // every admin key, revoked ones included, ordered by id

    // The admin key id (revoked ones too), or nullptr: keys is ordered by id.
    const admin_key* find_id(const std::string& id) const;
    // The live admin key whose secret digest (raw, 32 bytes) is digest, or nullptr.
    const admin_key* find_digest(const std::string& digest) const;
    bool is_revoked(const std::string& id) const { return revoked.count(id) != 0; }
};

// Admin-made keys and revocations in one SQLite file, shared by every worker.
class key_registry {
public:
    using snapshot = key_snapshot;

    // Opens (creating directories, file and tables as needed) and loads everything. Throws
    // std::runtime_error naming the path on failure.
    explicit key_registry(const std::string& sqlite_path);

    key_registry(const key_registry&) = delete;
    key_registry& operator=(const key_registry&) = delete;

    // The current view; cheap (a shared_ptr copy under a short lock). Never null.
    std::shared_ptr<const snapshot> current() const;
    // For a reader on the request path (see published.hpp): no lock, no shared count.
    const published<snapshot>& source() const { return snap_; }

    // Stores a new key. Refused (false, error set) when the id is empty, already used by an
    // admin key or revoked before, the digest is not 64 hex digits or belongs to another live
    // admin key, a limit is out of range, or the write fails. The caller checks config ids.
    // created_ms = 0 is set to now; revoked is ignored.
    bool create(admin_key k, std::string& error);
    // Applies edit to a copy of the live admin key id and stores it. The id, created_ms and
    // revoked cannot be changed by edit. Same refusals as create, plus unknown or revoked id.
    bool update(const std::string& id, const std::function<void(admin_key&)>& edit,
                std::string& error);
    // Revokes id (an admin key or a config-file key), durably; true when it is revoked
    // (already was, too). False on an empty id or a write error (logged).
    bool revoke(const std::string& id);
    // The admin key id (revoked ones too), from the current snapshot.
    std::optional<admin_key> find(const std::string& id) const;

    // Re-reads both tables (e.g. written by another process) and publishes them. Returns
    // false, keeping the current view, on a read error (logged).
    bool reload();
    // Reloads when another process sharing the file changed the keys since the last load
    // (a version number every write bumps); true when it did.
    bool refresh();
    // True when a process sharing the file (this one too) wrote keys since the last
    // refresh: a load from the counter the writers bump (change_counter, the file's path
    // with "-keys"), cheap enough for every request. The request path then refreshes before
    // it authenticates, so a key revoked or made by another process counts from the next
    // request on. False for ":memory:" and where the counter could not be mapped (the key
    // sync's poll, five times a second, is left).
    bool changed_elsewhere() const noexcept {
        return changes_ != nullptr &&
               changes_->value() != seen_changes_.load(std::memory_order_relaxed);
    }

    // Sharing with other replicas (key_sync): from now on every create, update and revoke
    // is also queued for them, and notify runs (under the registry's lock: it must only
    // wake someone).
    void share(std::function<void()> notify);
    std::vector<shared_change> take_outbox();
    // Changes taken that could not be sent, ahead of those queued since.
    void put_back(std::vector<shared_change> changes);
    // Stores the keys and revocations the other replicas shared (a key differing from the
    // local one replaces it, unless a change of it here waits to be sent; revocations are
    // only ever added) and publishes them; true when anything changed. Not queued again.
    bool merge_shared(const std::vector<admin_key>& keys,
                      const std::unordered_set<std::string>& revoked);

    const std::string& path() const { return path_; }

private:
    // Reads both tables; returns an error message or "" and fills out.
    std::string load_locked(std::shared_ptr<const snapshot>& out);
    void publish(std::shared_ptr<const snapshot> s);
    // Checks k (normalising the digest to lower case) against the current snapshot;
    // except_id is the key being updated. Returns an error message or "".
    std::string check(admin_key& k, const snapshot& s, const std::string& except_id) const;
    // One admin key row by sql (insert, update or replace); returns an error message or "".
    std::string write_key(const admin_key& k, const char* sql);
    // Runs write (an error message or "") in a transaction that bumps the version; returns
    // an error message or "" (rolled back on any error).
    std::string versioned(const std::function<std::string()>& write);
    // Loads both tables and publishes them (write_mu_ held); false, keeping the current
    // view, on a read error (logged).
    bool reload_locked();
    void queue_locked(shared_change c);

    std::string path_;

    std::mutex write_mu_; // serialises writes and every use of db_
    sqlite::db_ptr db_;

    published<snapshot> snap_;
    std::int64_t loaded_version_ = 0;            // of the tables snap_ was loaded from
    std::unique_ptr<change_counter> changes_;    // bumped after each write committed
    std::atomic<std::uint64_t> seen_changes_{0}; // its value at the last refresh
    std::function<void()> notify_;               // set by share()
    std::vector<shared_change> outbox_;
};

} // namespace michi::store
