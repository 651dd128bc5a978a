// Prices through the real gateway: GET /admin/models, the usage API's cache fields, a changed
// prices.file picked up on SIGHUP (and a broken one refused), --check's price warnings.
#include "support/daemon_process.hpp"
#include "support/fake_upstream.hpp"
#include "support/gateway_harness.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <csignal>
#include <filesystem>
#include <fstream>

namespace michi::test {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// The item of `list` whose "id" is id, or null.
json item(const json& list, const std::string& id) {
    for (const auto& i : list) {
        if (i["id"] == id) {
            return i;
        }
    }
    return nullptr;
}

TEST(PricesTest, AdminModelsListsPricesSourcesAndDates) {
    fake_upstream up;
    config_parts parts;
    parts.providers = "  claude: { type: anthropic, base_url: \"" + up.base_url() + "\" }\n";
    parts.models = "  fake/local: { upstream: llama3 }\n";
    parts.rest = admin_section() +
                 "routes:\n  main: { targets: [fake/gpt-test, claude/claude-sonnet-4-5] }\n";
    gateway_harness gw(basic_config(up.base_url(), parts));

    EXPECT_EQ(gw.request(http::verb::get, "/admin/models").status, 403u); // a client key
    const auto r = gw.request(http::verb::get, "/admin/models", "", admin_auth());
    ASSERT_EQ(r.status, 200u) << r.body;
    const json body = json::parse(r.body);
    EXPECT_EQ(body["object"], "list");
    EXPECT_EQ(body["prices"]["file"], "");

    const json own = item(body["data"], "fake/gpt-test");
    ASSERT_FALSE(own.is_null()) << r.body;
    EXPECT_EQ(own["source"], "config");
    EXPECT_EQ(own["input_per_mtok"], 1.0);
    EXPECT_EQ(own["output_per_mtok"], 2.0);
    EXPECT_TRUE(own["cache_read_per_mtok"].is_null());
    EXPECT_TRUE(own["as_of"].is_null());

    const json sonnet = item(body["data"], "claude/claude-sonnet-4-5");
    ASSERT_FALSE(sonnet.is_null()) << r.body;
    EXPECT_EQ(sonnet["source"], "table");
    EXPECT_EQ(sonnet["priced"], true);
    EXPECT_EQ(sonnet["cache_read_per_mtok"], 0.3);
    EXPECT_EQ(sonnet["cache_write_per_mtok"], 3.75);
    EXPECT_EQ(sonnet["cache_write_1h_per_mtok"], 6.0);
    EXPECT_EQ(sonnet["long_context"]["above_input_tokens"], 200000);
    EXPECT_EQ(sonnet["long_context"]["input_per_mtok"], 6.0);
    EXPECT_TRUE(sonnet["as_of"].is_string());

    const json local = item(body["data"], "fake/local");
    ASSERT_FALSE(local.is_null()) << r.body;
    EXPECT_EQ(local["priced"], false);

    // The table prices provider/<name> for any configured provider, each entry dated.
    ASSERT_GE(body["table"].size(), 100u);
    for (const auto& e : body["table"]) {
        EXPECT_TRUE(e["as_of"].is_string() && !e["as_of"].get<std::string>().empty()) << e;
        EXPECT_EQ(e["source"], "table");
    }
    EXPECT_EQ(item(body["table"], "deepseek-v3")["upstream"], "deepseek-chat");

    // The usage API carries the cache and reasoning columns.
    ASSERT_EQ(
        gw.chat(R"({"model":"fake/gpt-test","messages":[{"role":"user","content":"x"}]})").status,
        200u);
    const auto usage = gw.request(http::verb::get, "/admin/usage", "", admin_auth());
    const json rows = json::parse(usage.body)["data"];
    ASSERT_EQ(rows.size(), 1u) << usage.body;
    for (const char* field :
         {"tokens_cache_read", "tokens_cache_write", "tokens_reasoning", "cache_saved_usd"}) {
        EXPECT_TRUE(rows[0].contains(field)) << field;
    }
}

class PriceFileDaemonTest : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() /
               ("michi-prices-daemon-" + std::to_string(::getpid()) + "-" +
                ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::create_directories(dir_);
    }
    void TearDown() override { fs::remove_all(dir_); }

    std::string write(const std::string& name, const std::string& text) {
        const auto path = dir_ / name;
        std::ofstream(path) << text;
        return path.string();
    }

    // A daemon config on an ephemeral port whose prices.file is dir/prices.yaml, serving
    // fake/price-probe through a route (so GET /admin/models shows its prices).
    std::string config(const std::string& fake_url) {
        config_parts parts;
        parts.sqlite = (dir_ / "michi.db").string();
        parts.rest = admin_section() + "prices: { file: \"" + (dir_ / "prices.yaml").string() +
                     "\" }\nroutes:\n  probe: { targets: [fake/price-probe] }\n";
        std::string cfg = basic_config(fake_url, parts);
        cfg.replace(cfg.find("log: { level: warn }"), 20, "log: { level: info }");
        return cfg;
    }

    static std::string prices(const std::string& input) {
        return "models:\n  price-probe: { as_of: 2026-12-01, input_per_mtok: " + input +
               ", output_per_mtok: 2 }\n";
    }

    fs::path dir_;
};

json admin_models(std::uint16_t port) {
    net::io_context ioc;
    beast::tcp_stream stream(ioc);
    stream.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
    http::request<http::string_body> req{http::verb::get, "/admin/models", 11};
    req.set(http::field::host, "127.0.0.1");
    req.set(http::field::authorization, "Bearer " + admin_key);
    http::write(stream, req);
    beast::flat_buffer buffer;
    http::response<http::string_body> res;
    http::read(stream, buffer, res);
    return json::parse(res.body(), nullptr, false);
}

double probe_input_price(std::uint16_t port) {
    const json body = admin_models(port);
    const json probe = item(body.value("data", json::array()), "fake/price-probe");
    return probe.is_object() && probe["input_per_mtok"].is_number()
               ? probe["input_per_mtok"].get<double>()
               : -1;
}

TEST_F(PriceFileDaemonTest, SighupPicksUpAChangedPriceFileAndRefusesABrokenOne) {
    fake_upstream up;
    write("prices.yaml", prices("1.5"));
    const auto path = write("michi.yaml", config(up.base_url()));
    daemon_process d({"--config", path});
    const auto port = d.wait_listening();
    ASSERT_NE(port, 0) << d.output();
    EXPECT_EQ(probe_input_price(port), 1.5);

    write("prices.yaml", prices("2.25"));
    d.signal(SIGHUP);
    ASSERT_TRUE(d.wait_for_line("config reloaded")) << d.output();
    EXPECT_EQ(probe_input_price(port), 2.25);

    write("prices.yaml", prices("-1"));
    d.signal(SIGHUP);
    ASSERT_TRUE(d.wait_for_line("reload rejected")) << d.output();
    ASSERT_TRUE(d.wait_for_line("models.price-probe.input_per_mtok")) << d.output();
    EXPECT_NE(d.output().find((dir_ / "prices.yaml").string()), std::string::npos);
    EXPECT_EQ(probe_input_price(port), 2.25); // the old prices stay
    d.signal(SIGTERM);
    EXPECT_EQ(d.wait_exit(), 0);
}

TEST_F(PriceFileDaemonTest, CheckWarnsAboutPricesButPasses) {
    fake_upstream up;
    write("prices.yaml", "models:\n  price-probe: { as_of: 2024-01-01, input_per_mtok: 1, "
                         "output_per_mtok: 2 }\n");
    std::string cfg = config(up.base_url());
    cfg.replace(cfg.find("models:\n"), 8, "models:\n  fake/unpriced: {}\n");
    const auto path = write("michi.yaml", cfg);
    const auto [code, out] = run_binary({"--config", path, "--check"});
    EXPECT_EQ(code, 0) << out;
    EXPECT_NE(out.find("warning: models.fake/unpriced: \"fake/unpriced\" has no price"),
              std::string::npos)
        << out;
    EXPECT_NE(out.find("warning: routes.probe.targets[0]: the prices of \"fake/price-probe\" are "
                       "as of 2024-01-01"),
              std::string::npos)
        << out;
    EXPECT_NE(out.find(path + ": OK"), std::string::npos) << out;
}

} // namespace
} // namespace michi::test
