#pragma once
// A snapshot's routes and configured models resolved once, when the snapshot is built: each
// route's targets as candidates (the model, its provider's binding, its weight and its live
// signals) and each configured model as one, so that a request copies its candidates instead
// of looking every target, its provider and its signals up by name.

#include "michi/routing/plan.hpp"
#include "michi/routing/signals.hpp"

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace michi::routing {

using provider_map = std::map<std::string, providers::binding>;

// A configured model by name, pointed at; else one made from the price table, kept in `held`.
std::optional<model_ref> find_model(const config::config& cfg, const std::string& name,
                                    std::shared_ptr<const config::model_config>& held);
// A model with its provider's binding (null when no such provider).
candidate make_candidate(const provider_map& providers, model_ref m);

// One route, ready for a request.
struct prepared_route {
    const config::route_config* config = nullptr;
    std::vector<candidate> candidates; // its targets that name a known model, in order
    // For each target, x-michi-route-reason when it goes first and every target takes part:
    // whole for a weighted route, its start for least_busy and latency (the rest is what the
    // strategy saw), none for the others.
    std::vector<std::string> reasons;
    // least_busy: the whole text for each target going first with each count in flight below
    // busy_texts (target i's with n in flight at [i * busy_texts + n]), so that a request
    // writes none.
    static constexpr std::int64_t busy_texts = 64;
    std::vector<std::string> busy_reasons;

    // The whole text for target i going first with `in_flight`, when one was written.
    const std::string* busy_reason(std::size_t i, std::int64_t in_flight) const noexcept {
        const auto at = i * busy_texts + static_cast<std::size_t>(in_flight);
        return in_flight >= 0 && in_flight < busy_texts && at < busy_reasons.size()
                   ? &busy_reasons[at]
                   : nullptr;
    }
};

class route_table {
public:
    route_table() = default;
    // `board`: where the route targets' signals live (null: targets are looked up there per
    // request instead, by name).
    route_table(const config::config& cfg, const provider_map& providers, signal_board* board);

    const prepared_route* route(std::string_view name) const noexcept;
    // A configured model (not one made from the price table) as a candidate.
    const candidate* model(std::string_view name) const noexcept;
    // Whether the route targets' signals are those of `board`.
    bool bound_to(const signal_board& board) const noexcept { return board_ == &board; }

private:
    struct text_hash {
        using is_transparent = void;
        std::size_t operator()(std::string_view s) const noexcept {
            return std::hash<std::string_view>{}(s);
        }
    };
    std::unordered_map<std::string, prepared_route, text_hash, std::equal_to<>> routes_;
    std::unordered_map<std::string, candidate, text_hash, std::equal_to<>> models_;
    std::vector<std::shared_ptr<const config::model_config>> made_; // routes' price-table models
    const signal_board* board_ = nullptr;
};

} // namespace michi::routing
