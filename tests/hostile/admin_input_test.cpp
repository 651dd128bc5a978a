// The admin API reads its bodies strictly: a field it does not take, a value of the wrong
// type or out of range is a 400 naming the field (never a 500, never silently ignored), and
// bodies are parsed with the JSON depth limit.

#include "support/fake_upstream.hpp"
#include "support/gateway_harness.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace michi::test {
namespace {

using json = nlohmann::json;

class AdminInputTest : public ::testing::Test {
protected:
    AdminInputTest() : gw_(basic_config(up_.base_url(), parts())) {}

    static config_parts parts() {
        config_parts p;
        p.rest = admin_section();
        return p;
    }

    http_reply call(http::verb method, const std::string& path, const std::string& body) {
        return gw_.request(method, path, body, admin_auth());
    }

    // Expects a 400 invalid_request_error whose param is `param` (null when empty); returns the
    // message.
    std::string expect_400(http::verb method, const std::string& path, const std::string& body,
                           const std::string& param) {
        const auto r = call(method, path, body);
        EXPECT_EQ(r.status, 400u) << body << " -> " << r.body;
        const auto j = json::parse(r.body, nullptr, false);
        if (!j.is_object() || !j.contains("error")) {
            ADD_FAILURE() << body << " -> " << r.body;
            return {};
        }
        EXPECT_EQ(j["error"]["type"], "invalid_request_error") << r.body;
        if (param.empty()) {
            EXPECT_TRUE(j["error"]["param"].is_null()) << body << " -> " << r.body;
        } else {
            EXPECT_EQ(j["error"]["param"], param) << body << " -> " << r.body;
        }
        return j["error"]["message"].is_string() ? j["error"]["message"].get<std::string>() : "";
    }

    fake_upstream up_;
    gateway_harness gw_;
};

TEST_F(AdminInputTest, CreateKeyRefusesWrongTypesUnknownFieldsAndLimitsOutOfRange) {
    const auto post = http::verb::post;
    expect_400(post, "/admin/keys", R"({"id":5,"class":"developer"})", "id");
    expect_400(post, "/admin/keys", R"({"id":["a"],"class":"developer"})", "id");
    expect_400(post, "/admin/keys", R"({"id":"k","class":7})", "class");
    expect_400(post, "/admin/keys", R"({"id":"k","class":null})", "class");
    expect_400(post, "/admin/keys", R"({"id":"k"})", "class");
    const auto secret = expect_400(post, "/admin/keys",
                                   R"({"id":"k","class":"developer","secret":"mine"})", "secret");
    EXPECT_NE(secret.find("the gateway makes the secret"), std::string::npos) << secret;
    expect_400(post, "/admin/keys", R"({"id":"k","class":"developer","nickname":"x"})", "nickname");
    expect_400(post, "/admin/keys", R"({"id":"k","class":"developer","rpm":9223372036854775808})",
               "rpm");
    expect_400(post, "/admin/keys", R"({"id":"k","class":"developer","tpm":1e30})", "tpm");
    expect_400(post, "/admin/keys", R"({"id":"k","class":"developer","rpm":-1})", "rpm");
    expect_400(post, "/admin/keys", R"({"id":"k","class":"developer","rpm":1.5})", "rpm");
    expect_400(post, "/admin/keys", R"({"id":"k","class":"developer","rpm":"10"})", "rpm");
    expect_400(post, "/admin/keys", R"({"id":"k","class":"developer","daily_usd":-0.5})",
               "daily_usd");
    // (A number beyond a double is not JSON nlohmann reads: the body is refused whole.)
    expect_400(post, "/admin/keys", R"({"id":"k","class":"developer","monthly_usd":1e400})", "");
    expect_400(post, "/admin/keys", R"({"id":"k","class":"developer","models":"echo/*"})",
               "models");
    expect_400(post, "/admin/keys", R"({"id":"k","class":"developer","models":[1]})", "models");
    // Nothing of the above was made; the largest limits still fit.
    EXPECT_EQ(call(http::verb::get, "/admin/keys/k", "").status, 404u);
    const auto made = call(post, "/admin/keys",
                           R"({"id":"k","class":"developer","rpm":9223372036854775807,)"
                           R"("daily_usd":1e300,"models":["echo/*"]})");
    EXPECT_EQ(made.status, 201u) << made.body;
}

TEST_F(AdminInputTest, PatchChangesLimitsAndModelsOnly) {
    ASSERT_EQ(call(http::verb::post, "/admin/keys", R"({"id":"p","class":"developer"})").status,
              201u);
    const auto patch = http::verb::patch;
    const auto cls = expect_400(patch, "/admin/keys/p", R"({"class":"agent"})", "class");
    EXPECT_NE(cls.find("'class' cannot be changed"), std::string::npos) << cls;
    expect_400(patch, "/admin/keys/p", R"({"id":"q"})", "id");
    expect_400(patch, "/admin/keys/p", R"({"secret":"x"})", "secret");
    expect_400(patch, "/admin/keys/p", R"({"rpm":9223372036854775808})", "rpm");
    expect_400(patch, "/admin/keys/p", R"({"rpm":5,"colour":"red"})", "colour");
    const auto view = json::parse(call(http::verb::get, "/admin/keys/p", "").body);
    EXPECT_EQ(view["class"], "developer");
    EXPECT_TRUE(view["limits"]["rpm"].is_null() || view["limits"]["rpm"] != 5) << view;
    const auto ok = call(patch, "/admin/keys/p", R"({"rpm":5,"models":["echo/*"]})");
    EXPECT_EQ(ok.status, 200u) << ok.body;
    EXPECT_EQ(json::parse(ok.body)["limits"]["rpm"], 5);
}

TEST_F(AdminInputTest, PutRouteIsAsStrict) {
    const auto put = http::verb::put;
    expect_400(put, "/admin/routes/r", R"({"targets":["echo/echo-1"],"fallback":true})",
               "fallback");
    expect_400(put, "/admin/routes/r", R"({"targets":"echo/echo-1"})", "targets");
    expect_400(put, "/admin/routes/r", R"({"targets":[5]})", "targets");
    expect_400(put, "/admin/routes/r", R"({"targets":["echo/echo-1"],"strategy":1})", "strategy");
    expect_400(put, "/admin/routes/r",
               R"({"targets":["echo/echo-1"],"attempt_timeout_ms":18446744073709551615})",
               "attempt_timeout_ms");
    expect_400(put, "/admin/routes/r", R"({"targets":["echo/echo-1"],"retries":-1})", "retries");
    expect_400(put, "/admin/routes/bad%0Aname", R"({"targets":["echo/echo-1"]})", "name");
    // A body that is not an object, or not JSON.
    expect_400(put, "/admin/routes/r", R"([1,2])", "");
    const auto ok = call(put, "/admin/routes/r",
                         R"({"targets":["echo/echo-1"],"attempt_timeout_ms":1500,"retries":1})");
    EXPECT_EQ(ok.status, 200u) << ok.body;
}

TEST_F(AdminInputTest, DeepBodiesAreRefusedNamingTheLimit) {
    for (const std::size_t depth : {129u, 100000u}) {
        const std::string deep = std::string(depth, '[') + std::string(depth, ']');
        for (const auto& [method, path, body] :
             {std::tuple{http::verb::post, "/admin/keys",
                         R"({"id":"d","class":"developer","models":)" + deep + "}"},
              std::tuple{http::verb::put, "/admin/routes/d", R"({"targets":)" + deep + "}"}}) {
            const auto msg = expect_400(method, path, body, "");
            EXPECT_NE(msg.find("nested deeper than the limit of 128 levels"), std::string::npos)
                << msg;
        }
    }
    // At the limit the parse takes it, and the field's own check answers.
    const std::string at_limit = std::string(127, '[') + std::string(127, ']');
    const auto msg =
        expect_400(http::verb::post, "/admin/keys",
                   R"({"id":"d","class":"developer","models":)" + at_limit + "}", "models");
    EXPECT_NE(msg.find("'models' must be an array of glob strings"), std::string::npos) << msg;
}

} // namespace
} // namespace michi::test
