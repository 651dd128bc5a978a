// libFuzzer target for the config loader (config::load_string, with validation): whatever the
// YAML, it returns a config or a list of problems, never both, never neither, and never throws
// or crashes; the same text loads the same way twice. A bad file given to SIGHUP must leave
// the running gateway on its old config, not end it.

#include "michi/config/config.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>

namespace {

void check(bool condition, const char* what) {
    if (!condition) {
        std::fprintf(stderr, "config_fuzz: %s\n", what);
        std::abort();
    }
}

// A fixed environment: ${A} and ${KEY} are set, everything else is not.
std::optional<std::string> env(const std::string& name) {
    if (name == "A") {
        return "1";
    }
    if (name == "KEY") {
        return "sk-test";
    }
    return std::nullopt;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    const auto first = michi::config::load_string(text, env);
    check((first.cfg != nullptr) == first.errors.empty(), "a config and problems, or neither");
    for (const auto& e : first.errors) {
        check(!e.empty(), "an empty problem");
    }
    const auto again = michi::config::load_string(text, env);
    check(again.errors == first.errors && (again.cfg != nullptr) == (first.cfg != nullptr),
          "the same text loaded differently");
    return 0;
}
