// The routes of a snapshot resolved once: each target bound to its provider and its live
// signals, and the order a strategy draws applied to the plan's own candidates, with the
// reason the client sees.

#include "michi/config/config.hpp"
#include "michi/pipeline/snapshot.hpp"
#include "michi/routing/retry.hpp"
#include "michi/routing/strategies.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

namespace michi::routing {
namespace {

std::shared_ptr<const config::config> load(const std::string& yaml) {
    auto loaded = config::load_string(yaml);
    if (!loaded.cfg) {
        throw std::runtime_error(loaded.errors.empty() ? "bad config" : loaded.errors[0]);
    }
    return loaded.cfg;
}

const std::string config_yaml = R"(
server: { listen: "127.0.0.1:0" }
store: { sqlite: ":memory:" }
providers:
  a: { type: openai, base_url: "http://a.example/v1", api_key: k1 }
  b: { type: openai, base_url: "http://b.example/v1", api_key: k2 }
models:
  a/m: { input_per_mtok: 1, output_per_mtok: 2 }
  b/m: { input_per_mtok: 1, output_per_mtok: 2 }
routes:
  spread: { strategy: weighted, targets: [a/m, b/m], weights: [1, 3] }
  busy: { strategy: least_busy, targets: [a/m, b/m] }
)";

// The plan a request for the route gets (every target taking part).
dispatch_plan plan_of(const pipeline::snapshot& s, const std::string& route) {
    const auto* r = s.routes.route(route);
    EXPECT_NE(r, nullptr);
    dispatch_plan plan;
    plan.route = route;
    plan.candidates = r->candidates;
    plan.strategy = r->config->strategy;
    plan.prepared = r;
    return plan;
}

TEST(RouteTableTest, RouteTargetsAreBoundToTheirProvidersAndTheBoardsSignals) {
    signal_board board;
    auto s = pipeline::snapshot::build(load(config_yaml), &board).value();
    EXPECT_TRUE(s->routes.bound_to(board));
    const auto* r = s->routes.route("spread");
    ASSERT_NE(r, nullptr);
    ASSERT_EQ(r->candidates.size(), 2u);
    EXPECT_EQ(r->candidates[0].provider, &s->providers.at("a"));
    EXPECT_EQ(r->candidates[1].weight, 3);
    // The same signals a request measures by name, and the same across snapshots (a reload).
    EXPECT_EQ(r->candidates[0].signals, board.find("a/m"));
    auto again = pipeline::snapshot::build(s->cfg, &board).value();
    EXPECT_EQ(again->routes.route("spread")->candidates[1].signals, board.find("b/m"));
    // A configured model asked for by name is a candidate too, not measured.
    const auto* m = s->routes.model("b/m");
    ASSERT_NE(m, nullptr);
    EXPECT_EQ(m->signals, nullptr);
    EXPECT_EQ(s->routes.route("a/m"), nullptr);
}

TEST(RouteTableTest, AWeightedOrderIsThePlansOwnWithTheReasonWrittenOnce) {
    signal_board board;
    auto s = pipeline::snapshot::build(load(config_yaml), &board).value();
    random_engine rng(11);
    cooldowns cd;
    std::map<std::string, int> firsts;
    std::set<std::string> reasons;
    for (int i = 0; i < 4000; ++i) {
        auto plan = plan_of(*s, "spread");
        reason_text made;
        const auto why = choose_order(plan, board, cd, rng, made);
        ASSERT_EQ(plan.candidates.size(), 2u);
        EXPECT_NE(plan.candidates[0].model->name, plan.candidates[1].model->name);
        ++firsts[plan.candidates[0].model->name];
        reasons.emplace(why);
        EXPECT_TRUE(made.empty()); // the snapshot's text, nothing written per request
    }
    EXPECT_NEAR(firsts["b/m"] / 4000.0, 0.75, 0.03);
    EXPECT_EQ(reasons, (std::set<std::string>{"weighted: a/m (weight 1 of 4)",
                                              "weighted: b/m (weight 3 of 4)"}));
}

TEST(RouteTableTest, LeastBusyPutsTheIdleTargetFirstAndSaysHowBusyItIs) {
    signal_board board;
    auto s = pipeline::snapshot::build(load(config_yaml), &board).value();
    random_engine rng(5);
    cooldowns cd;
    attempt_signal one(board.find("a/m"));
    attempt_signal two(board.find("a/m"));
    auto plan = plan_of(*s, "busy");
    reason_text made;
    EXPECT_EQ(choose_order(plan, board, cd, rng, made), "least_busy: b/m (0 in flight)");
    EXPECT_EQ(plan.candidates[0].model->name, "b/m");
    EXPECT_EQ(plan.candidates[1].model->name, "a/m");
}

TEST(RouteTableTest, ATargetCoolingDownGoesLastAndTheReasonSaysSo) {
    signal_board board;
    auto s = pipeline::snapshot::build(load(config_yaml), &board).value();
    random_engine rng(5);
    cooldowns cd;
    cd.on_rate_limited("b/m", std::chrono::seconds(30), std::chrono::seconds(30));
    auto plan = plan_of(*s, "busy"); // b/m, the idle one, would go first
    reason_text made;
    EXPECT_EQ(choose_order(plan, board, cd, rng, made),
              "least_busy: a/m (the chosen ones are cooling down)");
    EXPECT_EQ(plan.candidates[0].model->name, "a/m");
}

TEST(RouteTableTest, ReorderAppliesAnyPermutation) {
    std::vector<config::model_config> models(6);
    for (std::size_t i = 0; i < models.size(); ++i) {
        models[i].name = "m" + std::to_string(i);
    }
    std::vector<std::size_t> order{0, 1, 2, 3, 4, 5};
    do {
        std::vector<candidate> cs;
        for (const auto& m : models) {
            cs.push_back(candidate{model_ref::of(m)});
        }
        auto used = order;
        reorder(cs, used);
        for (std::size_t i = 0; i < order.size(); ++i) {
            ASSERT_EQ(cs[i].model->name, models[order[i]].name);
        }
    } while (std::next_permutation(order.begin(), order.end()));
}

TEST(RouteTableTest, CoolingTargetsGoLastSoonestBackFirstTheOthersKeepTheirOrder) {
    std::vector<config::model_config> models(4);
    for (std::size_t i = 0; i < models.size(); ++i) {
        models[i].name = "m" + std::to_string(i);
    }
    std::vector<candidate> cs;
    for (const auto& m : models) {
        cs.push_back(candidate{model_ref::of(m)});
    }
    cooldowns cd;
    EXPECT_FALSE(cooling_last(cs, cd)); // none cooling: nothing moves
    cd.on_rate_limited("m0", std::chrono::seconds(60), std::chrono::seconds(60));
    cd.on_rate_limited("m2", std::chrono::seconds(30), std::chrono::seconds(30));
    EXPECT_TRUE(cooling_last(cs, cd));
    std::vector<std::string> names;
    for (const auto& c : cs) {
        names.push_back(c.model->name);
    }
    EXPECT_EQ(names, (std::vector<std::string>{"m1", "m3", "m2", "m0"}));
}

} // namespace
} // namespace michi::routing
