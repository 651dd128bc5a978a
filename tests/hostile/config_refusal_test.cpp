// Configs that would silently disarm the gateway are refused, at start, by --check and on
// SIGHUP (where the config in force stays): an empty or comment-only file (a truncated file
// would otherwise load as a gateway with no keys and no admin key), and a short admin key.

#include "hostile/hostile_support.hpp"
#include "support/daemon_process.hpp"
#include "support/fake_upstream.hpp"
#include "support/gateway_harness.hpp"

#include <gtest/gtest.h>

#include <csignal>

namespace michi::test {
namespace {

const std::string echo_chat =
    R"({"model":"echo/echo-1","messages":[{"role":"user","content":"hi"}]})";

TEST(ConfigRefusalTest, AnEmptyOrCommentOnlyConfigIsRefusedEverywhere) {
    config_dir dir;
    for (const std::string text : {"", "# emptied by a bad deploy\n\n   # nothing else\n"}) {
        const auto path = dir.write("empty.yaml", text);
        const auto [check_code, check_out] = run_binary({"--config", path, "--check"});
        EXPECT_EQ(check_code, 1) << check_out;
        EXPECT_NE(check_out.find(path + ": empty (nothing but blank lines or comments)"),
                  std::string::npos)
            << check_out;
        const auto [start_code, start_out] = run_binary({"--config", path});
        EXPECT_EQ(start_code, 1) << start_out;
        EXPECT_NE(start_out.find(path), std::string::npos) << start_out;
    }

    // Running, then the file is emptied and SIGHUP comes: the old config stays in force.
    fake_upstream up;
    std::string cfg = basic_config(up.base_url());
    cfg.replace(cfg.find("log: { level: warn }"), 20, "log: { level: info }");
    const auto path = dir.write("michi.yaml", cfg);
    daemon_process d({"--config", path});
    const auto port = d.wait_listening();
    ASSERT_NE(port, 0) << d.output();
    const std::string request =
        raw_post("/v1/chat/completions", echo_chat, "Connection: close\r\n");
    EXPECT_TRUE(raw_exchange(port, request).bytes.starts_with("HTTP/1.1 200 "));
    dir.write("michi.yaml", "# emptied\n");
    d.signal(SIGHUP);
    ASSERT_TRUE(d.wait_for_line("reload rejected")) << d.output();
    EXPECT_NE(d.output().find(path + ": empty"), std::string::npos) << d.output();
    const auto after = raw_exchange(port, request);
    EXPECT_TRUE(after.bytes.starts_with("HTTP/1.1 200 ")) << after.bytes; // the key still works
    d.signal(SIGTERM);
    EXPECT_EQ(d.wait_exit(), 0);
}

TEST(ConfigRefusalTest, AnAdminKeyShorterThan32CharactersIsRefused) {
    config_dir dir;
    fake_upstream up;
    for (const std::string& key :
         {std::string("x"), std::string("short-admin-key"), std::string(31, 'k')}) {
        const auto path = dir.write("michi.yaml", basic_config(up.base_url()) + "admin: { key: \"" +
                                                      key + "\" }\n");
        const auto [code, out] = run_binary({"--config", path, "--check"});
        EXPECT_EQ(code, 1) << key << ": " << out;
        EXPECT_NE(out.find("admin.key: too short (" + std::to_string(key.size()) +
                           " characters; at least 32"),
                  std::string::npos)
            << out;
    }
    const auto ok = dir.write("michi.yaml", basic_config(up.base_url()) + "admin: { key: \"" +
                                                std::string(32, 'k') + "\" }\n");
    EXPECT_EQ(run_binary({"--config", ok, "--check"}).first, 0);
    const auto off =
        dir.write("michi.yaml", basic_config(up.base_url()) + "admin: { key: \"\" }\n");
    EXPECT_EQ(run_binary({"--config", off, "--check"}).first, 0); // empty: admin API off
}

} // namespace
} // namespace michi::test
