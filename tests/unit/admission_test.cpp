// Admission without a gateway: its checks in order, each refusal as the client gets it, and
// what it decides (the plan, the ledger's request) for a request that passes.

#include "michi/core/secret.hpp"
#include "michi/pipeline/admission.hpp"
#include "michi/store/key_registry.hpp"

#include <gtest/gtest.h>

namespace michi::pipeline {
namespace {

const std::string dev_secret = "mk-dev-AdmissionAdmissionAdmissionAdmission1";
const std::string narrow_secret = "mk-dev-NarrowNarrowNarrowNarrowNarrowNarrow12";
const std::string budget_secret = "mk-dev-BudgetBudgetBudgetBudgetBudgetBudget12";

std::string yaml() {
    return R"(
server: { listen: "127.0.0.1:0" }
store: { sqlite: ":memory:" }
providers:
  mock: { type: openai, base_url: "http://mock.example/v1", api_key: k1 }
  other: { type: openai, base_url: "http://other.example/v1", api_key: k2 }
  echo: { type: echo }
models:
  mock/a: { input_per_mtok: 1, output_per_mtok: 2 }
  other/b: { input_per_mtok: 1, output_per_mtok: 2 }
  other/free: {}
routes:
  mock/a: { targets: [mock/a, other/b] }
  unpriced: { targets: [other/free] }
keys:
  - { id: dev, class: developer, secret_sha256: ")" +
           sha256_hex(dev_secret) + R"(" }
  - { id: narrow, class: developer, models: ["mock/*"], secret_sha256: ")" +
           sha256_hex(narrow_secret) + R"(" }
  - { id: budget, class: developer, daily_usd: 5, rpm: 10, secret_sha256: ")" +
           sha256_hex(budget_secret) + R"(" }
)";
}

struct admission_fixture {
    store::key_registry registry{":memory:"};
    auth::authenticator auth{registry};
    std::shared_ptr<const snapshot> rt;

    admission_fixture() {
        auto loaded = config::load_string(yaml());
        if (!loaded.cfg) {
            throw std::runtime_error(loaded.errors.empty() ? "bad config" : loaded.errors[0]);
        }
        rt = snapshot::build(loaded.cfg).value();
    }

    // A chat request with the secret and body, through admission (on a connection that
    // keeps `memo`, when one is given).
    result<admitted> admit_chat(const std::string& secret, const std::string& body,
                                request_context& ctx, auth::key_memo* memo = nullptr) {
        downstream::request_parser parser;
        const std::string wire = "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                                 "Authorization: Bearer " +
                                 secret + "\r\nContent-Length: " + std::to_string(body.size()) +
                                 "\r\n\r\n" + body;
        error_code ec;
        parser.eager(true);
        parser.put(net::buffer(wire), ec);
        EXPECT_FALSE(ec) << ec.message();
        ctx.req = parser.release();
        ctx.rt = rt.get();
        ctx.api = api_kind::chat;
        ctx.key_memo = memo;
        pipeline::admitted out;
        if (auto r = admit(ctx, auth, out); !r) {
            return std::move(r.error());
        }
        return out;
    }
};

std::string chat(const std::string& model) {
    return R"({"model":")" + model + R"(","messages":[{"role":"user","content":"hi"}]})";
}

TEST(AdmissionTest, AKeyIsNeededAndMustBeKnown) {
    admission_fixture f;
    request_context a;
    const auto missing = f.admit_chat("", chat("mock/a"), a);
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().status, 401u);
    request_context b;
    const auto unknown = f.admit_chat("mk-dev-nope", chat("mock/a"), b);
    ASSERT_FALSE(unknown);
    EXPECT_EQ(unknown.error().code, "invalid_api_key");
}

TEST(AdmissionTest, ABadBodyIsA400NamingTheParameter) {
    admission_fixture f;
    request_context a;
    const auto no_model = f.admit_chat(dev_secret, R"({"messages":[]})", a);
    ASSERT_FALSE(no_model);
    EXPECT_EQ(no_model.error().status, 400u);
    EXPECT_EQ(no_model.error().param, "model");
    request_context b;
    const auto no_messages = f.admit_chat(dev_secret, R"({"model":"mock/a","messages":[]})", b);
    ASSERT_FALSE(no_messages);
    EXPECT_EQ(no_messages.error().param, "messages");
    request_context c;
    const auto not_json = f.admit_chat(dev_secret, "{not json", c);
    ASSERT_FALSE(not_json);
    EXPECT_EQ(not_json.error().status, 400u);
}

TEST(AdmissionTest, AnUnknownModelIsA404) {
    admission_fixture f;
    request_context ctx;
    const auto r = f.admit_chat(dev_secret, chat("nope/x"), ctx);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().status, 404u);
    EXPECT_EQ(r.error().code, "model_not_found");
}

TEST(AdmissionTest, ARouteKeepsItsOrderForAKeyAllowedEverything) {
    admission_fixture f;
    request_context ctx;
    const auto r = f.admit_chat(dev_secret, chat("mock/a"), ctx);
    ASSERT_TRUE(r) << r.error().message;
    ASSERT_EQ(r->plan.candidates.size(), 2u);
    EXPECT_EQ(r->plan.candidates[0].model->name, "mock/a");
    EXPECT_EQ(r->plan.candidates[1].model->name, "other/b");
    EXPECT_EQ(ctx.key->id, "dev");
    EXPECT_EQ(ctx.log.route, "mock/a");
}

TEST(AdmissionTest, AKeysGlobsBoundWhatMayServeItNotOnlyWhatItAsks) {
    admission_fixture f;
    // The route is named like a model the key may ask for; its fallback is on another
    // provider, which the key's globs do not cover: skipped for this key.
    request_context ctx;
    const auto r = f.admit_chat(narrow_secret, chat("mock/a"), ctx);
    ASSERT_TRUE(r) << r.error().message;
    ASSERT_EQ(r->plan.candidates.size(), 1u);
    EXPECT_EQ(r->plan.candidates[0].model->name, "mock/a");
    // Asking outside its globs: 403.
    request_context other;
    const auto refused = f.admit_chat(narrow_secret, chat("other/b"), other);
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().status, 403u);
    EXPECT_EQ(refused.error().code, "model_not_allowed");
}

TEST(AdmissionTest, AKeyWithABudgetUsesOnlyPricedModels) {
    admission_fixture f;
    request_context ctx;
    const auto r = f.admit_chat(budget_secret, chat("unpriced"), ctx);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, "model_not_priced");
    request_context priced;
    const auto ok = f.admit_chat(budget_secret, chat("mock/a"), priced);
    ASSERT_TRUE(ok);
    // The ledger's request: the key's limits and the estimate held until the answer.
    EXPECT_EQ(ok->guard_request.key_id, "budget");
    EXPECT_EQ(ok->guard_request.limits.daily_usd, 5.0);
    EXPECT_EQ(ok->guard_request.limits.rpm, 10u);
    EXPECT_GT(ok->guard_request.est_cost_usd, 0.0);
    EXPECT_GT(ok->guard_request.est_tokens, 512u); // the prompt and the default output
}

TEST(AdmissionTest, TheLedgersRefusalsAreTheContractsErrors) {
    admission_fixture f;
    obs::metrics metrics;
    request_context ctx;
    guard::rate_headers headers;
    auto budget =
        take_admission(ctx,
                       guard::admission(guard::refusal{guard::refusal_kind::budget_daily, "spent",
                                                       std::chrono::seconds(3600)}),
                       headers, metrics);
    ASSERT_FALSE(budget);
    EXPECT_EQ(budget.error().status, 403u);
    EXPECT_EQ(budget.error().code, "budget_exceeded");
    request_context rpm_ctx;
    auto rpm = take_admission(rpm_ctx,
                              guard::admission(guard::refusal{guard::refusal_kind::rpm, "too many",
                                                              std::chrono::seconds(0)}),
                              headers, metrics);
    ASSERT_FALSE(rpm);
    EXPECT_EQ(rpm.error().status, 429u);
    EXPECT_EQ(rpm_ctx.retry_after, std::chrono::seconds(1)); // at least a second
    request_context down_ctx;
    auto down = take_admission(down_ctx, guard::admission(guard::ledger_unavailable{"redis down"}),
                               headers, metrics);
    ASSERT_FALSE(down);
    EXPECT_EQ(down.error().code, "ledger_unavailable");
    request_context held;
    guard::reservation hold;
    hold.key_id = "dev";
    EXPECT_TRUE(take_admission(held, guard::admission(hold), headers, metrics));
    ASSERT_TRUE(held.reservation.has_value());
}

// One keep-alive connection's requests (the key memo a session keeps): each names the key its
// secret names, and a revocation or a reload counts from the next request on.
TEST(AdmissionTest, AConnectionsRequestsNameTheirKeyUntilTheKeysChange) {
    admission_fixture f;
    auth::key_memo memo;
    const auto key_of = [&](const std::string& secret) -> std::string {
        request_context ctx;
        const auto r = f.admit_chat(secret, chat("mock/a"), ctx, &memo);
        return r ? ctx.key->id : r.error().code + ": " + r.error().message;
    };
    EXPECT_EQ(key_of(dev_secret), "dev");
    EXPECT_EQ(key_of(dev_secret), "dev");
    EXPECT_EQ(key_of(narrow_secret), "narrow");
    EXPECT_EQ(key_of("mk-dev-nope"), "invalid_api_key: Invalid API key provided.");
    EXPECT_EQ(key_of(narrow_secret), "narrow");
    // A secret differing from the kept one in its last byte only.
    auto near = narrow_secret;
    near.back() = '3';
    EXPECT_EQ(key_of(near), "invalid_api_key: Invalid API key provided.");
    EXPECT_EQ(key_of(narrow_secret), "narrow");
    ASSERT_TRUE(f.registry.revoke("narrow"));
    EXPECT_EQ(key_of(narrow_secret), "invalid_api_key: This API key has been revoked.");
    EXPECT_EQ(key_of(dev_secret), "dev");
    // A reload whose key file no longer has the key.
    std::string without_dev = yaml();
    const auto at = without_dev.find(sha256_hex(dev_secret));
    ASSERT_NE(at, std::string::npos);
    without_dev.replace(at, 64, sha256_hex("mk-dev-another"));
    auto loaded = config::load_string(without_dev);
    ASSERT_TRUE(loaded.cfg);
    f.rt = snapshot::build(loaded.cfg).value();
    EXPECT_EQ(key_of(dev_secret), "invalid_api_key: Invalid API key provided.");
    EXPECT_EQ(key_of("mk-dev-another"), "dev");
}

TEST(AdmissionTest, AnAdminKeyOnAConnectionIsRefusedOnceRevoked) {
    admission_fixture f;
    const std::string secret = "mk-dev-AdminMadeAdminMadeAdminMadeAdminMade12";
    store::admin_key k;
    k.id = "made";
    k.secret_sha256 = sha256_hex(secret);
    std::string error;
    ASSERT_TRUE(f.registry.create(k, error)) << error;
    auth::key_memo memo;
    for (int i = 0; i < 2; ++i) {
        request_context ctx;
        const auto r = f.admit_chat(secret, chat("mock/a"), ctx, &memo);
        ASSERT_TRUE(r) << r.error().message;
        EXPECT_EQ(ctx.key->id, "made");
        EXPECT_EQ(ctx.key, &*ctx.who.admin_key); // the request's own copy
    }
    ASSERT_TRUE(f.registry.revoke("made"));
    request_context ctx;
    const auto r = f.admit_chat(secret, chat("mock/a"), ctx, &memo);
    ASSERT_FALSE(r); // (a revoked admin key is no live key any more: as an unknown one)
    EXPECT_EQ(r.error().status, 401u);
    EXPECT_EQ(r.error().code, "invalid_api_key");
}

TEST(AdmissionTest, AKeyMemoHoldsOnlyItsSecretUnderItsKeySetsUntilForgotten) {
    config::key_config key;
    auth::key_memo memo;
    EXPECT_FALSE(memo.holds("", 0, 0)); // empty: holds nothing, not even an empty secret
    memo.keep("mk-secret", 1, 2, &key, nullptr);
    EXPECT_TRUE(memo.holds("mk-secret", 1, 2));
    EXPECT_EQ(memo.key(), &key);
    EXPECT_FALSE(memo.holds("mk-secreT", 1, 2));
    EXPECT_FALSE(memo.holds("mk-secret2", 1, 2));
    EXPECT_FALSE(memo.holds("mk-secret", 3, 2)); // another config snapshot
    EXPECT_FALSE(memo.holds("mk-secret", 1, 4)); // the admin keys changed
    memo.forget();
    EXPECT_FALSE(memo.holds("mk-secret", 1, 2));
    EXPECT_EQ(memo.key(), nullptr);
}

} // namespace
} // namespace michi::pipeline
