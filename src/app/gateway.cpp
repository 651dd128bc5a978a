#include "michi/app/gateway.hpp"

#include "michi/core/offload.hpp"
#include "michi/core/json_parse.hpp"
#include "michi/server/session.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <future>
#include <stdexcept>

namespace michi {
namespace {

awaitable<void> accept_loop(worker& w, tcp_acceptor& acceptor, ssl::context* tls) {
    thread_role::mark_event_loop();
    for (;;) {
        auto [ec, socket] = co_await acceptor.async_accept(nothrow);
        if (ec) {
            if (ec == net::error::operation_aborted || !acceptor.is_open()) {
                co_return;
            }
            // Out of descriptors and the like: back off briefly instead of spinning.
            spdlog::warn("accept failed: {}", ec.message());
            steady_timer pause(w.executor(), std::chrono::milliseconds(50));
            co_await pause.async_wait(nothrow);
            continue;
        }
        net::co_spawn(w.ioc(), server::serve_connection(w.connections(), std::move(socket), tls),
                      net::detached);
    }
}

std::unique_ptr<ssl::context> make_server_tls(const config::tls_config& tls) {
    auto ctx = std::make_unique<ssl::context>(ssl::context::tls_server);
    ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                     ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
    ctx->use_certificate_chain_file(tls.cert_file);
    ctx->use_private_key_file(tls.key_file, ssl::context::pem);
    return ctx;
}

} // namespace

gateway::gateway(std::shared_ptr<const pipeline::snapshot> rt, guard::wall_clock clock)
    : state_(std::move(rt), std::move(clock)) {
    // A snapshot built before this gateway existed has its route targets bound to no signals
    // (they would be looked up by name per request): bind them to this gateway's.
    if (const auto first = state_.snapshot(); !first->routes.bound_to(state_.signals())) {
        if (auto bound = pipeline::snapshot::build(first->cfg, &state_.signals())) {
            state_.swap(std::move(bound.value()));
        }
    }
}

gateway::~gateway() { stop(); }

void gateway::start() {
    const auto rt = state_.snapshot();
    const auto& sc = rt->cfg->server;
    if (sc.tls.enabled()) {
        try {
            server_tls_ = make_server_tls(sc.tls);
        } catch (const std::exception& e) {
            throw std::runtime_error("server.tls: " + std::string(e.what()));
        }
    }
    unsigned n = sc.threads != 0 ? sc.threads : std::max(1u, std::thread::hardware_concurrency());
    error_code ec;
    const auto address = net::ip::make_address(sc.host, ec);
    if (ec) {
        throw std::runtime_error("server.listen: bad address \"" + sc.host + "\"");
    }
    std::uint16_t port = sc.port;
    for (unsigned i = 0; i < n; ++i) {
        auto w = std::make_unique<worker>(
            state_, [this](std::shared_ptr<const config::config> cfg) { return apply(cfg); });
        auto acc = std::make_unique<tcp_acceptor>(w->ioc());
        const tcp::endpoint ep(address, port);
        acc->open(ep.protocol(), ec);
        if (!ec) {
            acc->set_option(tcp::acceptor::reuse_address(true), ec);
            const int one = 1;
            ::setsockopt(acc->native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
            acc->bind(ep, ec);
        }
        if (!ec) {
            acc->listen(net::socket_base::max_listen_connections, ec);
        }
        if (ec) {
            throw std::runtime_error("cannot listen on " + sc.listen + ": " + ec.message());
        }
        port = acc->local_endpoint().port(); // an ephemeral port is shared by all workers
        workers_.push_back(std::move(w));
        acceptors_.push_back(std::move(acc));
    }
    port_ = port;
    // Process-wide settings taken from the config in force: the JSON depth limit of parse
    // sites without a config at hand, and the model names metrics may label series with.
    json_parse::set_max_depth(rt->cfg->server.max_json_depth);
    state_.metrics().set_model_filter([this](std::string_view model) {
        return config::is_configured_model(*state_.snapshot()->cfg, model);
    });
    // Ready (/readyz) once every worker's shared ledger, if there is one, has answered: each
    // connects now, on its loop, instead of on the first guarded request.
    auto unanswered = std::make_shared<std::atomic<std::size_t>>(0);
    for (auto& w : workers_) {
        if (auto* ledger = w->shared_ledger()) {
            ++*unanswered;
            ledger->start([this, unanswered] {
                if (--*unanswered == 0) {
                    state_.ready = !state_.inflight.draining;
                }
            });
        }
    }
    state_.ready = *unanswered == 0; // (before the loops run: no answer has come yet)
    prewarm(rt);
    for (std::size_t i = 0; i < workers_.size(); ++i) {
        auto& w = *workers_[i];
        net::co_spawn(w.ioc(), accept_loop(w, *acceptors_[i], server_tls_.get()), net::detached);
        threads_.emplace_back([&w] {
            auto guard = net::make_work_guard(w.ioc());
            w.ioc().run();
        });
    }
}

bool gateway::reload(std::shared_ptr<const config::config> cfg, std::string& error) {
    if (cfg && cfg->store.redis != state_.snapshot()->cfg->store.redis) {
        spdlog::warn("store.redis changed: the ledger moves on the next restart, not on reload");
    }
    auto applied = apply(std::move(cfg));
    if (!applied) {
        error = applied.error().message;
        return false;
    }
    return true;
}

result<void> gateway::apply(std::shared_ptr<const config::config> cfg) {
    auto rt = pipeline::snapshot::build(std::move(cfg), &state_.signals());
    if (!rt) {
        return rt.error();
    }
    const auto depth = rt.value()->cfg->server.max_json_depth;
    state_.swap(std::move(rt.value()));
    json_parse::set_max_depth(depth);
    prewarm(state_.snapshot());
    return ok();
}

void gateway::prewarm(const std::shared_ptr<const pipeline::snapshot>& rt) {
    const bool any = std::any_of(rt->cfg->providers.begin(), rt->cfg->providers.end(),
                                 [](const auto& p) { return p.second.prewarm > 0; });
    if (!any) {
        return;
    }
    // Each worker opens its own, on its loop, in the background (posted before the loops run
    // at start: nothing waits for them).
    auto round = std::make_shared<prewarm_round>(*rt->cfg);
    for (auto& w : workers_) {
        net::post(w->ioc(), [w = w.get(), rt, round] { w->prewarm(*rt, round); });
    }
}

bool gateway::drain(std::chrono::milliseconds timeout) {
    // The listeners stay open: /readyz answers 503 and /healthz 200 while draining, and every
    // other new request a 503 with Connection: close (server/session.cpp), rather than
    // connections refused that a load balancer could take for a dead instance.
    state_.inflight.draining = true;
    state_.ready = false;
    return state_.inflight.wait_idle(timeout);
}

// Waits (a bounded time) for the charges still on their way to the shared ledger: a clean
// stop loses no charge there either.
void gateway::settle_shared() {
    const auto give_up = steady_clock::now() + guard::settle_retry_for;
    for (auto& w : workers_) {
        if (w->shared_ledger() == nullptr || threads_.empty()) {
            continue;
        }
        for (;;) {
            std::promise<std::size_t> left;
            net::post(w->ioc(), [&] { left.set_value(w->shared_ledger()->unsettled()); });
            const std::size_t n = left.get_future().get();
            if (n == 0) {
                break;
            }
            if (steady_clock::now() >= give_up) {
                spdlog::error("stopping with {} charges not recorded in the shared ledger", n);
                break;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
    }
}

std::pair<std::size_t, std::size_t> gateway::upstream_connections() {
    std::pair<std::size_t, std::size_t> n{0, 0};
    for (auto& w : workers_) {
        std::promise<std::pair<std::size_t, std::size_t>> counted;
        net::post(w->ioc(), [&] { counted.set_value({w->idle_upstream(), w->warming()}); });
        const auto [idle, warming] = counted.get_future().get();
        n.first += idle;
        n.second += warming;
    }
    return n;
}

void gateway::stop() {
    if (stopped_) {
        return;
    }
    stopped_ = true;
    settle_shared();
    for (auto& w : workers_) {
        w->ioc().stop();
    }
    for (auto& t : threads_) {
        t.join();
    }
    threads_.clear();
    state_.cpu().join(); // (a job's end is handed to its worker: before the workers go)
    acceptors_.clear();
    workers_.clear();
    state_.store().flush(); // a clean stop loses no charge
}

} // namespace michi
