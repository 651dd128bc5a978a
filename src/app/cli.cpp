#include "michi/app/cli.hpp"

#include "michi/app/gateway.hpp"
#include "michi/app/healthcheck.hpp"
#include "michi/config/price_table.hpp"
#include "michi/core/secret.hpp"
#include "michi/obs/log.hpp"

#include <boost/asio/signal_set.hpp>
#include <spdlog/spdlog.h>

#include <sys/resource.h>

#include <iostream>
#include <string_view>
#include <vector>

namespace michi {
namespace {

constexpr std::string_view usage_text =
    R"(michi-gateway — an LLM gateway: one OpenAI-compatible endpoint for every provider.

Usage:
  michi-gateway [--config FILE]           run the gateway (default FILE: config/michi.yaml)
  michi-gateway --config FILE --check     validate the config, print problems, exit 0/1
  michi-gateway keygen --class developer|application|agent
                                          print a new client secret and its sha256
  michi-gateway healthcheck [--url URL]   GET URL (default http://127.0.0.1:8080/healthz),
                                          exit 0 on 200, else 1 (for container HEALTHCHECKs)
  michi-gateway --version | --help

Signals: SIGTERM/SIGINT drain in-flight requests and exit 0; SIGHUP reloads the config.
)";

// Raises the soft limit on open files to the hard one, as the Go runtime does for its servers:
// each proxied request holds two descriptors (client and upstream), and the soft limit many
// systems start services with (1024) would stop the gateway near 500 concurrent streams, its
// accepts failing with "too many open files". Logs what it did; a low limit is worth a warning.
void raise_open_files_limit() {
    rlimit lim{};
    if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) {
        return;
    }
    const rlim_t before = lim.rlim_cur;
    if (lim.rlim_cur < lim.rlim_max) {
        lim.rlim_cur = lim.rlim_max;
        if (::setrlimit(RLIMIT_NOFILE, &lim) != 0) {
            lim.rlim_cur = before;
        }
    }
    if (lim.rlim_cur != before) {
        spdlog::info("open files: soft limit raised from {} to {}", before, lim.rlim_cur);
    }
    constexpr rlim_t low = 4096;
    if (lim.rlim_cur != RLIM_INFINITY && lim.rlim_cur < low) {
        spdlog::warn("open files: the limit is {} (hard limit {}): about {} requests at once; "
                     "raise it (ulimit -n, LimitNOFILE=) for more",
                     lim.rlim_cur, lim.rlim_max, lim.rlim_cur / 2);
    }
}

int keygen(const std::vector<std::string_view>& args) {
    std::string_view cls;
    for (std::size_t i = 0; i < args.size(); ++i) {
        if (args[i] == "--class" && i + 1 < args.size()) {
            cls = args[++i];
        } else if (args[i].starts_with("--class=")) {
            cls = args[i].substr(8);
        } else {
            std::cerr << "keygen: unexpected argument \"" << args[i] << "\"\n";
            return 2;
        }
    }
    std::string prefix;
    if (cls == "developer") {
        prefix = "mk-dev-";
    } else if (cls == "application") {
        prefix = "mk-app-";
    } else if (cls == "agent") {
        prefix = "mk-agt-";
    } else {
        std::cerr << "keygen: --class must be developer, application or agent\n";
        return 2;
    }
    const std::string secret = prefix + random_base62(40);
    std::cout << "secret: " << secret << "\n"
              << "secret_sha256: " << sha256_hex(secret) << "\n";
    return 0;
}

// The providers that are off (a hosted one without its api key), a line each.
std::vector<std::string> providers_off(const pipeline::snapshot& rt) {
    std::vector<std::string> out;
    for (const auto& [name, b] : rt.providers) {
        if (!b.configured) {
            out.push_back("provider \"" + name + "\" is off: " + b.off_reason +
                          " (its models are not served)");
        }
    }
    return out;
}

config::load_result load(const std::string& path) {
    auto result = config::load_file(path);
    if (!result.errors.empty()) {
        std::cerr << path << ": " << result.errors.size() << " problem(s):\n";
        for (const auto& e : result.errors) {
            std::cerr << "  " << e << "\n";
        }
    }
    return result;
}

int run_daemon(const std::string& path) {
    auto loaded = load(path);
    if (!loaded.cfg) {
        return 1;
    }
    obs::setup_logging(loaded.cfg->log);
    raise_open_files_limit();
    auto built = pipeline::snapshot::build(loaded.cfg);
    if (!built) {
        spdlog::critical("{}", built.error().message);
        return 1;
    }
    const auto rt = built.value();
    for (const auto& line : providers_off(*rt)) {
        spdlog::warn("{}", line);
    }
    const auto drain_timeout = loaded.cfg->server.drain_timeout;
    std::unique_ptr<gateway> owned;
    try {
        owned = std::make_unique<gateway>(rt);
        owned->start();
    } catch (const std::exception& e) {
        spdlog::critical("{}", e.what());
        return 1;
    }
    gateway& gw = *owned;
    if (const auto& url = gw.state().redis_url()) {
        spdlog::info("ledger: shared through Redis at {} (budgets and limits hold across "
                     "replicas)",
                     url->where());
    }
    // Signals are handled on the main thread, away from the workers. The handlers are in
    // place before "listening" is logged: a supervisor that signals the daemon as soon as it
    // reads that line must not meet the default action (SIGHUP would end the process).
    net::io_context signals_ctx;
    net::signal_set signals(signals_ctx, SIGINT, SIGTERM, SIGHUP);
    spdlog::info("michi {} listening on {}:{} ({} keys, {} providers)", MICHI_VERSION,
                 loaded.cfg->server.host, gw.port(), rt->keys.size(), loaded.cfg->providers.size());
    std::function<void(const error_code&, int)> on_signal = [&](const error_code& ec, int sig) {
        if (ec) {
            return;
        }
        if (sig == SIGHUP) {
            auto next = load(path);
            std::string why;
            if (!next.cfg) {
                spdlog::error("reload rejected: {} problem(s) in {}; the old config stays",
                              next.errors.size(), path);
                for (const auto& e : next.errors) {
                    spdlog::error("  {}", e);
                }
            } else if (!gw.reload(next.cfg, why)) {
                spdlog::error("reload rejected: {}; the old config stays", why);
            } else {
                spdlog::info("config reloaded from {}", path);
            }
            signals.async_wait(on_signal);
            return;
        }
        spdlog::info("signal {}: draining (up to {} ms)", sig, drain_timeout.count());
        if (!gw.drain(drain_timeout)) {
            spdlog::warn("drain timeout: {} request(s) still in flight", gw.state().inflight.now());
        }
        gw.stop();
        spdlog::info("stopped");
    };
    signals.async_wait(on_signal);
    signals_ctx.run();
    spdlog::default_logger()->flush();
    return 0;
}

} // namespace

int run_cli(int argc, char** argv) {
    std::vector<std::string_view> args(argv + 1, argv + argc);
    if (!args.empty() && args[0] == "keygen") {
        return keygen({args.begin() + 1, args.end()});
    }
    if (!args.empty() && args[0] == "healthcheck") {
        return run_healthcheck({args.begin() + 1, args.end()});
    }
    std::string path = "config/michi.yaml";
    bool check = false;
    for (std::size_t i = 0; i < args.size(); ++i) {
        const auto a = args[i];
        if (a == "--help" || a == "-h") {
            std::cout << usage_text;
            return 0;
        }
        if (a == "--version") {
            std::cout << "michi-gateway " << MICHI_VERSION << "\n";
            return 0;
        }
        if (a == "--check") {
            check = true;
        } else if (a == "--config" && i + 1 < args.size()) {
            path = std::string(args[++i]);
        } else if (a.starts_with("--config=")) {
            path = std::string(a.substr(9));
        } else {
            std::cerr << "unknown argument \"" << a << "\"\n\n" << usage_text;
            return 2;
        }
    }
    if (check) {
        const auto result = load(path);
        if (!result.cfg) {
            return 1;
        }
        auto built = pipeline::snapshot::build(result.cfg);
        if (!built) {
            std::cerr << path << ": " << built.error().message << "\n";
            return 1;
        }
        for (const auto& line : providers_off(*built.value())) {
            std::cout << path << ": warning: " << line << "\n";
        }
        const auto today = std::chrono::floor<std::chrono::days>(std::chrono::system_clock::now());
        for (const auto& w : config::price_warnings(*result.cfg, today)) {
            std::cout << path << ": warning: " << w << "\n"; // warnings only: still OK
        }
        std::cout << path << ": OK\n";
        return 0;
    }
    return run_daemon(path);
}

} // namespace michi
