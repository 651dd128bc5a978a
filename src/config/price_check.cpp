// `--check`'s price warnings: models that can be served with no price, and prices in use that
// were last true long ago. Neither stops the gateway; both make budgets less true.

#include "michi/config/price_table.hpp"

#include <set>

namespace michi::config {
namespace {

std::string days_old(std::chrono::sys_days then, std::chrono::sys_days today) {
    return std::to_string((today - then).count()) + " days old";
}

// Adds the warnings for one model a config can serve, once per model.
class checker {
public:
    checker(const config& cfg, std::chrono::sys_days today) : cfg_(cfg), today_(today) {}

    void served(const std::string& name, const std::string& where) {
        if (!seen_.insert(name).second) {
            return;
        }
        const auto m = cfg_.find_model(name);
        if (!m) {
            return; // validation already refuses unknown route targets
        }
        if (!m->input_per_mtok || !m->output_per_mtok) {
            out_.push_back(where + ": \"" + name +
                           "\" has no price (set input_per_mtok and output_per_mtok under "
                           "models:); its requests are charged nothing and keys with a USD "
                           "budget are refused it");
            return;
        }
        const auto as_of = parse_date(m->as_of);
        if (as_of && stale(*as_of)) {
            out_.push_back(where + ": the prices of \"" + name + "\" are as of " + m->as_of + " (" +
                           days_old(*as_of, today_) + ", from the " + to_string(m->source) +
                           "); check them and update " +
                           (m->source == price_source::config ? "models:" : "prices.file"));
        }
    }

    void table(const price_table& t, const std::string& what) {
        const auto newest = parse_date(t.newest_as_of());
        if (newest && stale(*newest)) {
            out_.push_back(what + ": its newest price is as of " + t.newest_as_of() + " (" +
                           days_old(*newest, today_) +
                           "); set prices.file to a newer file (Michi's format or LiteLLM's "
                           "model_prices_and_context_window.json)");
        }
    }

    std::vector<std::string> take() { return std::move(out_); }

private:
    bool stale(std::chrono::sys_days d) const {
        return today_ - d > std::chrono::days(stale_after_days);
    }

    const config& cfg_;
    std::chrono::sys_days today_;
    std::set<std::string> seen_;
    std::vector<std::string> out_;
};

} // namespace

std::vector<std::string> price_warnings(const config& cfg, std::chrono::sys_days today) {
    checker c(cfg, today);
    for (const auto& [name, m] : cfg.models) {
        c.served(name, "models." + name);
    }
    for (const auto& [name, r] : cfg.routes) {
        for (std::size_t i = 0; i < r.targets.size(); ++i) {
            c.served(r.targets[i], "routes." + name + ".targets[" + std::to_string(i) + "]");
        }
    }
    if (cfg.price_file) {
        c.table(*cfg.price_file, "prices.file " + cfg.price_file->path());
    } else {
        c.table(shipped_price_table(), "the shipped price table");
    }
    return c.take();
}

} // namespace michi::config
