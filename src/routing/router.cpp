#include "michi/routing/router.hpp"

#include "michi/auth/key_store.hpp"
#include "michi/routing/pricing.hpp"

#include <algorithm>
#include <cstdio>

namespace michi::routing {
namespace {

// Orders candidates by expected cost for this request, dropping those that cannot serve
// it (context window, tools, images), and says why in the plan's reason.
void apply_cheapest(const request_needs& needs, dispatch_plan& plan) {
    const auto prompt = needs.prompt_tokens;
    const auto out = needs.max_output;
    std::string excluded;
    std::erase_if(plan.candidates, [&](const candidate& c) {
        const char* why = nullptr;
        if (needs.tools && !c.model->supports_tools) {
            why = "no tools";
        } else if (needs.images && !c.model->supports_images) {
            why = "no images";
        } else if (c.model->context_window && prompt + out > *c.model->context_window) {
            why = "context window";
        } else if (needs.priced_only && !is_priced(*c.model)) {
            why = "no price";
        }
        if (why != nullptr) {
            excluded += (excluded.empty() ? "" : ", ") + c.model->name + " (" + why + ")";
        }
        return why != nullptr;
    });
    std::stable_sort(plan.candidates.begin(), plan.candidates.end(),
                     [&](const candidate& a, const candidate& b) {
                         return cost_usd(*a.model, prompt, out) < cost_usd(*b.model, prompt, out);
                     });
    if (plan.candidates.empty()) {
        plan.reason = "no eligible target; excluded " + excluded;
        return;
    }
    char cost[32];
    std::snprintf(cost, sizeof cost, "%.6f", cost_usd(*plan.candidates.front().model, prompt, out));
    plan.reason = "cheapest of " + std::to_string(plan.candidates.size()) + " eligible for ~" +
                  std::to_string(prompt) + " prompt + " + std::to_string(out) +
                  " output tokens: " + plan.candidates.front().model->name + " ($" + cost + ")";
    if (!excluded.empty()) {
        plan.reason += "; excluded " + excluded;
    }
}

// The unordered plan for a name into plan: a route's targets, `auto`'s models, or one model;
// false when the name is none of them.
bool targets_of(const config::config& cfg, const provider_map& providers, const route_table& table,
                const std::string& name, bool& cheapest, dispatch_plan& plan) {
    if (const auto* route = table.route(name)) {
        plan.route = name;
        plan.attempt_timeout = route->config->attempt_timeout;
        plan.retries = route->config->retries;
        plan.candidates = route->candidates;
        plan.strategy = route->config->strategy;
        plan.prepared = route;
        cheapest = plan.strategy == config::route_strategy::cheapest;
        return true;
    }
    if (name == "auto") {
        // No route named auto: the cheapest of every configured model that fits.
        plan.route = name;
        for (const auto& [model_name, m] : cfg.models) {
            const auto p = providers.find(m.provider);
            if (p != providers.end() && !p->second.impl->local()) {
                plan.candidates.push_back(make_candidate(providers, model_ref::of(m)));
            }
        }
        cheapest = true;
        return true;
    }
    if (const auto* c = table.model(name)) {
        plan.candidates.push_back(*c);
        return true;
    }
    if (auto m = find_model(cfg, name, plan.held)) {
        plan.candidates.push_back(make_candidate(providers, *m));
        return true;
    }
    return false;
}

} // namespace

result<void> resolve(const config::config& cfg, const provider_map& providers,
                     const route_table& table, const std::string& name, const request_needs& needs,
                     const config::key_config& key, dispatch_plan& plan) {
    bool cheapest = false;
    if (!targets_of(cfg, providers, table, name, cheapest, plan)) {
        return errors::model_not_found(name);
    }
    if (!auth::model_allowed(key, name)) {
        return errors::model_not_allowed(name);
    }
    // The key's globs bound what may serve it too: a route's targets they do not cover are
    // skipped for this key.
    const bool had_targets = !plan.candidates.empty();
    std::erase_if(plan.candidates, [&](const candidate& c) {
        return c.provider == nullptr || !auth::model_allowed(key, c.model->name);
    });
    if (had_targets && plan.candidates.empty()) {
        return errors::model_not_allowed(name);
    }
    // A hosted provider without its key is off: skipped, saying why.
    std::string off;
    std::erase_if(plan.candidates, [&](const candidate& c) {
        if (c.provider->configured) {
            return false;
        }
        off += (off.empty() ? "" : "; ") + c.model->name + " (provider \"" +
               c.provider->config->name + "\" is off: " + c.provider->off_reason + ")";
        return true;
    });
    if (!off.empty()) {
        if (plan.candidates.empty()) {
            return errors::provider_not_configured("No provider can serve \"" + name +
                                                   "\": " + off + ".");
        }
        plan.reason = "skipped " + off;
    }
    if (cheapest) {
        const std::string skipped = std::move(plan.reason);
        apply_cheapest(needs, plan);
        if (!skipped.empty()) {
            plan.reason += "; " + skipped;
        }
    }
    if (plan.candidates.empty()) {
        return errors::invalid_request("No target of route \"" + name +
                                           "\" can serve this request: " + plan.reason + ".",
                                       "model");
    }
    return ok();
}

} // namespace michi::routing
