// Price tables: the shipped one, LiteLLM's file as it is, prices.file in the config, the new
// price fields of `models:`, every error word for word, and --check's price warnings.

#include "michi/config/price_table.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#ifndef MICHI_FIXTURES_DIR
#error "MICHI_FIXTURES_DIR must name tests/fixtures"
#endif

namespace michi::config {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono;

std::string read_file(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    EXPECT_TRUE(in.good()) << "missing " << p;
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

const fs::path fixtures = MICHI_FIXTURES_DIR;

// A directory of its own for the files a test writes, removed afterwards.
class PriceFileTest : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() /
               ("michi-prices-" + std::to_string(::getpid()) + "-" +
                ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::remove_all(dir_);
        fs::create_directories(dir_);
    }
    void TearDown() override { fs::remove_all(dir_); }

    std::string write(const std::string& name, const std::string& text) {
        const auto p = dir_ / name;
        std::ofstream(p, std::ios::binary) << text;
        return p.string();
    }

    fs::path dir_;
};

std::string joined(const std::vector<std::string>& errors) {
    std::string out;
    for (const auto& e : errors) {
        out += "\n  " + e;
    }
    return out.empty() ? " (none)" : out;
}

const std::string providers = R"(
providers:
  openai: { type: openai, base_url: "https://api.openai.com/v1" }
  claude: { type: anthropic, base_url: "https://api.anthropic.com" }
  google: { type: gemini, base_url: "https://generativelanguage.googleapis.com" }
  groq:   { type: openai, base_url: "https://api.groq.com/openai/v1" }
  echo:   { type: echo }
)";

TEST(PriceTableTest, ShippedTableLoadsAndEveryEntryIsDated) {
    EXPECT_TRUE(shipped_price_errors().empty()) << joined(shipped_price_errors());
    const price_table& t = shipped_price_table();
    EXPECT_GE(t.entries().size(), 100u);
    std::set<std::string> names;
    for (const auto& e : t.entries()) {
        SCOPED_TRACE(e.name);
        EXPECT_TRUE(names.insert(e.name).second) << "named twice";
        EXPECT_TRUE(parse_date(e.as_of)) << "as_of: \"" << e.as_of << "\"";
        EXPECT_TRUE(e.input_per_mtok && e.output_per_mtok);
        EXPECT_TRUE(e.context_window);
    }
    EXPECT_EQ(t.source(), price_source::table);
    EXPECT_EQ(t.format(), price_format::michi);
    // What is embedded is config/prices.yaml as it is in the repository.
    EXPECT_EQ(shipped_prices_text(), read_file(fixtures / ".." / ".." / "config" / "prices.yaml"));
}

TEST(PriceTableTest, ShippedTableKeepsEveryModelOfTheOldOne) {
    // name -> upstream, as the compiled-in table of 2025 had them: configs name these.
    const std::pair<const char*, const char*> old[] = {
        {"gpt-4o", "gpt-4o"},
        {"gpt-4o-mini", "gpt-4o-mini"},
        {"gpt-4.1", "gpt-4.1"},
        {"gpt-4.1-mini", "gpt-4.1-mini"},
        {"gpt-4.1-nano", "gpt-4.1-nano"},
        {"o3", "o3"},
        {"o3-mini", "o3-mini"},
        {"o4-mini", "o4-mini"},
        {"gpt-3.5-turbo", "gpt-3.5-turbo"},
        {"text-embedding-3-small", "text-embedding-3-small"},
        {"text-embedding-3-large", "text-embedding-3-large"},
        {"claude-3-5-sonnet", "claude-3-5-sonnet-20241022"},
        {"claude-3-5-haiku", "claude-3-5-haiku-20241022"},
        {"claude-3-7-sonnet", "claude-3-7-sonnet-20250219"},
        {"claude-sonnet-4", "claude-sonnet-4-20250514"},
        {"claude-opus-4", "claude-opus-4-20250514"},
        {"claude-3-haiku", "claude-3-haiku-20240307"},
        {"gemini-2.0-flash", "gemini-2.0-flash"},
        {"gemini-2.5-flash", "gemini-2.5-flash"},
        {"gemini-2.5-pro", "gemini-2.5-pro"},
        {"gemini-1.5-flash", "gemini-1.5-flash"},
        {"gemini-1.5-pro", "gemini-1.5-pro"},
        {"deepseek-v3", "deepseek-chat"},
        {"deepseek-chat", "deepseek-chat"},
        {"deepseek-r1", "deepseek-reasoner"},
        {"deepseek-reasoner", "deepseek-reasoner"},
        {"mistral-large-latest", "mistral-large-latest"},
        {"mistral-small-latest", "mistral-small-latest"},
        {"llama-3.3-70b-versatile", "llama-3.3-70b-versatile"},
        {"llama-3.1-8b-instant", "llama-3.1-8b-instant"},
        {"mixtral-8x7b-32768", "mixtral-8x7b-32768"},
    };
    const auto cfg = load_string(providers);
    ASSERT_TRUE(cfg.cfg) << joined(cfg.errors);
    for (const auto& [name, upstream] : old) {
        SCOPED_TRACE(name);
        const auto m = cfg.cfg->find_model(std::string("openai/") + name);
        ASSERT_TRUE(m);
        EXPECT_EQ(m->upstream, upstream);
        EXPECT_TRUE(m->input_per_mtok && m->output_per_mtok);
        EXPECT_EQ(m->source, price_source::table);
        EXPECT_TRUE(m->builtin);
    }
}

TEST(PriceTableTest, ShippedPricesOfNowadaysModels) {
    const auto cfg = load_string(providers).cfg;
    ASSERT_TRUE(cfg);
    const auto sonnet = cfg->find_model("claude/claude-sonnet-4-5");
    ASSERT_TRUE(sonnet);
    EXPECT_EQ(sonnet->upstream, "claude-sonnet-4-5");
    EXPECT_EQ(sonnet->input_per_mtok, 3.0);
    EXPECT_EQ(sonnet->output_per_mtok, 15.0);
    EXPECT_EQ(sonnet->cache_read_per_mtok, 0.30);
    EXPECT_EQ(sonnet->cache_write_per_mtok, 3.75);
    EXPECT_EQ(sonnet->cache_write_1h_per_mtok, 6.0);
    ASSERT_TRUE(sonnet->long_context);
    EXPECT_EQ(*sonnet->long_context, (long_context_prices{200000, 6.0, 22.5, 0.60, 7.50, 12.0}));
    EXPECT_FALSE(sonnet->as_of.empty());
    const auto gpt5 = cfg->find_model("openai/gpt-5");
    ASSERT_TRUE(gpt5);
    EXPECT_EQ(gpt5->input_per_mtok, 1.25);
    EXPECT_EQ(gpt5->cache_read_per_mtok, 0.125);
    const auto pro = cfg->find_model("google/gemini-2.5-pro");
    ASSERT_TRUE(pro && pro->long_context);
    EXPECT_EQ(pro->long_context->above_input_tokens, 200000u);
    // Names with a slash of their own (Groq's hosted models) are found after the provider.
    const auto oss = cfg->find_model("groq/openai/gpt-oss-120b");
    ASSERT_TRUE(oss);
    EXPECT_EQ(oss->upstream, "openai/gpt-oss-120b");
}

TEST(PriceTableTest, LiteLlmFileAsItIs) {
    const auto r = parse_litellm_prices(read_file(fixtures / "prices" / "litellm_sample.json"),
                                        "litellm.json", price_source::file, "2026-11-30");
    ASSERT_TRUE(r.table) << joined(r.errors);
    const price_table& t = *r.table;
    EXPECT_EQ(t.format(), price_format::litellm);
    // sample_spec and the image model are skipped; the rest are chat or embedding models.
    EXPECT_EQ(t.entries().size(), 9u);
    EXPECT_FALSE(t.find_exact("sample_spec"));
    EXPECT_FALSE(t.find_exact("1024-x-1024/dall-e-2"));

    const price_entry* gpt4o = t.find_exact("gpt-4o");
    ASSERT_TRUE(gpt4o);
    EXPECT_EQ(gpt4o->input_per_mtok, 2.5); // 2.5e-06 per token
    EXPECT_EQ(gpt4o->output_per_mtok, 10.0);
    EXPECT_EQ(gpt4o->cache_read_per_mtok, 1.25);
    EXPECT_EQ(gpt4o->context_window, 128000u);
    EXPECT_EQ(gpt4o->supports_tools, true);
    EXPECT_EQ(gpt4o->as_of, "2026-11-30");

    const price_entry* sonnet = t.find_exact("claude-sonnet-4-5");
    ASSERT_TRUE(sonnet && sonnet->long_context);
    EXPECT_EQ(sonnet->cache_write_per_mtok, 3.75);
    EXPECT_EQ(sonnet->cache_write_1h_per_mtok, 6.0);
    EXPECT_EQ(*sonnet->long_context, (long_context_prices{200000, 6.0, 22.5, 0.6, 7.5, 12.0}));

    const price_entry* embed = t.find_exact("text-embedding-3-small");
    ASSERT_TRUE(embed);
    EXPECT_EQ(embed->input_per_mtok, 0.02);
    EXPECT_EQ(embed->output_per_mtok, 0.0);
    EXPECT_EQ(embed->supports_tools, false);

    const price_entry* deepseek = t.find_exact("deepseek/deepseek-chat");
    ASSERT_TRUE(deepseek);
    EXPECT_EQ(deepseek->cache_read_per_mtok, 0.028);

    const price_entry* grok = t.find_exact("xai/grok-4-fast-reasoning");
    ASSERT_TRUE(grok && grok->long_context);
    EXPECT_EQ(grok->context_window, 2000000u); // written 2000000.0
    EXPECT_EQ(grok->long_context->above_input_tokens, 128000u);

    const price_entry* gpt54 = t.find_exact("gpt-5.4");
    ASSERT_TRUE(gpt54 && gpt54->long_context);
    EXPECT_EQ(*gpt54->long_context,
              (long_context_prices{272000, 5.0, 22.5, 0.5, std::nullopt, std::nullopt}));
}

TEST(PriceTableTest, LookupOrderInBothFormats) {
    const auto r = parse_litellm_prices(read_file(fixtures / "prices" / "litellm_sample.json"),
                                        "litellm.json", price_source::file, "2026-11-30");
    ASSERT_TRUE(r.table);
    const price_table& t = *r.table;
    // LiteLLM: "provider/model", then "<type>/model", then the bare name.
    EXPECT_EQ(t.find("google", "gemini", "gemini-2.5-pro")->name, "gemini/gemini-2.5-pro");
    EXPECT_EQ(t.find("vertex", "openai", "gemini-2.5-pro")->name, "gemini-2.5-pro");
    EXPECT_EQ(t.find("deepseek", "openai", "deepseek-chat")->name, "deepseek/deepseek-chat");
    EXPECT_EQ(t.find("groq", "openai", "openai/gpt-oss-120b")->name, "groq/openai/gpt-oss-120b");
    EXPECT_EQ(t.find("claude", "anthropic", "claude-sonnet-4-5")->name, "claude-sonnet-4-5");
    EXPECT_FALSE(t.find("openai", "openai", "gpt-oss-120b"));
    // Michi's format: only the name after "provider/".
    const auto m = parse_michi_prices(R"(
models:
  openai/gpt-oss-120b: { as_of: 2026-07-24, input_per_mtok: 0.15, output_per_mtok: 0.60 }
)",
                                      "p.yaml", price_source::file);
    ASSERT_TRUE(m.table) << joined(m.errors);
    EXPECT_TRUE(m.table->find("groq", "openai", "openai/gpt-oss-120b"));
    EXPECT_FALSE(m.table->find("openai", "openai", "gpt-oss-120b"));
}

TEST(PriceTableTest, BadMichiFilesWordForWord) {
    const auto r = parse_michi_prices(R"(
models:
  a: { as_of: 2026-13-01, input_per_mtok: -1, output_per_mtok: nan }
  b: { input_per_mtok: 1 }
  c: { as_of: 2026-01-01, input_per_mtok: 1, output_per_mtok: 2, surprise: 1 }
  d: { as_of: 2026-01-01, input_per_mtok: .inf, output_per_mtok: 2, context_window: 0 }
  e: { as_of: 2026-01-01, input_per_mtok: 1, output_per_mtok: 2,
       long_context: { input_per_mtok: 2 } }
  f: [1, 2]
  g: { as_of: 2026-01-01, input_per_mtok: 1, output_per_mtok: 2, supports_tools: maybe }
extra: 1
)",
                                      "new.yaml", price_source::file);
    EXPECT_FALSE(r.table);
    const std::vector<std::string> want = {
        "new.yaml: models.a.as_of: expected a date like 2026-12-01, got \"2026-13-01\"",
        "new.yaml: models.a.input_per_mtok: expected a non-negative number, got \"-1\"",
        "new.yaml: models.a.output_per_mtok: expected a non-negative number, got \"nan\"",
        "new.yaml: models.b.as_of: missing required field",
        "new.yaml: models.b.output_per_mtok: missing required field",
        "new.yaml: models.c.surprise: unknown field",
        "new.yaml: models.d.input_per_mtok: expected a non-negative number, got \".inf\"",
        "new.yaml: models.d.context_window: expected a positive integer, got \"0\"",
        "new.yaml: models.e.long_context.above_input_tokens: missing required field",
        "new.yaml: models.f: expected a map, got a list",
        "new.yaml: models.g.supports_tools: expected true or false, got \"maybe\"",
        "new.yaml: extra: unknown field (a price file has only \"models\")",
    };
    EXPECT_EQ(r.errors, want) << joined(r.errors);
    EXPECT_EQ(parse_michi_prices("models: [", "x.yaml", price_source::file)
                  .errors.at(0)
                  .rfind("x.yaml: syntax error at line ", 0),
              0u);
    EXPECT_EQ(parse_michi_prices("{}", "y.yaml", price_source::file).errors,
              std::vector<std::string>{"y.yaml: models: missing required field"});
}

TEST(PriceTableTest, BadLiteLlmFilesWordForWord) {
    const auto r = parse_litellm_prices(R"({
  "good": {"input_cost_per_token": 1e-06, "output_cost_per_token": 2e-06, "mode": "chat"},
  "bad-in": {"input_cost_per_token": "cheap", "output_cost_per_token": 2e-06, "mode": "chat"},
  "bad-out": {"input_cost_per_token": 1e-06, "output_cost_per_token": -2e-06},
  "bad-tier": {"input_cost_per_token": 1e-06, "output_cost_per_token": 2e-06,
               "input_cost_per_token_above_200k_tokens": [1]},
  "an-image-model": {"input_cost_per_token": "whatever", "mode": "image_generation"},
  "last_updated": "2026-07-24"
})",
                                        "prices.json", price_source::file, "2026-12-01");
    EXPECT_FALSE(r.table);
    const std::vector<std::string> want = {
        "prices.json: \"bad-in\".input_cost_per_token: expected a non-negative number, got "
        "\"cheap\"",
        "prices.json: \"bad-out\".output_cost_per_token: expected a non-negative number, got "
        "-2e-06",
        "prices.json: \"bad-tier\".input_cost_per_token_above_200k_tokens: expected a "
        "non-negative number, got [1]",
    };
    EXPECT_EQ(r.errors, want) << joined(r.errors);
    EXPECT_EQ(parse_litellm_prices("[1, 2]", "l.json", price_source::file, "2026-12-01").errors,
              std::vector<std::string>{"l.json: expected a JSON object of models"});
    const auto broken = parse_litellm_prices(R"({"a": )", "b.json", price_source::file, "x");
    ASSERT_EQ(broken.errors.size(), 1u);
    EXPECT_EQ(broken.errors[0].rfind("b.json: not valid JSON: [json.exception.parse_error.101]", 0),
              0u)
        << broken.errors[0];
    const std::string deep = std::string(100, '[') + std::string(100, ']');
    EXPECT_EQ(parse_price_file("{\"a\":" + deep + "}", "d.json", price_source::file, "x").errors,
              std::vector<std::string>{"d.json: nested deeper than 64 levels"});
}

TEST_F(PriceFileTest, LoadsFromDiskBoundedAndDatedByTheFile) {
    const auto path = write("litellm.json", read_file(fixtures / "prices" / "litellm_sample.json"));
    // LiteLLM's entries carry no date: they are as old as the file.
    const timespec when[2] = {{1764547200, 0}, {1764547200, 0}}; // 2025-12-01T00:00:00Z
    ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), when, 0), 0);
    const auto r = load_price_file(path);
    ASSERT_TRUE(r.table) << joined(r.errors);
    EXPECT_EQ(r.table->find_exact("gpt-4o")->as_of, "2025-12-01");
    EXPECT_EQ(r.table->path(), path);

    const auto big = dir_ / "big.json";
    std::ofstream(big) << "{}";
    fs::resize_file(big, max_price_file_bytes + 1); // sparse: nothing is read
    EXPECT_EQ(load_price_file(big.string()).errors,
              std::vector<std::string>{big.string() +
                                       ": cannot read the price file: larger than 32 MiB"});
    EXPECT_EQ(load_price_file((dir_ / "none.yaml").string()).errors,
              std::vector<std::string>{(dir_ / "none.yaml").string() +
                                       ": cannot read the price file: No such file or directory"});
    EXPECT_EQ(load_price_file(dir_.string()).errors,
              std::vector<std::string>{dir_.string() +
                                       ": cannot read the price file: not a regular file"});
}

TEST_F(PriceFileTest, ConfigPricesFileOverTheTableAndModelsOverBoth) {
    const auto file = write("prices.yaml", R"(
models:
  gpt-4o-mini: { as_of: 2026-11-01, input_per_mtok: 0.10, output_per_mtok: 0.40 }
  house-model: { as_of: 2026-11-01, input_per_mtok: 1, output_per_mtok: 2,
                 cache_read_per_mtok: 0.1 }
)");
    const auto r = load_string(providers + "prices: { file: " + file + " }\n" + R"(
models:
  openai/house-model: { output_per_mtok: 3 }
  openai/gpt-4o: { cache_read_per_mtok: 1.0, as_of: 2026-12-01 }
routes:
  r: { targets: [openai/gpt-4o-mini, openai/house-model] }
)");
    ASSERT_TRUE(r.cfg) << joined(r.errors);
    const auto& cfg = *r.cfg;
    ASSERT_TRUE(cfg.price_file);
    const auto mini = cfg.find_model("openai/gpt-4o-mini");
    EXPECT_EQ(mini->input_per_mtok, 0.10); // the file's, over the shipped 0.15
    EXPECT_EQ(mini->source, price_source::file);
    EXPECT_EQ(mini->as_of, "2026-11-01");
    EXPECT_FALSE(mini->cache_read_per_mtok); // the file's entry, whole: it has no cache price
    const auto claude = cfg.find_model("claude/claude-haiku-4-5"); // not in the file
    EXPECT_EQ(claude->source, price_source::table);
    // models: over both, field by field: its own output price, the file's others.
    const auto& house = cfg.models.at("openai/house-model");
    EXPECT_EQ(house.input_per_mtok, 1.0);
    EXPECT_EQ(house.output_per_mtok, 3.0);
    EXPECT_EQ(house.cache_read_per_mtok, 0.1);
    EXPECT_EQ(house.source, price_source::config);
    EXPECT_EQ(house.as_of, "");
    const auto& gpt4o = cfg.models.at("openai/gpt-4o");
    EXPECT_EQ(gpt4o.input_per_mtok, 2.5); // from the shipped table
    EXPECT_EQ(gpt4o.cache_read_per_mtok, 1.0);
    EXPECT_EQ(gpt4o.source, price_source::config);
    EXPECT_EQ(gpt4o.as_of, "2026-12-01");
}

TEST_F(PriceFileTest, ALiteLlmPriceFileKeepsTheShippedUpstreamNames) {
    const auto file = write("litellm.json", R"({
  "deepseek/deepseek-v3": {"input_cost_per_token": 2.7e-07, "output_cost_per_token": 1.1e-06,
                           "litellm_provider": "deepseek", "mode": "chat"}
})");
    const auto r = load_string(providers + R"(
  deepseek: { type: openai, base_url: "https://api.deepseek.com/v1" }
prices: { file: )" + file + " }\n");
    ASSERT_TRUE(r.cfg) << joined(r.errors);
    const auto m = r.cfg->find_model("deepseek/deepseek-v3");
    ASSERT_TRUE(m);
    EXPECT_EQ(m->input_per_mtok, 0.27);
    EXPECT_EQ(m->source, price_source::file);
    EXPECT_EQ(m->upstream, "deepseek-chat"); // LiteLLM names no upstream: the shipped one
    EXPECT_FALSE(m->supports_images);        // nor capabilities: the shipped ones
}

TEST_F(PriceFileTest, ABadPriceFileIsAConfigErrorNamingFileAndEntry) {
    const auto file = write("bad.yaml", "models:\n  m: { as_of: 2026-01-01, input_per_mtok: "
                                        "-3, output_per_mtok: 1 }\n");
    const auto r = load_string(providers + "prices: { file: " + file + " }\n");
    EXPECT_FALSE(r.cfg);
    EXPECT_EQ(r.errors, std::vector<std::string>{"prices.file: " + file +
                                                 ": models.m.input_per_mtok: expected a "
                                                 "non-negative number, got \"-3\""});
    const auto missing = load_string(providers + "prices: { file: /nonexistent/p.json }\n");
    EXPECT_EQ(missing.errors,
              std::vector<std::string>{"prices.file: /nonexistent/p.json: cannot read the price "
                                       "file: No such file or directory"});
    EXPECT_EQ(load_string(providers + "prices: { url: x }\n").errors,
              std::vector<std::string>{"prices.url: unknown field"});
}

TEST(PriceTableTest, NewModelPriceFieldsInTheConfig) {
    const auto r = load_string(providers + R"(
models:
  claude/house:
    input_per_mtok: 3
    output_per_mtok: 15
    cache_read_per_mtok: 0.3
    cache_write_per_mtok: 3.75
    cache_write_1h_per_mtok: 6
    long_context: { above_input_tokens: 200000, input_per_mtok: 6, output_per_mtok: 22.5,
                    cache_read_per_mtok: 0.6, cache_write_per_mtok: 7.5 }
    as_of: 2026-12-01
)");
    ASSERT_TRUE(r.cfg) << joined(r.errors);
    const auto& m = r.cfg->models.at("claude/house");
    EXPECT_EQ(m.cache_read_per_mtok, 0.3);
    EXPECT_EQ(m.cache_write_per_mtok, 3.75);
    EXPECT_EQ(m.cache_write_1h_per_mtok, 6.0);
    EXPECT_EQ(m.long_context, (long_context_prices{200000, 6.0, 22.5, 0.6, 7.5, std::nullopt}));
    EXPECT_EQ(m.as_of, "2026-12-01");
    EXPECT_EQ(m.source, price_source::config);

    const auto bad = load_string(providers + R"(
models:
  claude/a: { cache_read_per_mtok: -0.1, cache_write_per_mtok: nan, cache_write_1h_per_mtok: inf }
  claude/b: { long_context: { input_per_mtok: 1 } }
  claude/c: { long_context: { above_input_tokens: 0, output_per_mtok: -1, bogus: 1 } }
  claude/d: { as_of: yesterday }
)");
    const std::vector<std::string> want = {
        "models.claude/a.cache_read_per_mtok: expected a non-negative number, got \"-0.1\"",
        "models.claude/a.cache_write_per_mtok: expected a non-negative number, got \"nan\"",
        "models.claude/a.cache_write_1h_per_mtok: expected a non-negative number, got \"inf\"",
        "models.claude/b.long_context.above_input_tokens: missing required field",
        "models.claude/c.long_context.above_input_tokens: expected a positive integer, got "
        "\"0\"",
        "models.claude/c.long_context.output_per_mtok: expected a non-negative number, got "
        "\"-1\"",
        "models.claude/c.long_context.bogus: unknown field",
        "models.claude/d.as_of: expected a date like 2026-12-01, got \"yesterday\"",
    };
    EXPECT_EQ(bad.errors, want) << joined(bad.errors);
}

TEST_F(PriceFileTest, CheckWarnsAboutStalePricesAndUnpricedModels) {
    const auto r = load_string(providers + R"(
models:
  openai/local: { upstream: llama3 }
  openai/old: { input_per_mtok: 1, output_per_mtok: 2, as_of: 2026-01-01 }
  echo/free: {}
routes:
  r: { targets: [openai/gpt-4o-mini, openai/local, claude/claude-3-5-haiku] }
)");
    ASSERT_TRUE(r.cfg) << joined(r.errors);
    const auto today = sys_days(year(2026) / 12 / 6);
    const std::vector<std::string> want = {
        "models.openai/local: \"openai/local\" has no price (set input_per_mtok and "
        "output_per_mtok under models:); its requests are charged nothing and keys with a USD "
        "budget are refused it",
        "models.openai/old: the prices of \"openai/old\" are as of 2026-01-01 (339 days old, "
        "from the config); check them and update models:",
        "routes.r.targets[2]: the prices of \"claude/claude-3-5-haiku\" are as of 2025-10-22 "
        "(410 days old, from the table); check them and update prices.file",
    };
    EXPECT_EQ(price_warnings(*r.cfg, today), want) << joined(price_warnings(*r.cfg, today));
    // Years later the shipped table as a whole is old.
    const auto later = price_warnings(*r.cfg, sys_days(year(2030) / 1 / 1));
    ASSERT_FALSE(later.empty());
    EXPECT_EQ(later.back().rfind("the shipped price table: its newest price is as of ", 0), 0u)
        << later.back();
    const auto clean = load_string(providers + "models: { openai/gpt-5: {} }\n");
    const auto none = price_warnings(*clean.cfg, today);
    EXPECT_TRUE(none.empty()) << joined(none);
}

} // namespace
} // namespace michi::config
