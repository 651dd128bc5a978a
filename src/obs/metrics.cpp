#include "michi/obs/metrics.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <tuple>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

namespace michi::obs {
namespace {

// Upper bounds of the latency histograms in seconds; +Inf is the extra last bucket.
constexpr std::array<double, 14> bucket_bounds{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                               1,     2.5,  5,     10,   30,  60,   120};
constexpr std::size_t bucket_count = bucket_bounds.size() + 1;

constexpr std::string_view other_label = "other";
constexpr std::string_view none_label = "none";
constexpr std::array<std::string_view, 6> known_guards{
    "auth", "budget", "loop", "model_not_allowed", "rpm", "tpm"};

template <std::size_t N>
using label_view = std::array<std::string_view, N>;
template <std::size_t N>
using label_key = std::array<std::string, N>;

// Hashes owned and borrowed label tuples alike, so lookups need no allocation.
struct label_hash {
    using is_transparent = void;

    template <std::size_t N>
    std::size_t operator()(const label_view<N>& v) const noexcept {
        std::size_t h = 0;
        for (const auto s : v) {
            h ^= std::hash<std::string_view>{}(s) + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
        }
        return h;
    }
    template <std::size_t N>
    std::size_t operator()(const label_key<N>& k) const noexcept {
        return (*this)(view(k));
    }
    template <std::size_t N>
    static label_view<N> view(const label_key<N>& k) noexcept {
        label_view<N> v;
        for (std::size_t i = 0; i < N; ++i) {
            v[i] = k[i];
        }
        return v;
    }
};

// Compares owned and borrowed label tuples element by element.
struct label_equal {
    using is_transparent = void;

    template <typename A, typename B>
    bool operator()(const A& a, const B& b) const noexcept {
        for (std::size_t i = 0; i < a.size(); ++i) {
            if (std::string_view(a[i]) != std::string_view(b[i])) {
                return false;
            }
        }
        return true;
    }
};

template <std::size_t N, typename V>
using label_map = std::unordered_map<label_key<N>, V, label_hash, label_equal>;

template <std::size_t N>
label_key<N> own(const label_view<N>& v) {
    label_key<N> k;
    for (std::size_t i = 0; i < N; ++i) {
        k[i] = std::string(v[i]);
    }
    return k;
}

// Fixed buckets (not cumulative) plus sum and count: the sum over the shards, rendered.
struct histogram {
    std::array<std::uint64_t, bucket_count> buckets{};
    double sum = 0;
    std::uint64_t count = 0;
};

// A counter that one thread writes and any thread reads: the writer adds with a plain load
// and store (no read-modify-write, no lock prefix), readers see each value whole.
template <typename V>
struct owned {
    std::atomic<V> v{};

    void add(V delta) {
        v.store(v.load(std::memory_order_relaxed) + delta, std::memory_order_relaxed);
    }
    V get() const { return v.load(std::memory_order_relaxed); }
};

// One thread's histogram (fixed buckets, not cumulative), read by the scraper while that
// thread goes on.
struct live_histogram {
    std::array<owned<std::uint64_t>, bucket_count> buckets{};
    owned<double> sum;
    owned<std::uint64_t> count;

    void observe(double seconds) {
        if (!(seconds >= 0) || !std::isfinite(seconds)) {
            seconds = 0;
        }
        std::size_t i = 0;
        while (i < bucket_bounds.size() && seconds > bucket_bounds[i]) {
            ++i;
        }
        buckets[i].add(1);
        sum.add(seconds);
        count.add(1);
    }
    void merge_into(histogram& h) const {
        for (std::size_t i = 0; i < bucket_count; ++i) {
            h.buckets[i] += buckets[i].get();
        }
        h.sum += sum.get();
        h.count += count.get();
    }
};

// The set of label tuples admitted so far for one family, shared by every shard.
template <std::size_t N>
struct admission {
    std::unordered_set<label_key<N>, label_hash, label_equal> seen;
    std::size_t limit;
    std::size_t fold_index;

    // When set, a label at fold_index it does not know is folded (none and other pass).
    std::function<bool(std::string_view)> known;

    admission(std::size_t lim, std::size_t fold) : limit(lim), fold_index(fold) {}

    // The labels to count under: the given ones, or the folded ones when the label is not
    // known or once the family is full.
    label_view<N> admit(const label_view<N>& v) {
        if (seen.find(v) != seen.end()) {
            return v;
        }
        const std::string_view label = v[fold_index];
        const bool unknown = known && label != none_label && label != other_label && !known(label);
        if (!unknown && seen.size() < limit) {
            seen.insert(own(v));
            return v;
        }
        label_view<N> folded = v;
        folded[fold_index] = other_label;
        return folded;
    }
};

void append_escaped(std::string& out, std::string_view v) {
    for (const char c : v) {
        switch (c) {
        case '\\': out += "\\\\"; break;
        case '"': out += "\\\""; break;
        case '\n': out += "\\n"; break;
        default: out += c;
        }
    }
}

void append_uint(std::string& out, std::uint64_t v) {
    char buf[24];
    const auto r = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, r.ptr);
}

void append_int(std::string& out, std::int64_t v) {
    char buf[24];
    const auto r = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, r.ptr);
}

void append_double(std::string& out, double v) {
    if (std::isnan(v)) {
        out += "NaN";
        return;
    }
    if (std::isinf(v)) {
        out += v > 0 ? "+Inf" : "-Inf";
        return;
    }
    char buf[40];
    const int n = std::snprintf(buf, sizeof buf, "%.9g", v);
    out.append(buf, static_cast<std::size_t>(n));
}

void append_header(std::string& out, std::string_view name, std::string_view help,
                   std::string_view type) {
    out += "# HELP ";
    out += name;
    out += ' ';
    out += help;
    out += "\n# TYPE ";
    out += name;
    out += ' ';
    out += type;
    out += '\n';
}

// Appends `name{n1="v1",...} ` (no braces when there are no labels).
template <std::size_t N>
void append_series(std::string& out, std::string_view name,
                   const std::array<std::string_view, N>& names, const label_key<N>& values) {
    out += name;
    if constexpr (N > 0) {
        out += '{';
        for (std::size_t i = 0; i < N; ++i) {
            if (i > 0) {
                out += ',';
            }
            out += names[i];
            out += "=\"";
            append_escaped(out, values[i]);
            out += '"';
        }
        out += '}';
    }
    out += ' ';
}

void append_histogram(std::string& out, std::string_view name, std::string_view help,
                      const histogram& h) {
    append_header(out, name, help, "histogram");
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < bucket_count; ++i) {
        cumulative += h.buckets[i];
        out += name;
        out += "_bucket{le=\"";
        if (i < bucket_bounds.size()) {
            char buf[32];
            const int n = std::snprintf(buf, sizeof buf, "%g", bucket_bounds[i]);
            out.append(buf, static_cast<std::size_t>(n));
        } else {
            out += "+Inf";
        }
        out += "\"} ";
        append_uint(out, cumulative);
        out += '\n';
    }
    out += name;
    out += "_sum ";
    append_double(out, h.sum);
    out += '\n';
    out += name;
    out += "_count ";
    append_uint(out, h.count);
    out += '\n';
}

template <std::size_t N, typename V>
void merge_into(std::map<label_key<N>, V>& dst, const label_map<N, owned<V>>& src) {
    for (const auto& [k, v] : src) {
        dst[k] += v.get();
    }
}

} // namespace

// The series a family counted last, compared before the family's table is hashed into: a
// worker's requests mostly repeat the key, model, status and provider of the one before.
// (Entries are never erased, so the pointer stays valid.)
template <std::size_t N, typename V>
using last_series = typename label_map<N, V>::value_type*;

// One thread's counters. Only that thread writes them, with no lock: the scraper reads the
// counters as they are, and takes mu to walk the series tables, which the thread changes
// (a new series) only under mu.
struct metrics::shard {
    std::mutex mu;
    label_map<3, owned<std::uint64_t>> requests; // key_class, model, status
    label_map<2, owned<std::uint64_t>> attempts; // provider, outcome
    label_map<1, owned<std::uint64_t>> rate_limited;
    label_map<1, owned<double>> spend;
    last_series<3, owned<std::uint64_t>> last_request = nullptr;
    last_series<2, owned<std::uint64_t>> last_attempt = nullptr;
    last_series<1, owned<std::uint64_t>> last_rate_limited = nullptr;
    last_series<1, owned<double>> last_spend = nullptr;
    live_histogram duration;
    live_histogram ttfb;
    owned<std::uint64_t> fallbacks;
    owned<std::uint64_t> tokens_in;
    owned<std::uint64_t> tokens_out;
    owned<std::uint64_t> cache_hits;   // the response cache answered
    owned<std::uint64_t> cache_misses; // it was asked and did not
    owned<double> cache_saved_usd;     // what the hits' answers cost when they were fetched
};

// The registry of shards and the cardinality bounds shared by all of them.
struct metrics::impl {
    std::uint64_t id;
    std::mutex registry_mu;
    std::vector<std::unique_ptr<shard>> shards;
    std::unordered_map<std::thread::id, shard*> by_thread;

    std::mutex admission_mu;
    admission<3> requests{max_request_series, 1};
    admission<1> spend{max_spend_keys, 0};
    admission<2> attempts{max_providers, 0};
    admission<1> rate_limited{max_guards, 0};

    explicit impl(std::uint64_t i) : id(i) {}

    // Adds delta under labels v in one of shard s's tables (called by s's thread only),
    // admitting (or folding) a tuple s has not seen yet; `last` is the series counted last in
    // m (null before the first), and becomes this one. Entries never move, so `last` stays
    // valid as the table grows.
    template <std::size_t N, typename V>
    void add(shard& s, label_map<N, owned<V>>& m, last_series<N, owned<V>>& last, admission<N>& adm,
             const label_view<N>& v, V delta) {
        if (last != nullptr && label_equal{}(last->first, v)) {
            last->second.add(delta);
            return;
        }
        auto it = m.find(v); // no lock: only this thread changes m
        if (it == m.end()) {
            label_view<N> admitted;
            {
                std::lock_guard lock(admission_mu);
                admitted = adm.admit(v);
            }
            it = m.find(admitted);
            if (it == m.end()) {
                std::lock_guard lock(s.mu); // the scraper walks m under it
                it = m.emplace(std::piecewise_construct, std::forward_as_tuple(own(admitted)),
                               std::forward_as_tuple())
                         .first;
            }
        }
        it->second.add(delta);
        last = &*it;
    }
};

namespace {
std::atomic<std::uint64_t> next_metrics_id{1};
} // namespace

metrics::metrics() : impl_(std::make_unique<impl>(next_metrics_id.fetch_add(1))) {}

metrics::~metrics() = default;

metrics::shard& metrics::local_shard() {
    // One-entry cache: instance ids are never reused, so a stale entry can never match.
    thread_local std::uint64_t cached_owner = 0;
    thread_local shard* cached = nullptr;
    if (cached_owner == impl_->id) {
        return *cached;
    }
    std::lock_guard lock(impl_->registry_mu);
    shard*& slot = impl_->by_thread[std::this_thread::get_id()];
    if (slot == nullptr) {
        impl_->shards.push_back(std::make_unique<shard>());
        slot = impl_->shards.back().get();
    }
    cached_owner = impl_->id;
    cached = slot;
    return *slot;
}

void metrics::set_model_filter(std::function<bool(std::string_view)> known) {
    std::lock_guard lock(impl_->admission_mu);
    impl_->requests.known = std::move(known);
}

void metrics::on_request(const access_entry& e) {
    char status_buf[16];
    const auto r = std::to_chars(status_buf, status_buf + sizeof status_buf, e.status);
    const std::string_view status(status_buf, static_cast<std::size_t>(r.ptr - status_buf));
    const std::string_view key_class = e.key_class.empty() ? none_label : e.key_class;
    const std::string_view model = e.model.empty() ? none_label : std::string_view(e.model);

    shard& s = local_shard();
    impl_->add<3, std::uint64_t>(s, s.requests, s.last_request, impl_->requests,
                                 {key_class, model, status}, 1);
    s.duration.observe(e.latency_ms / 1000.0);
    if (e.status >= 200 && e.status < 300) {
        s.ttfb.observe(e.ttfb_ms / 1000.0);
    }
    s.tokens_in.add(e.tokens_in);
    s.tokens_out.add(e.tokens_out);
    if (e.response_cache == "hit") {
        s.cache_hits.add(1);
        s.cache_saved_usd.add(std::isfinite(e.response_cache_saved_usd)
                                  ? std::max(0.0, e.response_cache_saved_usd)
                                  : 0.0);
    } else if (e.response_cache == "miss") {
        s.cache_misses.add(1);
    }
    if (!e.key_id.empty()) {
        const double cost = std::isfinite(e.cost_usd) && e.cost_usd > 0 ? e.cost_usd : 0.0;
        impl_->add<1, double>(s, s.spend, s.last_spend, impl_->spend, {e.key_id}, cost);
    }
}

void metrics::on_attempt(std::string_view provider, std::string_view outcome) {
    shard& s = local_shard();
    impl_->add<2, std::uint64_t>(s, s.attempts, s.last_attempt, impl_->attempts,
                                 {provider, outcome}, 1);
}

void metrics::on_fallback() { local_shard().fallbacks.add(1); }

void metrics::on_rate_limited(std::string_view guard) {
    shard& s = local_shard();
    impl_->add<1, std::uint64_t>(s, s.rate_limited, s.last_rate_limited, impl_->rate_limited,
                                 {guard}, 1);
}

std::string metrics::render(std::int64_t inflight) const {
    std::map<label_key<3>, std::uint64_t> requests;
    std::map<label_key<2>, std::uint64_t> attempts;
    std::map<label_key<1>, std::uint64_t> rate_limited;
    std::map<label_key<1>, double> spend;
    histogram duration;
    histogram ttfb;
    std::uint64_t fallbacks = 0;
    std::uint64_t tokens_in = 0;
    std::uint64_t tokens_out = 0;
    std::uint64_t cache_hits = 0;
    std::uint64_t cache_misses = 0;
    double cache_saved_usd = 0;
    {
        std::lock_guard registry_lock(impl_->registry_mu);
        for (const auto& sp : impl_->shards) {
            std::lock_guard lock(sp->mu);
            merge_into(requests, sp->requests);
            merge_into(attempts, sp->attempts);
            merge_into(rate_limited, sp->rate_limited);
            merge_into(spend, sp->spend);
            sp->duration.merge_into(duration);
            sp->ttfb.merge_into(ttfb);
            fallbacks += sp->fallbacks.get();
            tokens_in += sp->tokens_in.get();
            tokens_out += sp->tokens_out.get();
            cache_hits += sp->cache_hits.get();
            cache_misses += sp->cache_misses.get();
            cache_saved_usd += sp->cache_saved_usd.get();
        }
    }
    for (const auto g : known_guards) {
        rate_limited.try_emplace(label_key<1>{std::string(g)}, 0);
    }

    std::string out;
    out.reserve(4096 + 96 * (requests.size() + attempts.size() + spend.size()));

    append_header(out, "michi_requests_total", "Requests served, by key class, model and status.",
                  "counter");
    for (const auto& [k, v] : requests) {
        append_series<3>(out, "michi_requests_total", {"key_class", "model", "status"}, k);
        append_uint(out, v);
        out += '\n';
    }

    append_histogram(out, "michi_request_duration_seconds",
                     "Time from request received to response complete.", duration);
    append_histogram(out, "michi_time_to_first_byte_seconds",
                     "Time from request received to the first response byte (2xx only).", ttfb);

    append_header(out, "michi_upstream_attempts_total",
                  "Upstream attempts, by provider and outcome.", "counter");
    for (const auto& [k, v] : attempts) {
        append_series<2>(out, "michi_upstream_attempts_total", {"provider", "outcome"}, k);
        append_uint(out, v);
        out += '\n';
    }

    append_header(out, "michi_fallbacks_total", "Times a request moved on to its next target.",
                  "counter");
    out += "michi_fallbacks_total ";
    append_uint(out, fallbacks);
    out += '\n';

    append_header(out, "michi_tokens_total", "Tokens processed, by direction.", "counter");
    out += "michi_tokens_total{direction=\"in\"} ";
    append_uint(out, tokens_in);
    out += "\nmichi_tokens_total{direction=\"out\"} ";
    append_uint(out, tokens_out);
    out += '\n';

    append_header(out, "michi_cache_requests_total",
                  "Requests the response cache was asked for, by result.", "counter");
    out += "michi_cache_requests_total{result=\"hit\"} ";
    append_uint(out, cache_hits);
    out += "\nmichi_cache_requests_total{result=\"miss\"} ";
    append_uint(out, cache_misses);
    out += '\n';
    append_header(out, "michi_cache_saved_usd_total",
                  "What the answers served from the response cache cost when fetched.", "counter");
    out += "michi_cache_saved_usd_total ";
    append_double(out, cache_saved_usd);
    out += '\n';

    append_header(out, "michi_spend_usd_total", "Spend in USD, by key id.", "counter");
    for (const auto& [k, v] : spend) {
        append_series<1>(out, "michi_spend_usd_total", {"key"}, k);
        append_double(out, v);
        out += '\n';
    }

    append_header(out, "michi_rate_limited_total", "Requests refused by a guard, by guard.",
                  "counter");
    for (const auto& [k, v] : rate_limited) {
        append_series<1>(out, "michi_rate_limited_total", {"guard"}, k);
        append_uint(out, v);
        out += '\n';
    }

    append_header(out, "michi_inflight_requests", "Requests in flight.", "gauge");
    out += "michi_inflight_requests ";
    append_int(out, inflight);
    out += '\n';
    return out;
}

} // namespace michi::obs
