// Config loader: the CONTRACT §6 example, env interpolation, every error message word for
// word, and the lookups (find_model, effective_limits) on the loaded snapshot.

#include "michi/config/config.hpp"
#include "michi/core/secret.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

namespace michi::config {
namespace {

using namespace std::chrono_literals;
using env_map = std::map<std::string, std::string>;

env_lookup fake_env(env_map vars = {}) {
    return [vars = std::move(vars)](const std::string& name) -> std::optional<std::string> {
        const auto it = vars.find(name);
        return it == vars.end() ? std::nullopt : std::optional(it->second);
    };
}

load_result load(const std::string& yaml, env_map vars = {}) {
    return load_string(yaml, fake_env(std::move(vars)));
}

std::string joined(const std::vector<std::string>& errors) {
    std::string out;
    for (const auto& e : errors) {
        out += "\n  " + e;
    }
    return out.empty() ? " (none)" : out;
}

::testing::AssertionResult has_error(const load_result& r, const std::string& message) {
    if (r.cfg) {
        return ::testing::AssertionFailure() << "loaded without errors, expected: " << message;
    }
    if (std::ranges::find(r.errors, message) != r.errors.end()) {
        return ::testing::AssertionSuccess();
    }
    return ::testing::AssertionFailure()
           << "missing error: " << message << "\ngot:" << joined(r.errors);
}

// Loads and expects success; returns the snapshot.
std::shared_ptr<const config> ok(const std::string& yaml, env_map vars = {}) {
    auto r = load(yaml, std::move(vars));
    EXPECT_TRUE(r.errors.empty()) << "errors:" << joined(r.errors);
    EXPECT_TRUE(r.cfg);
    return r.cfg ? r.cfg : std::make_shared<const config>();
}

// Two providers most tests need, then the section under test.
const std::string providers = R"(
providers:
  openai: { type: openai, base_url: "https://api.openai.com/v1" }
  echo:   { type: echo }
)";

const std::string alice_digest = sha256_hex("alice-secret");

// An admin key long enough to be accepted (32 characters at least).
const std::string admin_key = "adm-0123456789abcdef0123456789abcdef";

// CONTRACT §6, verbatim but for a real digest.
const std::string contract_example = R"(
server:
  listen: "0.0.0.0:8080"
  threads: 0                 # 0 = one per core
  max_body_bytes: 10485760
  idle_timeout: 60s
  drain_timeout: 30s
  tls: { cert_file: "", key_file: "" }   # optional HTTPS on the front
admin:
  key: ${MICHI_ADMIN_KEY:-}  # empty: admin API and dashboard disabled
store:
  sqlite: data/michi.db      # embedded default
  redis: ""                  # redis://host:6379/0 : shared ledger across replicas
  flush_interval: 200ms
log:
  level: info                # trace debug info warn error
  format: text               # text | json
providers:
  openai:   { type: openai,    base_url: "https://api.openai.com/v1",  api_key: "${OPENAI_API_KEY:-}" }
  claude:   { type: anthropic, base_url: "https://api.anthropic.com",  api_key: "${ANTHROPIC_API_KEY:-}" }
  deepseek: { type: openai,    base_url: "https://api.deepseek.com/v1", api_key: "${DEEPSEEK_API_KEY:-}" }
  echo:     { type: echo }
models:                      # USD per million tokens; built-in defaults cover well-known models
  openai/gpt-4o-mini:       { input_per_mtok: 0.15, output_per_mtok: 0.60, context_window: 128000 }
  claude/claude-3-5-sonnet: { upstream: claude-3-5-sonnet-20241022, input_per_mtok: 3.0, output_per_mtok: 15.0 }
  echo/echo-1:              { input_per_mtok: 0, output_per_mtok: 0 }
routes:
  openai/gpt-4o-mini:
    targets: [openai/gpt-4o-mini, claude/claude-3-5-haiku, deepseek/deepseek-v3]
    attempt_timeout: 30s     # no response headers by then: next target
    retries: 0               # extra tries on the same target first
  auto:
    strategy: cheapest       # fallback (default) | cheapest
    targets: [openai/gpt-4o-mini, deepseek/deepseek-v3, claude/claude-3-5-haiku]
cooldown: 30s
cooldown_failures: 3
key_classes:
  developer:   { rpm: 60,   tpm: 200000,  daily_usd: 10 }
  application: { rpm: 6000, tpm: 5000000 }
  agent:       { rpm: 120,  tpm: 500000,  daily_usd: 20, loop_max: 20, loop_window: 60s }
keys:
  - id: alice-laptop
    class: developer
    secret_sha256: ")" + alice_digest +
                                     R"("
    models: ["openai/*", "claude/*", "auto"]   # default: every model and route
    daily_usd: 5
    monthly_usd: 50
    rpm: 30
    tpm: 100000
)";

TEST(ConfigTest, ContractExampleLoads) {
    const auto cfg =
        ok(contract_example, {{"MICHI_ADMIN_KEY", admin_key}, {"OPENAI_API_KEY", "sk-1"}});

    EXPECT_EQ(cfg->server.host, "0.0.0.0");
    EXPECT_EQ(cfg->server.port, 8080);
    EXPECT_EQ(cfg->server.threads, 0u);
    EXPECT_EQ(cfg->server.max_body_bytes, 10485760u);
    EXPECT_EQ(cfg->server.idle_timeout, 60s);
    EXPECT_EQ(cfg->server.drain_timeout, 30s);
    EXPECT_FALSE(cfg->server.tls.enabled());
    EXPECT_EQ(cfg->admin.key.reveal(), admin_key);
    EXPECT_EQ(cfg->store.sqlite, "data/michi.db");
    EXPECT_EQ(cfg->store.redis, "");
    EXPECT_EQ(cfg->store.flush_interval, 200ms);
    EXPECT_EQ(cfg->log.level, "info");
    EXPECT_EQ(cfg->log.format, "text");

    ASSERT_EQ(cfg->providers.size(), 4u);
    const auto& openai = cfg->providers.at("openai");
    EXPECT_EQ(openai.name, "openai");
    EXPECT_EQ(openai.type, provider_type::openai);
    EXPECT_EQ(openai.base_url, "https://api.openai.com/v1");
    ASSERT_EQ(openai.api_keys.size(), 1u);
    EXPECT_EQ(openai.api_keys[0].key.reveal(), "sk-1");
    EXPECT_EQ(cfg->providers.at("claude").type, provider_type::anthropic);
    EXPECT_TRUE(cfg->providers.at("claude").api_keys.empty());
    EXPECT_EQ(cfg->providers.at("echo").type, provider_type::echo);

    ASSERT_EQ(cfg->models.size(), 3u);
    const auto& mini = cfg->models.at("openai/gpt-4o-mini");
    EXPECT_EQ(mini.provider, "openai");
    EXPECT_EQ(mini.model, "gpt-4o-mini");
    EXPECT_EQ(mini.upstream, "gpt-4o-mini");
    EXPECT_EQ(mini.input_per_mtok, 0.15);
    EXPECT_EQ(mini.output_per_mtok, 0.60);
    EXPECT_EQ(mini.context_window, 128000u);
    EXPECT_FALSE(mini.builtin);
    EXPECT_EQ(cfg->models.at("claude/claude-3-5-sonnet").upstream, "claude-3-5-sonnet-20241022");
    EXPECT_EQ(cfg->models.at("echo/echo-1").input_per_mtok, 0.0);

    ASSERT_EQ(cfg->routes.size(), 2u);
    const auto& primary = cfg->routes.at("openai/gpt-4o-mini");
    EXPECT_EQ(primary.name, "openai/gpt-4o-mini");
    EXPECT_EQ(primary.strategy, route_strategy::fallback);
    EXPECT_EQ(primary.targets,
              (std::vector<std::string>{"openai/gpt-4o-mini", "claude/claude-3-5-haiku",
                                        "deepseek/deepseek-v3"}));
    EXPECT_EQ(primary.attempt_timeout, 30s);
    EXPECT_EQ(primary.retries, 0u);
    EXPECT_EQ(cfg->routes.at("auto").strategy, route_strategy::cheapest);

    EXPECT_EQ(cfg->cooldown, 30s);
    EXPECT_EQ(cfg->cooldown_failures, 3u);
    const auto& agent = cfg->key_classes.at(key_class::agent);
    EXPECT_EQ(agent.rpm, 120u);
    EXPECT_EQ(agent.loop_max, 20u);
    EXPECT_EQ(agent.loop_window, 60s);
    EXPECT_FALSE(cfg->key_classes.at(key_class::application).daily_usd);

    ASSERT_EQ(cfg->keys.size(), 1u);
    const auto& alice = cfg->keys[0];
    EXPECT_EQ(alice.id, "alice-laptop");
    EXPECT_EQ(alice.cls, key_class::developer);
    EXPECT_EQ(alice.secret_sha256, alice_digest);
    EXPECT_EQ(alice.models, (std::vector<std::string>{"openai/*", "claude/*", "auto"}));
    EXPECT_EQ(alice.overrides.daily_usd, 5.0);
    EXPECT_EQ(alice.overrides.monthly_usd, 50.0);
    EXPECT_EQ(alice.overrides.rpm, 30u);
    EXPECT_EQ(alice.overrides.tpm, 100000u);
    EXPECT_FALSE(alice.overrides.loop_max);
    EXPECT_EQ(cfg->source_path, "");
}

TEST(ConfigTest, EmptyOrCommentOnlyDocumentIsRefused) {
    // A truncated or blanked file must not load as a gateway with no keys and no admin key.
    for (const std::string text : {"", "\n\n", "# only a comment\n  # and another\n", "---\n"}) {
        const auto r = load(text);
        EXPECT_FALSE(r.cfg) << text;
        ASSERT_EQ(r.errors.size(), 1u) << joined(r.errors);
        EXPECT_EQ(r.errors[0], "the config: empty (nothing but blank lines or comments)");
    }
    const auto path = std::filesystem::temp_directory_path() / "michi-empty-config.yaml";
    std::ofstream(path) << "# nothing here\n";
    const auto from_file = load_file(path.string(), fake_env());
    std::filesystem::remove(path);
    EXPECT_FALSE(from_file.cfg);
    EXPECT_TRUE(
        has_error(from_file, path.string() + ": empty (nothing but blank lines or comments)"))
        << joined(from_file.errors);
}

TEST(ConfigTest, MinimalDocumentGivesStructDefaults) {
    const auto cfg = ok("server: {}\n");
    const config defaults;
    EXPECT_EQ(cfg->server.listen, defaults.server.listen);
    EXPECT_EQ(cfg->server.port, 8080);
    EXPECT_EQ(cfg->server.max_header_bytes, defaults.server.max_header_bytes);
    EXPECT_EQ(cfg->server.read_timeout, defaults.server.read_timeout);
    EXPECT_EQ(cfg->store.sqlite, defaults.store.sqlite);
    EXPECT_EQ(cfg->cooldown, defaults.cooldown);
    EXPECT_EQ(cfg->cooldown_failures, defaults.cooldown_failures);
    EXPECT_TRUE(cfg->providers.empty());
    EXPECT_TRUE(cfg->keys.empty());
}

TEST(ConfigTest, EnvInterpolation) {
    const auto cfg = ok(providers + R"(
admin: { key: "${ADMIN}" }
store:
  sqlite: ${DATA_DIR:-/var/lib/michi}/michi.db
  redis: ${REDIS_URL:-}
log: { level: "${LEVEL:-info}" }
key_classes:
  developer: { rpm: "${RPM:-60}", tpm: "${TPM:-1000}", daily_usd: "${DAILY}" }
  agent: { rpm: "${UNSET_RPM:-}" }
keys:
  - id: k1
    class: developer
    secret: "pa$$word-${SUFFIX}"
    models: ["${PROVIDER:-openai}/*", "$literal", "a$"]
)",
                        {{"ADMIN", admin_key},
                         {"TPM", "5000"},
                         {"LEVEL", ""}, // set but empty: the default applies, as in sh
                         {"DAILY", "2.5"},
                         {"SUFFIX", "x"}});
    EXPECT_EQ(cfg->admin.key.reveal(), admin_key);
    EXPECT_EQ(cfg->store.sqlite, "/var/lib/michi/michi.db");
    EXPECT_EQ(cfg->store.redis, "");
    EXPECT_EQ(cfg->log.level, "info");
    const auto& dev = cfg->key_classes.at(key_class::developer);
    EXPECT_EQ(dev.rpm, 60u);
    EXPECT_EQ(dev.tpm, 5000u);
    EXPECT_EQ(dev.daily_usd, 2.5);
    EXPECT_FALSE(cfg->key_classes.at(key_class::agent).rpm); // empty: left unset
    ASSERT_EQ(cfg->keys.size(), 1u);
    EXPECT_EQ(cfg->keys[0].secret_sha256, sha256_hex("pa$word-x"));
    EXPECT_EQ(cfg->keys[0].models, (std::vector<std::string>{"openai/*", "$literal", "a$"}));
}

TEST(ConfigTest, EnvInterpolationErrors) {
    const auto r = load(R"(
admin:
  key: ${MICHI_X}
store:
  sqlite: "${1BAD}"
  redis: "${OPEN"
)");
    EXPECT_TRUE(has_error(r, "admin.key: environment variable MICHI_X is not set"));
    EXPECT_TRUE(has_error(r, "store.sqlite: invalid environment variable reference \"${1BAD}\""));
    EXPECT_TRUE(
        has_error(r, "store.redis: unterminated \"${\" (write \"$$\" for a literal \"$\")"));
    EXPECT_EQ(r.errors.size(), 3u) << joined(r.errors);
}

TEST(ConfigTest, ErrorMessagesWordForWord) {
    EXPECT_TRUE(has_error(load(providers + R"(
routes:
  default: { targets: [openai/gpt-4o, echo/anything, claude/x] }
)"),
                          "routes.default.targets[2]: unknown model \"claude/x\""));
    EXPECT_TRUE(has_error(load("server: { threads: abc }"),
                          "server.threads: expected a non-negative integer, got \"abc\""));
    EXPECT_TRUE(has_error(load(R"(
keys:
  - { id: a, class: developer, secret: one }
  - { id: b, class: robot, secret: two }
)"),
                          "keys[1].class: unknown key class \"robot\" (expected developer, "
                          "application or agent)"));
    EXPECT_TRUE(has_error(load("providers: { foo: { type: x } }"),
                          "providers.foo.type: unknown provider type \"x\" (expected openai, "
                          "anthropic, gemini, azure or echo)"));
    EXPECT_TRUE(has_error(load("server: { bogus: 1 }"), "server.bogus: unknown field"));
    EXPECT_TRUE(has_error(load(providers + "models: { foo/bar: {} }"),
                          "models.foo/bar: unknown provider \"foo\""));
}

TEST(ConfigTest, ReportsEveryErrorAtOnce) {
    const auto r = load(providers + R"(
server:
  threads: -1
  listen: nowhere
bogus: true
log: { level: loud }
routes:
  r1: { targets: [openai/nope] }
keys:
  - { id: "bad id", class: agent, secret: s }
)");
    ASSERT_FALSE(r.cfg);
    EXPECT_TRUE(has_error(r, "server.threads: expected a non-negative integer, got \"-1\""));
    EXPECT_TRUE(
        has_error(r, "server.listen: expected \"host:port\" or \"[ipv6]:port\", got \"nowhere\""));
    EXPECT_TRUE(has_error(r, "bogus: unknown field"));
    EXPECT_TRUE(has_error(r, "log.level: unknown log level \"loud\" (expected trace, debug, "
                             "info, warn or error)"));
    EXPECT_TRUE(has_error(r, "routes.r1.targets[0]: unknown model \"openai/nope\""));
    EXPECT_TRUE(has_error(r, "keys[0].id: invalid key id \"bad id\" (allowed: letters, digits, "
                             "\".\", \"_\" and \"-\")"));
    EXPECT_EQ(r.errors.size(), 6u) << joined(r.errors);
}

TEST(ConfigTest, UnknownFieldsAnywhere) {
    const auto r = load(R"(
providers:
  openai: { type: openai, base_url: "https://x", colour: red }
models:
  openai/gpt-4o: { price: 1 }
routes:
  auto: { targets: [openai/gpt-4o], fallback: yes }
key_classes:
  agent: { rpm: 1, burst: 2 }
keys:
  - { id: k, class: agent, secret: s, note: hi }
server:
  tls: { cert: x }
)");
    EXPECT_TRUE(has_error(r, "providers.openai.colour: unknown field"));
    EXPECT_TRUE(has_error(r, "models.openai/gpt-4o.price: unknown field"));
    EXPECT_TRUE(has_error(r, "routes.auto.fallback: unknown field"));
    EXPECT_TRUE(has_error(r, "key_classes.agent.burst: unknown field"));
    EXPECT_TRUE(has_error(r, "keys[0].note: unknown field"));
    EXPECT_TRUE(has_error(r, "server.tls.cert: unknown field"));
    EXPECT_EQ(r.errors.size(), 6u) << joined(r.errors);
}

TEST(ConfigTest, WrongTypes) {
    const auto r = load(R"(
server:
  threads: { a: 1 }
  max_body_bytes: 0
  idle_timeout: [1]
store: [a, b]
cooldown_failures: 0
key_classes:
  developer: { rpm: 1.5, daily_usd: -1, loop_window: 0s }
  robot: {}
keys: { id: x }
models:
  openai/gpt-4o: { supports_tools: maybe, context_window: 99999999999999999999999 }
log: text
)");
    EXPECT_TRUE(has_error(r, "server.threads: expected a non-negative integer, got a map"));
    EXPECT_TRUE(has_error(r, "server.max_body_bytes: expected a positive integer, got \"0\""));
    EXPECT_TRUE(has_error(
        r, "server.idle_timeout: expected a positive duration like 250ms, 30s, 5m or 1h, got a "
           "list"));
    EXPECT_TRUE(has_error(r, "store: expected a map, got a list"));
    EXPECT_TRUE(has_error(r, "cooldown_failures: expected a positive integer, got \"0\""));
    EXPECT_TRUE(
        has_error(r, "key_classes.developer.rpm: expected a positive integer, got \"1.5\""));
    EXPECT_TRUE(has_error(
        r, "key_classes.developer.daily_usd: expected a non-negative number, got \"-1\""));
    EXPECT_TRUE(has_error(r, "key_classes.developer.loop_window: expected a positive duration "
                             "like 250ms, 30s, 5m or 1h, got \"0s\""));
    EXPECT_TRUE(has_error(r, "key_classes.robot: unknown key class \"robot\" (expected "
                             "developer, application or agent)"));
    EXPECT_TRUE(has_error(r, "keys: expected a list, got a map"));
    EXPECT_TRUE(
        has_error(r, "models.openai/gpt-4o.supports_tools: expected true or false, got \"maybe\""));
    EXPECT_TRUE(has_error(r, "models.openai/gpt-4o.context_window: expected an integer no "
                             "greater than 18446744073709551615, got "
                             "\"99999999999999999999999\""));
    EXPECT_TRUE(has_error(r, "log: expected a map, got \"text\""));
    EXPECT_TRUE(has_error(r, "models.openai/gpt-4o: unknown provider \"openai\""));
    EXPECT_EQ(r.errors.size(), 14u) << joined(r.errors);
}

TEST(ConfigTest, DuplicateMapKeysAreErrors) {
    const auto r = load(providers + R"(
routes:
  auto: { targets: [echo/a] }
  auto: { targets: [echo/b] }
)");
    EXPECT_TRUE(has_error(r, "routes.auto: defined twice"));
}

TEST(ConfigTest, SyntaxErrorIsOneErrorWithLineAndColumn) {
    const auto r = load("server:\n  listen: [1, 2\n  threads: 3\n");
    ASSERT_EQ(r.errors.size(), 1u) << joined(r.errors);
    EXPECT_FALSE(r.cfg);
    EXPECT_TRUE(r.errors[0].starts_with("syntax error at line ")) << r.errors[0];
    EXPECT_NE(r.errors[0].find(", column "), std::string::npos) << r.errors[0];
}

TEST(ConfigTest, NestingPastTheParsersLimitIsASyntaxErrorSayingSo) {
    const auto r = load("server: " + std::string(3000, '['));
    ASSERT_EQ(r.errors.size(), 1u) << joined(r.errors);
    EXPECT_FALSE(r.cfg);
    EXPECT_TRUE(r.errors[0].starts_with("syntax error at line 1, column ")) << r.errors[0];
    EXPECT_TRUE(r.errors[0].ends_with(": nested too deeply")) << r.errors[0];
}

TEST(ConfigTest, NeverThrowsOnGarbage) {
    for (const std::string& text : std::initializer_list<std::string>{
             "{{{{", "- - -", "\t\tx", "a: *nope", "? [a]\n: b", "42", "keys: [[[]]]",
             std::string("\0\xff\xfe", 3), "!!binary x"}) {
        load_result r;
        EXPECT_NO_THROW(r = load(text)) << text;
        EXPECT_FALSE(r.cfg && !r.errors.empty());
    }
}

TEST(ConfigTest, MissingFileNamesThePath) {
    const auto r = load_file("/nonexistent/michi.yaml", fake_env());
    ASSERT_EQ(r.errors.size(), 1u);
    EXPECT_FALSE(r.cfg);
    EXPECT_EQ(r.errors[0], "/nonexistent/michi.yaml: cannot read file: No such file or directory");
}

TEST(ConfigTest, LoadFileSetsSourcePath) {
    const auto path = std::filesystem::temp_directory_path() /
                      ("michi_config_test_" + std::to_string(::getpid()) + ".yaml");
    std::ofstream(path) << providers;
    const auto r = load_file(path.string(), fake_env());
    std::filesystem::remove(path);
    ASSERT_TRUE(r.cfg) << joined(r.errors);
    EXPECT_EQ(r.cfg->source_path, path.string());
}

TEST(ConfigTest, Durations) {
    EXPECT_EQ(parse_duration("250ms"), 250ms);
    EXPECT_EQ(parse_duration("30s"), 30s);
    EXPECT_EQ(parse_duration("5m"), 5min);
    EXPECT_EQ(parse_duration("1h"), 1h);
    EXPECT_EQ(parse_duration("45"), 45s);
    EXPECT_EQ(parse_duration("0"), 0ms);
    for (const char* bad : {"", "s", "-1s", "1.5s", "1d", "10 s", " 1s", "1sec", "1S",
                            "99999999999999999999h", "9223372036854776h"}) {
        EXPECT_FALSE(parse_duration(bad)) << bad;
    }
    const auto cfg = ok(providers + R"(
cooldown: 5m
server: { idle_timeout: 2, drain_timeout: 0s, read_timeout: 1500ms }
routes:
  auto: { targets: [echo/a], attempt_timeout: 250ms }
)");
    EXPECT_EQ(cfg->cooldown, 5min);
    EXPECT_EQ(cfg->server.idle_timeout, 2s);
    EXPECT_EQ(cfg->server.drain_timeout, 0ms);
    EXPECT_EQ(cfg->server.read_timeout, 1500ms);
    EXPECT_EQ(cfg->routes.at("auto").attempt_timeout, 250ms);
    EXPECT_TRUE(has_error(load("cooldown: 5x"),
                          "cooldown: expected a duration like 250ms, 30s, 5m or 1h, got \"5x\""));
}

TEST(ConfigTest, ListenParsing) {
    const auto listen = [](const std::string& value) {
        return ok("server: { listen: \"" + value + "\" }")->server;
    };
    EXPECT_EQ(listen("127.0.0.1:9000").host, "127.0.0.1");
    EXPECT_EQ(listen("127.0.0.1:9000").port, 9000);
    EXPECT_EQ(listen("localhost:0").port, 0);
    EXPECT_EQ(listen("[::1]:8080").host, "::1");
    EXPECT_EQ(listen("[::1]:8080").port, 8080);
    EXPECT_EQ(listen("[::]:443").host, "::");
    EXPECT_EQ(listen(":8081").host, "0.0.0.0");
    EXPECT_EQ(listen("[::1]:8080").listen, "[::1]:8080");
    for (const char* bad : {"localhost", "::1:8080", "host:", "host:99999", "host:80x", "[::1]",
                            "[::1]8080", "host:-1"}) {
        EXPECT_TRUE(has_error(load("server: { listen: \"" + std::string(bad) + "\" }"),
                              "server.listen: expected \"host:port\" or \"[ipv6]:port\", got \"" +
                                  std::string(bad) + "\""));
    }
}

TEST(ConfigTest, ProviderRules) {
    const auto cfg = ok(R"(
providers:
  groq:
    type: openai
    base_url: "https://api.groq.com/openai/v1/"
    headers: { X-Team: "${TEAM:-core}" }
    connect_timeout: 2s
    timeout: 120s
    max_connections: 8
    ca_file: /etc/ssl/extra.pem
  az: { type: azure, base_url: "https://x.openai.azure.com", api_version: "2024-06-01" }
  gem: { type: gemini, base_url: "http://localhost:9999" }
)");
    const auto& groq = cfg->providers.at("groq");
    EXPECT_EQ(groq.base_url, "https://api.groq.com/openai/v1");
    EXPECT_EQ(groq.headers.at("X-Team"), "core");
    EXPECT_EQ(groq.connect_timeout, 2s);
    EXPECT_EQ(groq.timeout, 120s);
    EXPECT_EQ(groq.max_connections, 8u);
    EXPECT_EQ(groq.ca_file, "/etc/ssl/extra.pem");
    EXPECT_EQ(cfg->providers.at("az").api_version, "2024-06-01");

    const auto r = load(R"(
providers:
  a: { type: anthropic }
  b: { type: openai, base_url: "ftp://x" }
  c: { type: echo, base_url: "http://x" }
  d: { type: azure, base_url: "https://d" }
  e: { base_url: "https://e" }
  f: { type: openai, base_url: "https://f", api_version: v1 }
  g: { type: openai, base_url: "https://g", headers: { "Bad Name": x, X-Ok: "a\nb" } }
  h/i: { type: echo }
)");
    EXPECT_TRUE(has_error(r, "providers.a.base_url: required for provider type anthropic"));
    EXPECT_TRUE(
        has_error(r, "providers.b.base_url: expected an http:// or https:// URL, got \"ftp://x\""));
    EXPECT_TRUE(has_error(r, "providers.c.base_url: not used by provider type echo"));
    EXPECT_TRUE(has_error(r, "providers.d.api_version: required for provider type azure"));
    EXPECT_TRUE(has_error(r, "providers.e.type: missing required field"));
    EXPECT_TRUE(has_error(r, "providers.f.api_version: not used by provider type openai"));
    EXPECT_TRUE(has_error(r, "providers.g.headers.Bad Name: invalid header name"));
    EXPECT_TRUE(has_error(
        r, "providers.g.headers.X-Ok: a header value must not contain line breaks or NUL"));
    EXPECT_TRUE(
        has_error(r, "providers.h/i: a provider name must be non-empty and contain no \"/\""));
    EXPECT_EQ(r.errors.size(), 9u) << joined(r.errors);
}

// prewarm: connections per worker opened ahead of requests; 0 unless set, never negative, at
// most 64 and never more than max_connections (the pool would close the rest).
TEST(ConfigTest, ProviderPrewarm) {
    const auto cfg = ok(R"(
providers:
  a: { type: openai, base_url: "https://a", prewarm: 4 }
  b: { type: openai, base_url: "https://b" }
)");
    EXPECT_EQ(cfg->providers.at("a").prewarm, 4u);
    EXPECT_EQ(cfg->providers.at("b").prewarm, 0u);

    const auto r = load(R"(
providers:
  a: { type: openai, base_url: "https://a", prewarm: -1 }
  b: { type: openai, base_url: "https://b", prewarm: 1000 }
  c: { type: openai, base_url: "https://c", prewarm: 9, max_connections: 8 }
  d: { type: openai, base_url: "https://d", prewarm: many }
)");
    EXPECT_TRUE(has_error(r, "providers.a.prewarm: expected a non-negative integer, got \"-1\""));
    EXPECT_TRUE(has_error(r, "providers.b.prewarm: expected at most 64 connections per worker "
                             "(64, and no more than max_connections), got 1000"));
    EXPECT_TRUE(has_error(r, "providers.c.prewarm: expected at most 8 connections per worker "
                             "(64, and no more than max_connections), got 9"));
    EXPECT_TRUE(has_error(r, "providers.d.prewarm: expected a non-negative integer, got \"many\""));
}

TEST(ConfigTest, StoreAndLogRules) {
    const auto cfg = ok("store: { redis: \"redis://cache:6379/0\" }\nlog: { level: warn, "
                        "format: json }");
    EXPECT_EQ(cfg->store.redis, "redis://cache:6379/0");
    EXPECT_EQ(cfg->log.level, "warn");
    EXPECT_EQ(cfg->log.format, "json");
    const auto r = load(R"(
store: { redis: "http://cache", flush_interval: 0ms }
log: { format: xml }
server: { tls: { cert_file: a.pem } }
)");
    EXPECT_TRUE(has_error(r, "store.redis: expected a redis://, rediss://, redis+sentinel:// or "
                             "redis+cluster:// URL, got \"http://cache\""));
    EXPECT_TRUE(has_error(r, "store.flush_interval: expected a positive duration like 250ms, "
                             "30s, 5m or 1h, got \"0ms\""));
    EXPECT_TRUE(has_error(r, "log.format: unknown log format \"xml\" (expected text or json)"));
    EXPECT_TRUE(has_error(r, "server.tls: cert_file and key_file must be set together"));
    EXPECT_EQ(r.errors.size(), 4u) << joined(r.errors);
    EXPECT_TRUE(ok("server: { tls: { cert_file: a.pem, key_file: a.key } }")->server.tls.enabled());
}

TEST(ConfigTest, ModelEntries) {
    const auto cfg = ok(providers + R"(
  claude: { type: anthropic, base_url: "https://api.anthropic.com" }
  local: { type: openai, base_url: "http://localhost:11434/v1" }
models:
  openai/gpt-4o: { input_per_mtok: 2.0 }
  claude/claude-3-5-haiku: {}
  local/llama3:
  local/meta-llama/Llama-3-70b: { output_per_mtok: 0.5, supports_images: false }
  echo/big: { context_window: 5 }
)");
    const auto& gpt4o = cfg->models.at("openai/gpt-4o");
    EXPECT_EQ(gpt4o.input_per_mtok, 2.0);   // own value kept
    EXPECT_EQ(gpt4o.output_per_mtok, 10.0); // filled from the built-in table
    EXPECT_EQ(gpt4o.context_window, 128000u);
    EXPECT_FALSE(gpt4o.builtin);
    const auto& haiku = cfg->models.at("claude/claude-3-5-haiku");
    EXPECT_EQ(haiku.upstream, "claude-3-5-haiku-20241022"); // no upstream given: the built-in one
    EXPECT_EQ(haiku.input_per_mtok, 0.80);
    const auto& llama = cfg->models.at("local/llama3");
    EXPECT_EQ(llama.upstream, "llama3");
    EXPECT_FALSE(llama.input_per_mtok); // no built-in: unpriced
    EXPECT_TRUE(llama.supports_tools);
    const auto& slashed = cfg->models.at("local/meta-llama/Llama-3-70b");
    EXPECT_EQ(slashed.provider, "local");
    EXPECT_EQ(slashed.model, "meta-llama/Llama-3-70b");
    EXPECT_EQ(slashed.upstream, "meta-llama/Llama-3-70b");
    EXPECT_FALSE(slashed.supports_images);
    const auto& big = cfg->models.at("echo/big");
    EXPECT_EQ(big.context_window, 5u);
    EXPECT_EQ(big.input_per_mtok, 0.0);

    const auto r = load(providers + R"(
models:
  gpt-4o: {}
  openai/: {}
  openai/x: { input_per_mtok: abc, output_per_mtok: -2 }
)");
    EXPECT_TRUE(has_error(r, "models.gpt-4o: expected a model name like \"provider/model\""));
    EXPECT_TRUE(has_error(r, "models.openai/: expected a model name like \"provider/model\""));
    EXPECT_TRUE(has_error(
        r, "models.openai/x.input_per_mtok: expected a non-negative number, got \"abc\""));
    EXPECT_TRUE(has_error(
        r, "models.openai/x.output_per_mtok: expected a non-negative number, got \"-2\""));
    EXPECT_EQ(r.errors.size(), 4u) << joined(r.errors);
}

TEST(ConfigTest, RoutesMayBeNamedLikeModels) {
    const auto cfg = ok(providers + R"(
routes:
  openai/gpt-4o: { targets: [openai/gpt-4o, echo/fallback], retries: 2 }
  auto: { targets: [openai/gpt-4o-mini] }
)");
    EXPECT_EQ(cfg->routes.at("openai/gpt-4o").retries, 2u);
    EXPECT_EQ(cfg->routes.at("auto").strategy, route_strategy::fallback);
    const auto r = load(providers + R"(
routes:
  empty: { targets: [] }
  missing: { retries: 1 }
  bad: { strategy: random, targets: [echo/a] }
)");
    EXPECT_TRUE(has_error(r, "routes.empty.targets: must list at least one model"));
    EXPECT_TRUE(has_error(r, "routes.missing.targets: must list at least one model"));
    EXPECT_TRUE(has_error(r, "routes.bad.strategy: unknown strategy \"random\" (expected "
                             "fallback, cheapest, weighted, least_busy or latency)"));
    EXPECT_EQ(r.errors.size(), 3u) << joined(r.errors);
}

TEST(ConfigTest, FindModel) {
    const auto cfg = ok(providers + R"(
models:
  openai/custom: { upstream: custom-2024, input_per_mtok: 1, output_per_mtok: 2 }
)");
    const auto custom = cfg->find_model("openai/custom");
    ASSERT_TRUE(custom);
    EXPECT_EQ(custom->upstream, "custom-2024");
    EXPECT_FALSE(custom->builtin);

    const auto builtin = cfg->find_model("openai/gpt-4o-mini");
    ASSERT_TRUE(builtin);
    EXPECT_TRUE(builtin->builtin);
    EXPECT_EQ(builtin->name, "openai/gpt-4o-mini");
    EXPECT_EQ(builtin->provider, "openai");
    EXPECT_EQ(builtin->model, "gpt-4o-mini");
    EXPECT_EQ(builtin->input_per_mtok, 0.15);
    const auto mapped = cfg->find_model("openai/deepseek-v3"); // table by bare name
    ASSERT_TRUE(mapped);
    EXPECT_EQ(mapped->upstream, "deepseek-chat");

    const auto echo = cfg->find_model("echo/whatever-model");
    ASSERT_TRUE(echo);
    EXPECT_TRUE(echo->builtin);
    EXPECT_EQ(echo->upstream, "whatever-model");
    EXPECT_EQ(echo->input_per_mtok, 0.0);
    EXPECT_EQ(echo->output_per_mtok, 0.0);
    EXPECT_EQ(echo->context_window, 1000000u);

    EXPECT_FALSE(cfg->find_model("openai/not-a-model"));
    EXPECT_FALSE(cfg->find_model("claude/claude-3-5-haiku")); // provider not configured
    EXPECT_FALSE(cfg->find_model("gpt-4o-mini"));
    EXPECT_FALSE(cfg->find_model("echo/"));
    EXPECT_TRUE(cfg->models.size() == 1u); // built-ins are not copied into models
}

TEST(ConfigTest, EffectiveLimits) {
    const auto cfg = ok(providers + R"(
key_classes:
  agent: { rpm: 120, tpm: 500000, daily_usd: 20, loop_max: 20, loop_window: 60s }
keys:
  - { id: bot, class: agent, secret: s1, rpm: 10, monthly_usd: 100, loop_window: 5m }
  - { id: dev, class: developer, secret: s2, daily_usd: 0 }
)");
    const auto bot = cfg->effective_limits(cfg->keys[0]);
    EXPECT_EQ(bot.rpm, 10u);
    EXPECT_EQ(bot.tpm, 500000u);
    EXPECT_EQ(bot.daily_usd, 20.0);
    EXPECT_EQ(bot.monthly_usd, 100.0);
    EXPECT_EQ(bot.loop_max, 20u);
    EXPECT_EQ(bot.loop_window, 5min);
    const auto dev = cfg->effective_limits(cfg->keys[1]); // no developer class defaults
    EXPECT_EQ(dev.daily_usd, 0.0);
    EXPECT_FALSE(dev.rpm);
    EXPECT_FALSE(dev.loop_window);
}

TEST(ConfigTest, SecretIsHashedAndNotRetained) {
    const std::string clear = "mk-dev-ThisIsTheClearSecretValue0123456789";
    const auto cfg = ok(providers + R"(
keys:
  - { id: alice, class: developer, secret: "${ALICE_KEY}" }
  - { id: bob, class: developer, secret_sha256: ")" +
                            [] {
                                std::string upper = sha256_hex("bob");
                                std::ranges::transform(upper, upper.begin(), ::toupper);
                                return upper;
                            }() +
                            R"(" }
  - { id: carol, class: agent, secret: "${CAROL_KEY:-}" }
  - { id: dave, class: agent, secret_sha256: "" }
)",
                        {{"ALICE_KEY", clear}});
    ASSERT_EQ(cfg->keys.size(), 4u);
    EXPECT_EQ(cfg->keys[0].secret_sha256, sha256_hex(clear));
    EXPECT_EQ(cfg->keys[1].secret_sha256, sha256_hex("bob")); // lowered
    EXPECT_EQ(cfg->keys[2].secret_sha256, "");                // disabled, not an error
    EXPECT_EQ(cfg->keys[3].secret_sha256, "");
    for (const auto& k : cfg->keys) {
        EXPECT_EQ(k.id.find(clear), std::string::npos);
        EXPECT_EQ(k.secret_sha256.find(clear), std::string::npos);
        for (const auto& m : k.models) {
            EXPECT_EQ(m.find(clear), std::string::npos);
        }
    }
}

TEST(ConfigTest, KeyRules) {
    const auto r = load(R"(
keys:
  - { id: a, class: developer, secret: same }
  - { id: a, class: developer, secret: other }
  - { id: c, class: agent, secret: same }
  - { id: d, class: agent, secret: x, secret_sha256: "" }
  - { id: e, class: agent }
  - { id: f, class: agent, secret_sha256: abc }
  - { id: g, secret: y, rpm: 0 }
  - { class: agent, secret: z }
)");
    EXPECT_TRUE(has_error(r, "keys[1].id: duplicate key id \"a\" (also keys[0])"));
    EXPECT_TRUE(has_error(r, "keys[2]: same secret as keys[0] (\"a\")"));
    EXPECT_TRUE(has_error(r, "keys[3]: set either secret or secret_sha256, not both"));
    EXPECT_TRUE(has_error(r, "keys[4].secret_sha256: missing required field (or give secret)"));
    EXPECT_TRUE(has_error(r, "keys[5].secret_sha256: expected 64 hex digits (a SHA-256 digest)"));
    EXPECT_TRUE(has_error(r, "keys[6].class: missing required field"));
    EXPECT_TRUE(has_error(r, "keys[6].rpm: expected a positive integer, got \"0\""));
    EXPECT_TRUE(has_error(r, "keys[7].id: missing required field"));
    EXPECT_EQ(r.errors.size(), 8u) << joined(r.errors);

    // Globs that match nothing are fine.
    EXPECT_EQ(ok(providers + "keys: [{ id: k.1_x-y, class: agent, secret: s, models: "
                             "[\"nothing/*\"] }]")
                  ->keys[0]
                  .models.size(),
              1u);
}

TEST(ConfigTest, NamesRoundTrip) {
    for (const char* name : {"developer", "application", "agent"}) {
        EXPECT_STREQ(to_string(*parse_key_class(name)), name);
    }
    for (const char* name : {"openai", "anthropic", "gemini", "azure", "echo"}) {
        EXPECT_STREQ(to_string(*parse_provider_type(name)), name);
    }
    for (const char* name : {"fallback", "cheapest"}) {
        EXPECT_STREQ(to_string(*parse_route_strategy(name)), name);
    }
    EXPECT_FALSE(parse_key_class("Developer"));
    EXPECT_FALSE(parse_provider_type(""));
}

TEST(ConfigTest, ProcessEnvReadsTheEnvironment) {
    ::setenv("MICHI_CONFIG_TEST_VAR", "42", 1);
    EXPECT_EQ(process_env()("MICHI_CONFIG_TEST_VAR"), "42");
    ::unsetenv("MICHI_CONFIG_TEST_VAR");
    EXPECT_FALSE(process_env()("MICHI_CONFIG_TEST_VAR"));
}

TEST(ConfigTest, ProjectDefaultConfigLoads) {
    // (From the source tree, whatever directory the tests run in.)
    const auto path = std::filesystem::path(MICHI_SOURCE_DIR) / "config" / "michi.yaml";
    ASSERT_TRUE(std::filesystem::exists(path)) << path;
    const auto r = load_file(path.string(), fake_env());
    EXPECT_TRUE(r.cfg) << "errors:" << joined(r.errors);
}

TEST(ConfigTest, ShortAdminKeyIsRefused) {
    const auto r = load("admin: { key: \"x\" }\n");
    EXPECT_FALSE(r.cfg);
    EXPECT_TRUE(has_error(r, "admin.key: too short (1 characters; at least 32, e.g. `openssl "
                             "rand -hex 24`; empty turns the admin API off)"))
        << joined(r.errors);
    EXPECT_FALSE(load("admin: { key: \"" + std::string(31, 'k') + "\" }\n").cfg);
    EXPECT_EQ(ok("admin: { key: \"" + std::string(32, 'k') + "\" }\n")->admin.key.reveal(),
              std::string(32, 'k'));
    EXPECT_TRUE(ok("admin: { key: \"\" }\n")->admin.key.empty()); // empty: admin off
}

TEST(ConfigTest, MaxJsonDepthHasARange) {
    EXPECT_EQ(ok("server: {}\n")->server.max_json_depth, 128u);
    EXPECT_EQ(ok("server: { max_json_depth: 64 }\n")->server.max_json_depth, 64u);
    const auto low = load("server: { max_json_depth: 4 }\n");
    EXPECT_TRUE(has_error(low, "server.max_json_depth: expected 16 to 1024 levels, got 4"))
        << joined(low.errors);
    EXPECT_FALSE(load("server: { max_json_depth: 5000 }\n").cfg);
    EXPECT_FALSE(load("server: { max_json_depth: 0 }\n").cfg);
}

TEST(ConfigTest, HeaderValuesSentUpstreamAreChecked) {
    const auto r = load(R"(
providers:
  p: { type: openai, base_url: "http://h", api_key: "a\nb", headers: { x-a: "1\r\nx-b: 2" } }
  q: { type: openai, base_url: "http://h", headers: { x-long: ")" +
                        std::string(1025, 'v') +
                        R"(" } }
)");
    EXPECT_TRUE(has_error(r, "providers.p.api_key: contains a control character (a line break, "
                             "NUL, ...)"))
        << joined(r.errors);
    EXPECT_TRUE(has_error(r, "providers.p.headers.x-a: a header value must not contain line "
                             "breaks or NUL"));
    EXPECT_TRUE(has_error(r, "providers.q.headers.x-long: longer than 1024 bytes"));
}

TEST(ConfigTest, DeepNestingIsAnErrorNotACrash) {
    // yaml-cpp stops at its own nesting limit; the loader says so. Flow and block forms.
    for (const std::string& text : {std::string(100000, '[') + std::string(100000, ']'),
                                    "keys: " + std::string(5000, '{'), [] {
                                        std::string t;
                                        for (int i = 0; i < 3000; ++i) {
                                            t += std::string(static_cast<std::size_t>(i), ' ') +
                                                 "- \n";
                                        }
                                        return t;
                                    }()}) {
        load_result r;
        EXPECT_NO_THROW(r = load(text));
        EXPECT_FALSE(r.cfg);
        EXPECT_FALSE(r.errors.empty());
    }
}

} // namespace
} // namespace michi::config
