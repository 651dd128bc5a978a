// What a client's strings can do to what the gateway writes: log lines, response headers and
// metrics. Every client-controlled value is escaped and bounded in the access log (text and
// JSON) and in headers, and a metric label only ever holds a name from the config.

#include "hostile/hostile_support.hpp"
#include "support/daemon_process.hpp"
#include "support/fake_upstream.hpp"
#include "support/gateway_harness.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <csignal>
#include <sstream>
#include <vector>

namespace michi::test {
namespace {

using json = nlohmann::json;

std::string chat_with_model(const std::string& model_json) {
    return R"({"model":)" + model_json + R"(,"messages":[{"role":"user","content":"hi"}]})";
}

// The requests of the log test: each a hostile model or path; the last one a marker whose
// line says every line before it is out.
std::vector<std::string> hostile_requests() {
    const std::string close = "Connection: close\r\n";
    return {
        // A newline in the model: a naive text line would end there and forge the next one.
        raw_post("/v1/chat/completions",
                 chat_with_model(R"("echo/x\n2026-01-01T00:00:00.000Z info access: FORGED)"
                                 R"( - - key=admin status=200")"),
                 close),
        raw_post("/v1/chat/completions", chat_with_model(R"("echo/nul\u0000byte\u001b[31m")"),
                 close),
        // Invalid UTF-8, raw in the JSON text (the full parse refuses it; the log still names
        // the model).
        raw_post("/v1/chat/completions", chat_with_model("\"echo/bad\xff\xfe\xc3\""), close),
        raw_post("/v1/chat/completions", chat_with_model(R"("echo/quote\"back\\slash")"), close),
        raw_post("/v1/chat/completions", chat_with_model("\"echo/" + std::string(5000, 'L') + "\""),
                 close),
        "GET /v1/mod\xff\"els?x=1 HTTP/1.1\r\nHost: gw\r\n" + close + "\r\n",
        "GET /v1/LOG-TEST-END HTTP/1.1\r\nHost: gw\r\n" + close + "\r\n",
    };
}

// The access lines of a daemon's output.
std::vector<std::string> access_lines(const std::string& output, const std::string& marker) {
    std::vector<std::string> out;
    std::istringstream in(output);
    for (std::string line; std::getline(in, line);) {
        if (line.find(marker) != std::string::npos) {
            out.push_back(line);
        }
    }
    return out;
}

// Runs the daemon with log.format `format`, sends the hostile requests and returns its output
// once the marker request's line is out.
std::string run_and_log(const config_dir& dir, const std::string& format) {
    fake_upstream up;
    std::string cfg = basic_config(up.base_url());
    cfg.replace(cfg.find("log: { level: warn }"), 20,
                "log: { level: info, format: " + format + " }");
    daemon_process d({"--config", dir.write("michi-" + format + ".yaml", cfg)});
    const auto port = d.wait_listening();
    EXPECT_NE(port, 0) << d.output();
    if (port == 0) {
        return {};
    }
    for (const auto& r : hostile_requests()) {
        const auto answer = raw_exchange(port, r);
        EXPECT_EQ(status_lines(answer.bytes), 1u) << answer.bytes;
    }
    EXPECT_TRUE(d.wait_for_line("LOG-TEST-END")) << d.output();
    d.signal(SIGTERM);
    EXPECT_EQ(d.wait_exit(), 0);
    return d.output();
}

TEST(OutputTest, ClientStringsNeverForgeOrCorruptAccessLogLines) {
    config_dir dir;
    const auto requests = hostile_requests().size();

    const auto text = run_and_log(dir, "text");
    EXPECT_TRUE(valid_utf8(text)) << "invalid UTF-8 reached the log";
    EXPECT_EQ(text.find('\0'), std::string::npos) << "a NUL reached the log";
    EXPECT_EQ(text.find('\x1b'), std::string::npos) << "an escape character reached the log";
    const auto lines = access_lines(text, " access: ");
    EXPECT_EQ(lines.size(), requests) << text; // one line per request, none forged
    for (const auto& line : lines) {
        EXPECT_TRUE(line.starts_with("20")) << line; // each starts with its own time stamp
        EXPECT_LE(line.size(), 2000u) << line;       // long values are cut
    }
    EXPECT_NE(text.find(R"(route="echo/x\n2026-01-01T00:00:00.000Z info access: FORGED)"),
              std::string::npos)
        << text;
    EXPECT_NE(text.find(R"("echo/nul\x00byte\x1b[31m")"), std::string::npos) << text;
    EXPECT_NE(text.find(R"("echo/bad\xff\xfe\xc3")"), std::string::npos) << text;
    EXPECT_NE(text.find(R"("echo/quote\"back\\slash")"), std::string::npos) << text;
    EXPECT_NE(text.find("...[cut "), std::string::npos) << text;

    const auto jsonl = run_and_log(dir, "json");
    EXPECT_TRUE(valid_utf8(jsonl));
    EXPECT_EQ(jsonl.find('\0'), std::string::npos);
    const auto objects = access_lines(jsonl, R"("msg":"access")");
    EXPECT_EQ(objects.size(), requests) << jsonl;
    bool saw_newline_model = false;
    for (const auto& line : objects) {
        const auto j = json::parse(line, nullptr, false);
        ASSERT_TRUE(j.is_object()) << line;
        EXPECT_LE(j["route"].get<std::string>().size(), 300u);
        saw_newline_model =
            saw_newline_model || j["route"].get<std::string>().starts_with("echo/x\n2026-01-01");
    }
    EXPECT_TRUE(saw_newline_model) << jsonl; // the value itself survives, escaped by JSON
}

TEST(OutputTest, AClientsModelNameIsBoundedAndCleanInResponseHeaders) {
    fake_upstream up;
    gateway_harness gw(basic_config(up.base_url()));
    const auto big = gw.chat(chat_with_model("\"echo/" + std::string(1 << 20, 'm') + "\""));
    ASSERT_EQ(big.status, 200u);
    ASSERT_TRUE(big.headers.contains("x-michi-model"));
    const auto& served = big.headers.at("x-michi-model");
    EXPECT_LE(served.size(), 1024u + 3);
    EXPECT_TRUE(served.starts_with("echo/mmm")) << served.substr(0, 64);
    EXPECT_TRUE(served.ends_with("...")) << served.substr(served.size() - 16);

    const auto ctl = gw.chat(chat_with_model(R"("echo/a\u0000b\u0007c\r\nx-injected: 1")"));
    ASSERT_EQ(ctl.status, 200u);
    EXPECT_EQ(ctl.headers.count("x-injected"), 0u);
    ASSERT_TRUE(ctl.headers.contains("x-michi-model"));
    for (const unsigned char c : ctl.headers.at("x-michi-model")) {
        EXPECT_TRUE(c >= 0x20 && c != 0x7F) << "control byte " << static_cast<int>(c);
    }
}

// An echo stream names its model in every piece: a long model name must not multiply the
// request's size by the pieces.
TEST(OutputTest, AnEchoStreamIsAboutAsLargeAsItsRequestWhateverTheModelName) {
    fake_upstream up;
    gateway_harness gw(basic_config(up.base_url()));
    std::string words;
    for (int i = 0; i < 300; ++i) {
        words += "word" + std::to_string(i) + " ";
    }
    const std::string body = R"({"model":"echo/)" + std::string(64 * 1024, 'm') +
                             R"(","stream":true,"messages":[{"role":"user","content":")" + words +
                             R"("}]})";
    const auto r = gw.chat(body);
    ASSERT_EQ(r.status, 200u);
    EXPECT_NE(r.body.find("word299"), std::string::npos);
    EXPECT_NE(r.body.find("data: [DONE]"), std::string::npos);
    EXPECT_LT(r.body.size(), 4 * body.size()) << "an echo stream of " << r.body.size() << " bytes";
}

TEST(OutputTest, MetricLabelsComeOnlyFromTheConfig) {
    fake_upstream up;
    config_parts parts;
    parts.models = "  echo/echo-1: { input_per_mtok: 0, output_per_mtok: 0 }\n";
    gateway_harness gw(basic_config(up.base_url(), parts));
    ASSERT_EQ(gw.chat(chat_with_model(R"("echo/echo-1")")).status, 200u);
    ASSERT_EQ(gw.chat(chat_with_model(R"("fake/gpt-test")")).status, 200u);
    ASSERT_EQ(gw.chat(chat_with_model(R"("echo/first-made-up")")).status, 200u);
    const auto before = gw.request(http::verb::get, "/metrics").body;

    constexpr int names = 500;
    kept_alive_client client(gw.port());
    for (int i = 0; i < names; ++i) {
        const auto r = client.request(http::verb::post, "/v1/chat/completions",
                                      chat_with_model("\"echo/made-up-" + std::to_string(i) + "-" +
                                                      std::string(200, 'x') + "\""));
        ASSERT_EQ(r.result_int(), 200u) << i;
    }
    const auto after = gw.request(http::verb::get, "/metrics").body;
    // Same series as before: only the counts moved (a few bytes of digits).
    EXPECT_LT(after.size(), before.size() + 400) << after;
    EXPECT_NE(after.find(R"(model="echo/echo-1")"), std::string::npos);
    EXPECT_NE(after.find(R"(model="fake/gpt-test")"), std::string::npos);
    EXPECT_NE(after.find(R"(model="other",status="200"} 501)"), std::string::npos) << after;
    EXPECT_EQ(after.find("made-up"), std::string::npos);
}

} // namespace
} // namespace michi::test
