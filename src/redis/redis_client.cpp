#include "michi/redis/redis_client.hpp"

#include <spdlog/spdlog.h>

#include <charconv>

namespace michi::redis {
namespace {

// After a failed question to the Sentinels or the cluster, calls fail at once for this
// long; a primary or node that failed to connect is tried again after it too.
constexpr std::chrono::milliseconds topology_backoff{250};
// Redirections (MOVED, ASK, a primary that became a replica) followed for one call.
constexpr int max_hops = 5;
// A cluster's TRYAGAIN (a multi-key command on a slot in migration) is sent again after this.
constexpr std::chrono::milliseconds try_again_pause{50};

// "host:port" of a MOVED/ASK reply (an IPv6 host is not bracketed there); an empty host is
// the one asked.
std::optional<redis_endpoint> parse_address(std::string_view text, const redis_endpoint& asked) {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) {
        return std::nullopt;
    }
    unsigned port = 0;
    const auto p = text.substr(colon + 1);
    const auto r = std::from_chars(p.data(), p.data() + p.size(), port);
    if (r.ec != std::errc{} || port == 0 || port > 65535) {
        return std::nullopt;
    }
    std::string host(text.substr(0, colon));
    if (host.starts_with('[') && host.ends_with(']')) {
        host = host.substr(1, host.size() - 2);
    }
    if (host.empty() || host == "?") {
        host = asked.host;
    }
    return redis_endpoint{std::move(host), static_cast<std::uint16_t>(port)};
}

} // namespace

struct redis_client::topology {
    explicit topology(executor ex) : wake(ex) {}
    // Sentinel: a connection to each Sentinel, made on first use; the one that answered last
    // is asked first.
    std::vector<std::unique_ptr<redis_connection>> sentinels;
    std::size_t next_sentinel = 0;
    bool primary_known = false;
    // Cluster: a connection per node (kept for the client's life), the node of each slot.
    std::vector<std::unique_ptr<redis_connection>> nodes;
    std::vector<std::int16_t> slots;
    bool map_loaded = false;
    bool map_stale = false;
    // One question at a time; the calls that need its answer wait for it on `wake`.
    bool busy = false;
    steady_timer wake;
    steady_clock::time_point retry_after{};
};

redis_client::redis_client(executor ex, redis_url url, std::chrono::milliseconds timeout)
    : ex_(ex), url_(std::move(url)), timeout_(timeout) {
    if (url_.tls) {
        tls_ = std::make_unique<ssl::context>(ssl::context::tls_client);
        tls_->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                          ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                          ssl::context::no_tlsv1_1);
        error_code ec;
        tls_->set_default_verify_paths(ec);
        if (!url_.ca_file.empty()) {
            tls_->load_verify_file(url_.ca_file, ec);
            if (ec) {
                setup_error_ = "cannot read the CA file " + url_.ca_file + ": " + ec.message();
                spdlog::error("redis {}: {}", url_.where(), setup_error_);
            }
        }
    }
    hello_.username = url_.username;
    hello_.password = url_.password;
    hello_.db = url_.db;
    hello_.tls = tls_.get();
    if (url_.mode == redis_mode::single) {
        primary_ = std::make_unique<redis_connection>(ex_, url_.nodes.front(), hello_, timeout_);
        return;
    }
    hello_.backoff = topology_backoff;
    topo_ = std::make_unique<topology>(ex_);
    if (url_.mode == redis_mode::sentinel) {
        hello_.expect_primary = true;
        const redis_hello to_sentinel{
            url_.sentinel_username, url_.sentinel_password, 0, false, tls_.get(), topology_backoff};
        for (const auto& at : url_.nodes) {
            topo_->sentinels.push_back(
                std::make_unique<redis_connection>(ex_, at, to_sentinel, timeout_));
        }
    } else {
        topo_->slots.assign(redis_slots, -1);
        for (const auto& at : url_.nodes) {
            node(at);
        }
    }
}

redis_client::~redis_client() = default;

redis_connection& redis_client::node(const redis_endpoint& at) {
    for (auto& n : topo_->nodes) {
        if (n->endpoint() == at) {
            return *n;
        }
    }
    topo_->nodes.push_back(std::make_unique<redis_connection>(ex_, at, hello_, timeout_));
    return *topo_->nodes.back();
}

awaitable<std::tuple<error_code, redis_value>> redis_client::call(redis_command cmd) {
    if (url_.mode == redis_mode::single && setup_error_.empty()) {
        auto [ec, v] = co_await primary_->async_call(cmd.bytes(), false, nothrow_op);
        if (ec) {
            last_error_ = primary_->last_error();
        }
        co_return std::make_tuple(ec, std::move(v));
    }
    const std::string bytes = cmd.bytes();
    redis_connection* target = nullptr;
    bool asking = false;
    bool resent = false;
    for (int hop = 0; hop < max_hops; ++hop) {
        if (target == nullptr) {
            target = co_await route(cmd.slot);
            if (target == nullptr) {
                co_return std::make_tuple(error_code(net::error::not_connected), redis_value{});
            }
        }
        auto [ec, v] = co_await target->async_call(bytes, asking, nothrow_op);
        asking = false;
        if (ec) {
            last_error_ = url_.mode == redis_mode::single
                              ? target->last_error()
                              : target->endpoint().where() + ": " + target->last_error();
            lost(*target);
            // Never sent (its server could not be reached): the map or the primary is asked
            // again and the command goes where they say, once.
            if (ec == net::error::not_connected && !resent && topo_) {
                resent = true;
                target = nullptr;
                continue;
            }
            co_return std::make_tuple(ec, redis_value{});
        }
        if (v.is_error() && url_.mode == redis_mode::cluster && v.str.starts_with("TRYAGAIN")) {
            // A multi-key command on a slot being migrated: it may run once the keys moved.
            steady_timer pause(ex_, try_again_pause);
            co_await pause.async_wait(nothrow_op);
            target = nullptr;
            continue;
        }
        if (v.is_error() && topo_ && follow(v, cmd.slot, target, asking)) {
            continue;
        }
        co_return std::make_tuple(ec, std::move(v));
    }
    last_error_ = "too many redirections (last: a slot in migration or moving)";
    co_return std::make_tuple(error_code(net::error::connection_aborted), redis_value{});
}

// A redirection that says the command did not run and where it should: follows it (target
// set; null: route again) and says so.
bool redis_client::follow(const redis_value& v, int slot, redis_connection*& target, bool& asking) {
    const std::string_view e = v.str;
    if (url_.mode == redis_mode::cluster && (e.starts_with("MOVED ") || e.starts_with("ASK "))) {
        const auto sp = e.rfind(' ');
        const auto at = parse_address(e.substr(sp + 1), target->endpoint());
        if (!at) {
            return false;
        }
        redis_connection& next = node(*at);
        if (e.starts_with("ASK ")) {
            asking = true; // this once, for a slot being migrated
        } else {
            topo_->map_stale = true; // the whole map is read again on the next call
            for (std::size_t i = 0; i < topo_->nodes.size(); ++i) {
                if (topo_->nodes[i].get() == &next && slot >= 0) {
                    topo_->slots[static_cast<std::size_t>(slot)] = static_cast<std::int16_t>(i);
                }
            }
        }
        target = &next;
        return true;
    }
    if (url_.mode == redis_mode::sentinel &&
        (e.starts_with("READONLY") || e.starts_with("MASTERDOWN"))) {
        // The server took a replica's role (a failover): ask the Sentinels again.
        spdlog::warn("redis {}: {} is no primary any more ({}): asking the Sentinels", url_.where(),
                     target->endpoint().where(), e.substr(0, e.find(' ')));
        topo_->primary_known = false;
        target = nullptr;
        return true;
    }
    return false;
}

void redis_client::lost(redis_connection& conn) {
    if (!topo_) {
        return;
    }
    if (url_.mode == redis_mode::sentinel && &conn == primary_.get()) {
        topo_->primary_known = false;
    } else if (url_.mode == redis_mode::cluster) {
        topo_->map_stale = true;
    }
}

awaitable<redis_connection*> redis_client::route(int slot) {
    if (!setup_error_.empty()) {
        last_error_ = setup_error_;
        co_return nullptr;
    }
    if (!topo_) {
        co_return primary_.get();
    }
    topology& t = *topo_;
    const auto needed = [&] {
        if (url_.mode == redis_mode::sentinel) {
            return !t.primary_known;
        }
        return !t.map_loaded || t.map_stale ||
               (slot >= 0 && t.slots[static_cast<std::size_t>(slot)] < 0);
    };
    if (needed()) {
        if (t.busy) {
            // Someone is asking already: wait for the answer (bounded by that question's
            // timeouts) and take it.
            co_await t.wake.async_wait(nothrow_op);
        } else if (steady_clock::now() < t.retry_after) {
            co_return nullptr; // (last_error_ still says why the last question failed)
        } else {
            t.busy = true;
            t.wake.expires_at(steady_clock::time_point::max());
            if (url_.mode == redis_mode::sentinel) {
                co_await find_primary();
            } else {
                co_await load_slots();
            }
            t.busy = false;
            t.wake.cancel();
        }
    }
    if (url_.mode == redis_mode::sentinel) {
        co_return t.primary_known ? primary_.get() : nullptr;
    }
    if (!t.map_loaded) {
        co_return nullptr;
    }
    if (slot < 0) {
        for (auto& n : t.nodes) {
            if (!n->backing_off()) {
                co_return n.get();
            }
        }
        co_return t.nodes.front().get();
    }
    const auto idx = t.slots[static_cast<std::size_t>(slot)];
    if (idx < 0) {
        last_error_ = "no cluster node serves slot " + std::to_string(slot);
        co_return nullptr;
    }
    co_return t.nodes[static_cast<std::size_t>(idx)].get();
}

awaitable<void> redis_client::find_primary() {
    topology& t = *topo_;
    const std::string ask =
        redis_command({"SENTINEL", "get-master-addr-by-name", url_.primary_name}).bytes();
    std::string why;
    for (std::size_t i = 0; i < t.sentinels.size(); ++i) {
        const std::size_t at = (t.next_sentinel + i) % t.sentinels.size();
        redis_connection& s = *t.sentinels[at];
        auto [ec, v] = co_await s.async_call(ask, false, nothrow_op);
        const std::string who = "Sentinel " + s.endpoint().where() + ": ";
        if (ec) {
            why += (why.empty() ? "" : "; ") + who + s.last_error();
            continue;
        }
        unsigned port = 0;
        if (v.type == redis_value::kind::array && v.elements.size() == 2 &&
            std::from_chars(v.elements[1].str.data(),
                            v.elements[1].str.data() + v.elements[1].str.size(), port)
                    .ec == std::errc{} &&
            port > 0 && port <= 65535) {
            redis_endpoint primary{v.elements[0].str, static_cast<std::uint16_t>(port)};
            if (!primary_) {
                primary_ = std::make_unique<redis_connection>(ex_, primary, hello_, timeout_);
                spdlog::info("redis {}: the primary is {}", url_.where(), primary.where());
            } else if (primary_->endpoint() != primary) {
                spdlog::warn("redis {}: the primary is now {} (was {})", url_.where(),
                             primary.where(), primary_->endpoint().where());
                primary_->retarget(primary);
            }
            t.primary_known = true;
            t.next_sentinel = at;
            co_return;
        }
        why += (why.empty() ? "" : "; ") + who +
               (v.is_error() ? v.str : "knows no primary named \"" + url_.primary_name + "\"");
    }
    last_error_ = "no Sentinel named the primary (" + why + ")";
    spdlog::warn("redis {}: {}", url_.where(), last_error_);
    t.retry_after = steady_clock::now() + topology_backoff;
}

awaitable<void> redis_client::load_slots() {
    topology& t = *topo_;
    const std::string ask = redis_command({"CLUSTER", "SLOTS"}).bytes();
    std::string why;
    // The nodes known (the seeds first), each until one answers.
    for (std::size_t i = 0; i < t.nodes.size(); ++i) {
        redis_connection& n = *t.nodes[i];
        if (n.backing_off()) {
            continue;
        }
        auto [ec, v] = co_await n.async_call(ask, false, nothrow_op);
        const std::string who = n.endpoint().where() + ": ";
        if (ec || v.type != redis_value::kind::array) {
            why += (why.empty() ? "" : "; ") + who + (ec ? n.last_error() : v.str);
            continue;
        }
        std::vector<std::int16_t> slots(redis_slots, -1);
        const redis_endpoint asked = n.endpoint();
        for (const auto& range : v.elements) {
            if (range.type != redis_value::kind::array || range.elements.size() < 3 ||
                range.elements[2].type != redis_value::kind::array ||
                range.elements[2].elements.size() < 2) {
                continue;
            }
            const auto& primary = range.elements[2].elements;
            std::string host = primary[0].str;
            if (host.empty() || host == "?") {
                host = asked.host;
            }
            const long long port = primary[1].integer;
            const long long from = range.elements[0].integer;
            const long long to = range.elements[1].integer;
            if (port <= 0 || port > 65535 || from < 0 || to >= redis_slots || from > to) {
                continue;
            }
            redis_connection& owner = node({host, static_cast<std::uint16_t>(port)});
            std::int16_t idx = 0;
            while (t.nodes[static_cast<std::size_t>(idx)].get() != &owner) {
                ++idx;
            }
            for (long long s = from; s <= to; ++s) {
                slots[static_cast<std::size_t>(s)] = idx;
            }
        }
        t.slots = std::move(slots);
        if (!t.map_loaded) {
            spdlog::info("redis {}: cluster map read from {}", url_.where(), asked.where());
        }
        t.map_loaded = true;
        t.map_stale = false;
        co_return;
    }
    last_error_ = "no cluster node answered CLUSTER SLOTS (" + why + ")";
    spdlog::warn("redis {}: {}", url_.where(), last_error_);
    t.retry_after = steady_clock::now() + topology_backoff;
}

} // namespace michi::redis
